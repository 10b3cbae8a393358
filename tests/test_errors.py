"""The error family: one root, the tree in one docstring, one rule for exception groups."""

from __future__ import annotations

import re

import pytest
import trio

import framework.errors
from framework.errors import (
    CantataError,
    ConnectionClosed,
    HandshakeRefused,
    SessionRefused,
    collapse,
    single_errors,
)
from framework.protocol import RealtimeError


def _tree_names() -> list[str]:
    doc = framework.errors.__doc__ or ""
    tree = doc.split("::", 1)[1].split("\n\n", 2)[1]
    return re.findall(r"[├└]── (\w+)", tree)


def _resolve(name: str) -> type[BaseException]:
    import framework.apps.runner
    import framework.audio
    import framework.engine
    import framework.plugin
    import framework.protocol
    import framework.telephony
    import framework.tools
    import framework.transport

    for module in (
        framework.errors,
        framework.protocol,
        framework.transport,
        framework.audio,
        framework.plugin,
        framework.tools,
        framework.engine,
        framework.apps.runner,
        framework.telephony,
    ):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, BaseException):
            return found
    raise AssertionError(f"{name} is in the tree but defined nowhere public")


def test_every_error_in_the_tree_is_a_cantata_error() -> None:
    names = _tree_names()
    assert names[:2] == ["ConnectionClosed", "HandshakeRefused"]
    assert {"SessionRefused", "ProtocolError", "ValidationError", "PluginError"} <= set(names)
    for name in names:
        assert issubclass(_resolve(name), CantataError), name


def test_old_bases_are_kept() -> None:
    from framework.audio import AudioDeviceUnavailable
    from framework.plugin import PluginError
    from framework.protocol import ProtocolError, ValidationError

    assert issubclass(ProtocolError, ValueError) and issubclass(ValidationError, ValueError)
    assert issubclass(PluginError, LookupError)
    assert issubclass(AudioDeviceUnavailable, RuntimeError)
    assert issubclass(HandshakeRefused, ConnectionClosed)


def test_session_refused_is_public_and_names_the_param() -> None:
    import framework

    error = SessionRefused(
        RealtimeError(type="invalid_request_error", message="bad voice", param="session.voice")
    )
    assert framework.SessionRefused is SessionRefused
    assert str(error) == "the server refused the session config: bad voice (param session.voice)"


def _group(*errors: BaseException) -> BaseExceptionGroup[BaseException]:
    return BaseExceptionGroup("nursery", list(errors))


CLOSED = ConnectionClosed(1006, "dropped")
OWN = ValueError("the caller's own")
OTHER = KeyError("another")
STOP = KeyboardInterrupt()


def _cancelled() -> trio.Cancelled:
    # trio.Cancelled has no public constructor; one raised by a cancelled scope is real.
    async def main() -> trio.Cancelled:
        with trio.CancelScope() as scope:
            scope.cancel()
            try:
                await trio.sleep(1)
            except trio.Cancelled as e:
                return e
        raise AssertionError("not cancelled")

    return trio.run(main)


CANCELLED = _cancelled()


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ((CLOSED,), CLOSED),  # a single leaf is itself
        ((CANCELLED, CLOSED), CLOSED),  # cancellations are dropped
        ((_group(CANCELLED, OWN),), OWN),  # nested groups are flattened
        ((CLOSED, OWN), OWN),  # the caller's error over the connection's
        ((CLOSED, ConnectionClosed(1006, "dropped")), CLOSED),  # the first of equals
        ((OWN, STOP), STOP),  # KeyboardInterrupt over everything
        ((OWN, OTHER), None),  # two unrelated errors: the group stays
        ((CANCELLED,), None),  # only cancellations: the group stays, for its scope
    ],
)
def test_collapse_rule(members: tuple[BaseException, ...], expected: BaseException | None) -> None:
    group = _group(*members)
    assert collapse(group) is (expected if expected is not None else group)


def test_siblings_are_kept_as_context_and_named() -> None:
    own = ValueError("mine")
    closed = ConnectionClosed(1006, "dropped")
    group = _group(closed, own)
    with pytest.raises(ValueError) as raised, single_errors():
        raise group
    assert raised.value is own
    assert raised.value.__context__ is group
    assert raised.value.__notes__ == [
        "raised at the same time: ConnectionClosed: connection closed (1006): dropped"
    ]


def test_single_errors_keeps_the_cause() -> None:
    cause = OSError("refused")
    error = ConnectionClosed(1006, "cannot connect")
    error.__cause__ = cause
    with pytest.raises(ConnectionClosed) as raised, single_errors():
        raise _group(error)
    assert raised.value.__cause__ is cause


def test_a_plain_exception_passes_through() -> None:
    with pytest.raises(CantataError) as raised, single_errors():
        raise ConnectionClosed(1000, "bye")
    assert raised.value.__context__ is None
