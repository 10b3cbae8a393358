"""What a session sends, and the connection it sends it over.

:class:`Outbox` names events (``event_…``, ``item_…``, ``resp_…``: a nonce per
session and a counter), queues them and writes them, in order, from one task.

Bound: at most ``send_buffer`` events (64 by default) wait in the queue, and
at most as many more are in the batch being written; a client that stops
reading makes whoever emits wait, never memory grow. The
per-event latency knob delays the producer, not the writer, so a response
really is still streaming when a client's cancel or truncate arrives.

The writer takes everything queued at once: a connection that can write a
batch (:class:`BatchConnection`) gets it as one write, so a reply's burst of
deltas costs one system call and one task switch instead of one per event.
Emitting into a queue with room does not yield to the scheduler (a cancelled
caller still stops there), so a producer's burst is queued whole before the
writer runs.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs
import orjson
import trio

from framework.protocol import RealtimeError, RealtimeErrorEvent, ServerEvent, to_dict, to_json

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


class BatchConnection(Connection, Protocol):
    """A connection that writes several text frames at once."""

    async def send_batch(self, frames: Sequence[bytes]) -> None:
        """Sends each of ``frames`` (UTF-8 JSON) as a text frame, in order, in one write."""
        ...


@attrs.frozen
class _Close:
    """Tells the writer to close the connection once what is queued before it is sent."""

    code: int
    reason: str


def _encode(event: ServerEvent) -> bytes:
    try:
        return orjson.dumps(to_dict(event))
    except orjson.JSONEncodeError:
        return to_json(event).encode()  # raises the ValidationError that names the path


class Outbox:
    """A session's outgoing events: ids, the bounded queue and its writer."""

    def __init__(self, *, send_buffer: int, latency_ms: int = 0) -> None:
        self.nonce = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._latency = latency_ms / 1000
        self._limit = send_buffer
        self._queue: deque[ServerEvent | _Close] = deque()
        self._queued = trio.lowlevel.ParkingLot()  # the writer, waiting for events
        self._room = trio.lowlevel.ParkingLot()  # emitters, waiting for room
        self._writer_gone = False
        self.sent = 0
        """Events written to the connection so far."""

    def new_id(self, prefix: str) -> str:
        """A fresh id, unique in the session: ``{prefix}_{nonce}{counter}``."""
        return f"{prefix}_{self.nonce}{next(self._counter):06d}"

    async def emit(self, event: ServerEvent) -> None:
        """Queues one event (after the latency knob's delay).

        Raises:
            trio.BrokenResourceError: the writer has ended (the client is gone).
        """
        if self._latency:
            await trio.sleep(self._latency)
        await self._put(event)

    async def _put(self, item: ServerEvent | _Close) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        while len(self._queue) >= self._limit and not self._writer_gone:
            await self._room.park()
        if self._writer_gone:
            # Woken by the writer's end: the session is ending, and says so by
            # cancelling this task, unless it is shielded.
            await trio.lowlevel.checkpoint_if_cancelled()
            raise trio.BrokenResourceError("the session's writer has ended")
        self._queue.append(item)
        self._queued.unpark_all()

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
        await self._put(_Close(code, reason))

    async def run_writer(self, connection: Connection, *, drop_after: int | None = None) -> None:
        """Writes queued events until a close; ``drop_after`` aborts after that many.

        Raises:
            Disconnected: the connection was closed or dropped here, or the client left.
        """
        queue = self._queue
        send_batch = getattr(connection, "send_batch", None)
        try:
            while True:
                while not queue:
                    await self._queued.park()
                batch: list[ServerEvent] = []
                room = math.inf if drop_after is None else drop_after - self.sent
                while queue and len(batch) < room and not isinstance(queue[0], _Close):
                    batch.append(queue.popleft())  # type: ignore[arg-type]
                if batch:
                    frames = [_encode(event) for event in batch]
                    if send_batch is not None:
                        await send_batch(frames)
                    else:
                        for frame in frames:
                            await connection.send(frame.decode())
                    self.sent += len(batch)
                    self._room.unpark_all()
                    if drop_after is not None and self.sent >= drop_after:
                        await connection.abort()
                        raise Disconnected
                elif queue:
                    close = queue.popleft()
                    assert isinstance(close, _Close)
                    await connection.close(close.code, close.reason)
                    raise Disconnected
        finally:
            self._writer_gone = True
            self._room.unpark_all()
