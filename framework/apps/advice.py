"""What to tell the user when a command fails: one line that says what to do.

Each kind of error has one adviser in :data:`_ADVISERS`, found through the
error's class hierarchy (the most specific class first). An adviser returns
the exit status and the line: 2 for a mistake in what the user gave (a file,
a bot, a key, a plugin name), 1 for a failure while running (a server that
cannot be reached or refuses). Tracebacks are for ``--debug``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs

from framework.apps.backend import BackendChoice, NoKey, key_variable
from framework.apps.transcribe import TranscriptionIncomplete
from framework.engine import RulesError
from framework.errors import (
    AudioDeviceUnavailable,
    BotError,
    ConnectionClosed,
    HandshakeRefused,
    PluginError,
    SessionRefused,
)

USER_MISTAKE = 2
FAILED = 1


@attrs.frozen(kw_only=True)
class Context:
    """What the command was doing, for the advice.

    Attributes:
        url: the server it dialled (``None``: the hosted API, or none).
        local: whether that server was the local engine started in-process.
    """

    url: str | None = None
    local: bool = False

    @classmethod
    def of(cls, args: argparse.Namespace) -> Context:
        """What a command's arguments say about where it connects."""
        url = getattr(args, "url", None)
        engine = getattr(args, "engine", None)
        if engine not in ("auto", "local", "openai"):
            return cls(url=url)
        choice = BackendChoice(engine=engine, url=url, api_key=getattr(args, "api_key", None))
        return cls(url=url, local=choice.where == "local")

    @property
    def where(self) -> str:
        if self.local:
            return "the local engine"
        return f"the server at {self.url}" if self.url else "the hosted API"


Adviser = Callable[[Any, Context], tuple[int, str]]


def _refused(error: HandshakeRefused, context: Context) -> tuple[int, str]:
    reason = error.reason
    if error.code in (401, 403):
        variable = key_variable(context.url)
        return FAILED, (
            f"{context.where} refused the key ({error.code}: {reason}); pass --api-key, "
            f"or set {variable}"
        )
    if error.code == 404:
        return FAILED, (
            f"{context.where} has no Realtime endpoint there ({reason}); a local engine's is "
            "ws://HOST:PORT/v1/realtime, as cantata serve prints it"
        )
    return FAILED, f"{context.where} refused the connection ({error.code}: {reason})"


def _closed(error: ConnectionClosed, context: Context) -> tuple[int, str]:
    reason = error.reason
    if reason.startswith(("cannot connect", "no answer from")):
        return FAILED, (
            f"{reason}; start the engine there (cantata serve), or check --url"
            if context.url
            else f"{reason}; check the network"
        )
    if "TLS" in reason:
        return FAILED, reason
    return FAILED, f"the connection to {context.where} ended ({error.code}): {reason}"


def _session_refused(error: SessionRefused, context: Context) -> tuple[int, str]:
    return FAILED, f"{context.where} refused the bot's session: {error}; fix the agent's settings"


def _os_error(error: OSError, context: Context) -> tuple[int, str]:
    if error.filename is None:
        return FAILED, f"{error.strerror or error}"
    return USER_MISTAKE, f"{error.filename}: {error.strerror}; check the path"


def _said(status: int) -> Adviser:
    """The error's own message is the advice (it already says what to do)."""
    return lambda error, context: (status, str(error))


_ADVISERS: dict[type[BaseException], Adviser] = {
    HandshakeRefused: _refused,
    ConnectionClosed: _closed,
    SessionRefused: _session_refused,
    BotError: _said(USER_MISTAKE),
    RulesError: _said(USER_MISTAKE),
    PluginError: _said(USER_MISTAKE),
    AudioDeviceUnavailable: _said(USER_MISTAKE),
    NoKey: _said(USER_MISTAKE),
    TranscriptionIncomplete: _said(FAILED),
    OSError: _os_error,
    # The remaining ValueErrors the framework raises on purpose are about input
    # (a file that is not a WAV file, a URL that is not a WebSocket URL).
    ValueError: _said(USER_MISTAKE),
}


def advise(error: BaseException, context: Context) -> tuple[int, str]:
    """The exit status and the one line for ``error``."""
    for kind in type(error).__mro__:
        adviser = _ADVISERS.get(kind)
        if adviser is not None:
            status, message = adviser(error, context)
            break
    else:
        status = FAILED
        message = f"stopped: {type(error).__name__}: {error} (run with --debug for the traceback)"
    return status, " ".join(message.split())
