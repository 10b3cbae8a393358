"""Conformance of ``framework.protocol`` with the official SDK's models.

For every server and client event class the SDK knows, varied payloads built
from the SDK's own pydantic models must parse into our class of the same name
and serialize back to an equal document, which the SDK then validates
strictly (right union branch, no unknown keys). ``test_seed_sdk.py`` runs this
module again against the seed's SDK version.
"""

from __future__ import annotations

from typing import Any

import pytest

from framework.protocol import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    UnknownClientEvent,
    UnknownServerEvent,
    parse_client_event,
    parse_server_event,
    to_dict,
)

from . import oracle

SAMPLES_PER_CLASS = 40
POLYFACTORY_PER_CLASS = 6


def test_every_sdk_server_event_type_is_known() -> None:
    missing = sorted(set(oracle.SERVER_TYPES) - set(SERVER_EVENT_TYPES))
    assert not missing, (
        f"openai {oracle.SDK_VERSION} knows server events that framework.protocol does not: "
        f"{missing}"
    )


def test_every_sdk_client_event_type_is_known() -> None:
    missing = sorted(set(oracle.CLIENT_TYPES) - set(CLIENT_EVENT_TYPES))
    assert not missing, (
        f"openai {oracle.SDK_VERSION} knows client events that framework.protocol does not: "
        f"{missing}"
    )


def test_class_names_match_the_sdk() -> None:
    for tag, sdk_cls in {**oracle.SERVER_TYPES, **oracle.CLIENT_TYPES}.items():
        ours = SERVER_EVENT_TYPES.get(tag) or CLIENT_EVENT_TYPES[tag]
        assert ours.__name__ == sdk_cls.__name__, tag


def _payloads(sdk_cls: Any) -> list[dict[str, Any]]:
    return oracle.sample_payloads(sdk_cls, SAMPLES_PER_CLASS, seed=1) + oracle.polyfactory_payloads(
        sdk_cls, POLYFACTORY_PER_CLASS
    )


@pytest.mark.parametrize("sdk_cls", oracle.SERVER_EVENT_CLASSES, ids=lambda c: oracle._type_of(c))
def test_server_event_round_trip(sdk_cls: Any) -> None:
    for payload in _payloads(sdk_cls):
        event = parse_server_event(payload)
        assert not isinstance(event, UnknownServerEvent)
        assert type(event).__name__ == sdk_cls.__name__
        produced = to_dict(event)
        assert produced == payload
        oracle.check_server_event(produced)


@pytest.mark.parametrize("sdk_cls", oracle.CLIENT_EVENT_CLASSES, ids=lambda c: oracle._type_of(c))
def test_client_event_round_trip(sdk_cls: Any) -> None:
    for payload in _payloads(sdk_cls):
        event = parse_client_event(payload)
        assert not isinstance(event, UnknownClientEvent)
        assert type(event).__name__ == sdk_cls.__name__
        produced = to_dict(event)
        assert produced == payload
        oracle.check_client_event(produced)


def test_text_frames_parse_like_dicts() -> None:
    import json

    for sdk_cls in oracle.SERVER_EVENT_CLASSES[:10]:
        for payload in oracle.sample_payloads(sdk_cls, 3, seed=5):
            text = json.dumps(payload)
            assert parse_server_event(text) == parse_server_event(text.encode())
            assert to_dict(parse_server_event(text)) == payload


def test_oracle_is_the_expected_sdk() -> None:
    # The pinned newest SDK by default; test_seed_sdk.py re-runs this module
    # with the seed's version first on the path and says so in the environment.
    import os

    expected = os.environ.get("CANTATA_EXPECT_SDK", "3.57.0")
    assert expected == oracle.SDK_VERSION
