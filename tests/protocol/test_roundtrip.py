"""Hypothesis round trips of our own wire types.

Anything our model can hold survives ``to_json`` -> ``parse_*`` unchanged
(unknown fields and unknown union members included), and what we produce from
SDK-valid values validates against the official SDK's models.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.protocol import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    UNSET,
    parse_client_event,
    parse_server_event,
    to_dict,
    to_json,
)

from . import oracle
from .strategies import instances

_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SERVER = sorted(SERVER_EVENT_TYPES.items())
CLIENT = sorted(CLIENT_EVENT_TYPES.items())


@pytest.mark.parametrize(("tag", "cls"), SERVER, ids=[t for t, _ in SERVER])
def test_server_events_survive_json(tag: str, cls: type) -> None:
    @_SETTINGS
    @given(instances(cls, sdk_valid=False))
    def check(event: Any) -> None:
        assert parse_server_event(to_json(event)) == event

    check()


@pytest.mark.parametrize(("tag", "cls"), CLIENT, ids=[t for t, _ in CLIENT])
def test_client_events_survive_json(tag: str, cls: type) -> None:
    @_SETTINGS
    @given(instances(cls, sdk_valid=False))
    def check(event: Any) -> None:
        assert parse_client_event(to_json(event)) == event

    check()


def _sdk_required(sdk_cls: Any) -> set[str]:
    return {name for name, f in sdk_cls.model_fields.items() if f.is_required()}


SDK_SERVER = [(t, c) for t, c in SERVER if t in oracle.SERVER_TYPES]


@pytest.mark.parametrize(("tag", "cls"), SDK_SERVER, ids=[t for t, _ in SDK_SERVER])
def test_what_we_send_as_a_server_validates_in_the_sdk(tag: str, cls: type) -> None:
    # Fields that newer SDKs require but older servers omit (such as ``name``
    # on function_call_arguments.done) are optional in our model; the engine
    # always sends them, so they are always drawn here.
    must_have = _sdk_required(oracle.SERVER_TYPES[tag])

    @_SETTINGS
    @given(instances(cls, sdk_valid=True))
    def check(event: Any) -> None:
        for name in must_have:
            if getattr(event, name, None) is UNSET:
                event = attrs.evolve(event, **{name: "x"})
        oracle.check_server_event(to_dict(event))

    check()


SDK_CLIENT = [(t, c) for t, c in CLIENT if t in oracle.CLIENT_TYPES]


@pytest.mark.parametrize(("tag", "cls"), SDK_CLIENT, ids=[t for t, _ in SDK_CLIENT])
def test_what_we_send_as_a_client_validates_in_the_sdk(tag: str, cls: type) -> None:
    @_SETTINGS
    @given(instances(cls, sdk_valid=True))
    def check(event: Any) -> None:
        oracle.check_client_event(to_dict(event))

    check()


@given(st.data())
@settings(max_examples=50, deadline=None)
def test_to_dict_and_parse_agree_on_any_server_event(data: st.DataObject) -> None:
    _tag, cls = data.draw(st.sampled_from(SERVER))
    event = data.draw(instances(cls, sdk_valid=False))
    assert parse_server_event(to_dict(event)) == event
