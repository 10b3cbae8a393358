"""The local engine for tests: on a loopback port, or in memory.

``run_engine`` starts the local Realtime engine in-process on a free loopback
port, with a rules file (or rules text) for its scripted brain::

    async with run_engine(rules="examples/weather.toml") as url:
        async with open_session(MyAgent(), url=url) as session:
            ...

``engine_wire`` runs an engine session in memory instead, with no socket at
all, so a whole agent session runs on trio's ``MockClock`` (approval
deadlines, tool timeouts and playback positions in virtual time)::

    async with engine_wire(rules=RULES) as wire:
        async with open_session(MyAgent(), connection=wire) as session:
            ...

``memory_engine`` serves one in-memory session per dial, so that a session
can lose its connection and dial again, on ``MockClock`` too::

    async with memory_engine(rules=RULES) as served:
        endpoint = Endpoint(dial=served.dial)
        async with open_session(MyAgent(), endpoints=[endpoint]) as session:
            await served.latest.drop()      # the line dies; the session reconnects
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from framework.engine import Disconnected, Engine, EngineSession, Rules, open_engine
from framework.errors import ConnectionClosed, HandshakeRefused, single_errors

from ._mcp import InstalledMcpClient


@asynccontextmanager
async def run_engine(
    rules: str | Path | Rules | None = None, **engine_options: Any
) -> AsyncIterator[str]:
    """Runs a local engine for the block; yields its ``ws://.../v1/realtime`` URL.

    Args:
        rules: a rules file path, rules TOML text (anything containing a newline),
            parsed :class:`~framework.engine.Rules`, or None for the built-in rules.
        **engine_options: further :class:`~framework.engine.Engine` options
            (``api_key``, ``latency_ms``, ``drop_after_events``, ...); without
            ``mcp_client``, hosted MCP tools use the installed MCP plugin's.

    Raises:
        RulesError: the rules do not parse.
        OSError: no loopback port could be bound.
    """
    with single_errors():
        async with open_engine(_engine(rules, engine_options)) as running:
            yield running.url


def _engine(rules: str | Path | Rules | None, options: dict[str, Any]) -> Engine:
    options.setdefault("mcp_client", InstalledMcpClient())
    return Engine(rules=Rules.load(rules) if rules is not None else None, **options)


class MemoryWire:
    """Both ends of an in-memory connection between a client and an engine session.

    The client side has the wire interface ``open_session(connection=...)``
    takes; the engine side the one :class:`~framework.engine.EngineSession`
    serves. Closing either end ends the other as a closed connection would.
    """

    def __init__(self, buffer: int = 4096) -> None:
        self._up_send, self._up_receive = trio.open_memory_channel[str](buffer)
        self._down_send, self._down_receive = trio.open_memory_channel[str](buffer)
        self.close_code: int | None = None
        self.close_reason = ""

    # --- the client's side -------------------------------------------------------

    async def send_text(self, text: str) -> None:
        try:
            await self._up_send.send(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._closed() from None

    async def receive_text(self) -> str:
        try:
            return await self._down_receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._closed() from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._up_send.aclose()

    def _closed(self) -> ConnectionClosed:
        return ConnectionClosed(self.close_code or 1006, self.close_reason or "connection dropped")

    # --- the engine's side ---------------------------------------------------------

    async def receive(self) -> str | bytes:
        try:
            return await self._up_receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise Disconnected from None

    async def send(self, text: str) -> None:
        try:
            await self._down_send.send(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise Disconnected from None

    async def close(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        await self._down_send.aclose()

    async def abort(self) -> None:
        await self.close(1006, "connection dropped")


class MemoryEngine:
    """An engine that serves each dial as a new session in memory (see :func:`memory_engine`).

    Attributes:
        engine: the engine (its knobs: ``refuse``, ``max_session_s``, ...).
        served: every session served so far, oldest first.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.served: list[EngineSession] = []

    @property
    def latest(self) -> EngineSession:
        """The session served last."""
        return self.served[-1]

    @asynccontextmanager
    async def dial(self) -> AsyncIterator[MemoryWire]:
        """A new session on a new wire, for the block: an ``Endpoint(dial=...)``.

        Raises:
            HandshakeRefused: the engine refuses connections now (its ``refuse`` knob).
        """
        status = self.engine.admit()
        if status is not None:
            raise HandshakeRefused(status, "The server is temporarily unavailable.")
        wire = MemoryWire()
        session = EngineSession(self.engine.options, wire)
        self.served.append(session)
        self.engine.sessions.add(session)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.run)
                try:
                    yield wire
                finally:
                    await wire._up_send.aclose()
                    nursery.cancel_scope.cancel()
        finally:
            self.engine.sessions.discard(session)


@asynccontextmanager
async def memory_engine(
    rules: str | Path | Rules | None = None, **engine_options: Any
) -> AsyncIterator[MemoryEngine]:
    """An engine serving sessions in memory, one per dial, for the block.

    Args:
        rules: as for :func:`run_engine`.
        **engine_options: further :class:`~framework.engine.Engine` options.

    Raises:
        RulesError: the rules do not parse.
    """
    yield MemoryEngine(_engine(rules, engine_options))


@asynccontextmanager
async def engine_wire(
    rules: str | Path | Rules | None = None, **engine_options: Any
) -> AsyncIterator[MemoryWire]:
    """An engine session served in memory; yields the wire to pass to ``open_session``.

    The wire outlives a session opened on it: after the ``open_session`` block,
    the test may go on speaking the protocol on it (``send_text`` /
    ``receive_text``) to read what the engine holds.

    Args:
        rules: as for :func:`run_engine`.
        **engine_options: further :class:`~framework.engine.Engine` options.

    Raises:
        RulesError: the rules do not parse.
    """
    with single_errors():
        async with MemoryEngine(_engine(rules, engine_options)).dial() as wire:
            yield wire
