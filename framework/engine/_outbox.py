"""What a session sends, and the connection it sends it over.

:class:`Outbox` names events (``event_…``, ``item_…``, ``resp_…``: a nonce per
session and a counter), queues them and writes them, in order, from one task.

Bound: at most ``send_buffer`` events (64 by default) wait in the queue; a
client that stops reading makes whoever emits wait, never memory grow. The
per-event latency knob delays the producer, not the writer, so a response
really is still streaming when a client's cancel or truncate arrives.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from framework.protocol import RealtimeError, RealtimeErrorEvent, ServerEvent, to_json

from ._config import RequestError

Spawn = Callable[..., None]
"""Starts a task in the session's nursery: ``spawn(async_fn, *args)``."""


class Disconnected(Exception):
    """The client went away (or the connection was dropped on purpose)."""


class Connection(Protocol):
    """What a session needs from its transport."""

    async def receive(self) -> str | bytes:
        """The next frame; raises :class:`Disconnected` when the client is gone."""
        ...

    async def send(self, text: str) -> None:
        """Sends one text frame; raises :class:`Disconnected` when the client is gone."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Closes the connection with a WebSocket close code."""
        ...

    async def abort(self) -> None:
        """Drops the connection without a closing handshake."""
        ...


@attrs.frozen
class _Close:
    """Tells the writer to close the connection once what is queued before it is sent."""

    code: int
    reason: str


class Outbox:
    """A session's outgoing events: ids, the bounded queue and its writer."""

    def __init__(self, *, send_buffer: int, latency_ms: int = 0) -> None:
        self.nonce = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._latency = latency_ms / 1000
        self._send, self._receive = trio.open_memory_channel[ServerEvent | _Close](send_buffer)
        self.sent = 0
        """Events written to the connection so far."""

    def new_id(self, prefix: str) -> str:
        """A fresh id, unique in the session: ``{prefix}_{nonce}{counter}``."""
        return f"{prefix}_{self.nonce}{next(self._counter):06d}"

    async def emit(self, event: ServerEvent) -> None:
        """Queues one event (after the latency knob's delay)."""
        if self._latency:
            await trio.sleep(self._latency)
        await self._send.send(event)

    def error_event(
        self, error: RequestError, client_event_id: object = None
    ) -> RealtimeErrorEvent:
        """The ``error`` event for a refusal; it names the client's event when it had an id."""
        return RealtimeErrorEvent(
            event_id=self.new_id("event"),
            error=RealtimeError(
                type=error.type,
                code=error.code,
                message=error.message,
                param=error.param,
                event_id=client_event_id if isinstance(client_event_id, str) else None,
            ),
        )

    async def error(self, error: RequestError, client_event_id: object = None) -> None:
        """Emits the ``error`` event for a refusal."""
        await self.emit(self.error_event(error, client_event_id))

    async def close(self, code: int, reason: str) -> None:
        """Closes the connection once everything queued so far is written."""
        await self._send.send(_Close(code, reason))

    async def run_writer(self, connection: Connection, *, drop_after: int | None = None) -> None:
        """Writes queued events until a close; ``drop_after`` aborts after that many.

        Raises:
            Disconnected: the connection was closed or dropped here, or the client left.
        """
        async with self._receive:
            async for event in self._receive:
                if isinstance(event, _Close):
                    await connection.close(event.code, event.reason)
                    raise Disconnected
                await connection.send(to_json(event))
                self.sent += 1
                if drop_after is not None and self.sent >= drop_after:
                    await connection.abort()
                    raise Disconnected
