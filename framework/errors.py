"""Every error Cantata raises on purpose, in one tree: catch :class:`CantataError` for all.

::

    CantataError
    ├── ConnectionClosed            the connection ended: closed by either side, dropped,
    │   │                           or never opened (``code``, ``reason``)
    │   └── HandshakeRefused        the server refused the WebSocket handshake
    │                               (``code`` is the HTTP status)
    ├── SessionRefused              the server refused the session configuration at start-up
    ├── ProtocolError (ValueError)  a frame that is not a valid event (framework.protocol)
    ├── ValidationError (ValueError)
    │                               an event or wire object we were asked to send is not
    │                               valid; the message names the path (framework.protocol)
    ├── RestError                   a REST call (client secrets, calls) failed
    ├── PluginError (LookupError)   a plugin that is not installed or failed to load, two
    │                               plugins whose tools would hide each other, or an
    │                               engine part no installed plugin provides
    ├── AudioDeviceUnavailable (RuntimeError)
    │                               no microphone or speaker can be used
    ├── BotError                    a bot file that cannot be run (framework.apps)
    ├── ToolArgumentsError (ValueError)
    │                               arguments that do not fit a tool's parameters, from
    │                               ``FunctionTool.parse_arguments`` (framework.tools); inside
    │                               a session they become the call's output, never raised
    ├── RulesError (ValueError)     a rules file of the engine's scripted brain that does
    │                               not load (framework.engine)
    ├── BrainError                  a brain's mistake found while it answers; the engine
    │                               fails that response with an ``error`` event
    ├── OperatorError               the engine's operator interface refused a request
    ├── DialError                   a simulated call could not be placed (framework.telephony)
    ├── MediaStreamError (ValueError)
    │                               a frame that is not a Twilio Media Streams message
    │                               (framework.telephony)
    └── WebhookRefused (ValueError) a webhook whose signature, timestamp or body does not
                                    verify (framework.telephony)

The classes keep the names and the built-in bases they always had, so code that
catches ``ValueError`` or ``LookupError`` keeps working. Tool failures are not
here: a tool that raises, times out or gets bad arguments is a *value* the model
sees, never an exception out of a session.

**Exception groups.** Every public entry point (``open_session``,
``open_transcription_session``, ``open_connection``, ``run_engine``, ...) runs
tasks in a nursery, and a nursery raises groups. One rule turns a group into
what users catch, :func:`collapse`: cancellations are dropped; a single error
left is raised as itself; of several, a ``KeyboardInterrupt``/``SystemExit``
wins, then the one that is not a :class:`ConnectionClosed` (the caller's own
error, raised while the connection went down), then the first. The error
raised keeps the group as its ``__context__`` and names its siblings in a note,
so nothing is lost. Several unrelated errors stay a group.

This module imports nothing from the framework, so every package may use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import trio

__all__ = [
    "AudioDeviceUnavailable",
    "BotError",
    "CantataError",
    "ConnectionClosed",
    "HandshakeRefused",
    "PluginError",
    "RestError",
    "SessionRefused",
    "collapse",
    "leaves",
    "single_errors",
]


class CantataError(Exception):
    """The root of every error Cantata raises on purpose (the tree is this module's docstring)."""


class ConnectionClosed(CantataError):
    """The connection ended: closed by either side, dropped, or never opened.

    Attributes:
        code: the WebSocket close code (1006 when the line dropped; the HTTP
            status when the server refused the handshake).
        reason: the close reason, or a sentence saying what happened.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed ({code}): {reason}" if reason else f"closed ({code})")
        self.code = code
        self.reason = reason

    @property
    def normal(self) -> bool:
        """Whether it was an orderly close (1000, or 1001 going away)."""
        return self.code in (1000, 1001)


class HandshakeRefused(ConnectionClosed):
    """The server refused the WebSocket handshake (bad key, unknown path, ...).

    ``code`` is the HTTP status; ``reason`` the server's error message.
    """


class ServerError(Protocol):
    """What :class:`SessionRefused` reads of the server's error (a ``RealtimeError``)."""

    @property
    def message(self) -> str: ...

    @property
    def param(self) -> object: ...


class SessionRefused(CantataError):
    """The server refused the agent's session configuration at start-up.

    Attributes:
        error: the server's error (a :class:`~framework.protocol.RealtimeError`).
    """

    def __init__(self, error: ServerError) -> None:
        param = f" (param {error.param})" if isinstance(error.param, str) else ""
        super().__init__(f"the server refused the session config: {error.message}{param}")
        self.error = error


class RestError(CantataError):
    """A REST call that failed.

    Attributes:
        status: the HTTP status, or 0 when no answer came (unreachable, timed out).
        code: the error ``code`` the server gave (``None`` when it gave none).
        message: the server's message, or a sentence saying what happened.
        type: the error ``type`` the server gave.
        param: the request parameter the error is about.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
    ) -> None:
        where = f"HTTP {status}" if status else "no answer"
        super().__init__(f"{where} ({code}): {message}" if code else f"{where}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.type = type
        self.param = param


class PluginError(CantataError, LookupError):
    """A plugin named but not installed, one that failed to load, plugins whose tools
    would hide each other, or a missing engine part."""


class AudioDeviceUnavailable(CantataError, RuntimeError):
    """No microphone or speaker can be used: sounddevice, PortAudio or a device is missing."""


class BotError(CantataError):
    """The bot file cannot be run (not found, no agent, several agents, ...)."""


# --- exception groups -------------------------------------------------------------------


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside ``error``, nested groups flattened, in order."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def _rank(error: BaseException) -> int:
    if not isinstance(error, Exception):
        return 0  # KeyboardInterrupt, SystemExit: the process is going down
    if not isinstance(error, ConnectionClosed):
        return 1  # the caller's own error, or a real failure
    return 2


def collapse(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a public entry point raises for ``group`` (the module's rule).

    Returns ``group`` itself when only cancellations are in it (its cancel scope
    handles those) or when several unrelated errors are.
    """
    found: list[BaseException] = []
    for leaf in leaves(group):
        if not isinstance(leaf, trio.Cancelled) and not any(leaf is f for f in found):
            found.append(leaf)
    if not found:
        return group
    best = min(_rank(e) for e in found)
    first = [e for e in found if _rank(e) == best]
    if len(first) > 1 and best < 2:
        return group  # two errors of the same weight: neither may hide the other
    chosen = first[0]
    for sibling in found:
        if sibling is not chosen and (type(sibling), str(sibling)) != (type(chosen), str(chosen)):
            chosen.add_note(f"raised at the same time: {type(sibling).__name__}: {sibling}")
    return chosen


@contextmanager
def single_errors() -> Iterator[None]:
    """Applies :func:`collapse` to a group leaving the block.

    The error raised keeps its own ``__cause__``; its ``__context__`` is the
    group it came out of.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        error = collapse(group)
        if error is group:
            raise
        raise error from error.__cause__
