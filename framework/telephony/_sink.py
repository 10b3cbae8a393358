"""Assistant audio to a Twilio stream, and what the caller has heard of it.

:class:`MarkedSink` is the session's audio sink on a Twilio call. It cuts the
model's G.711 mu-law into 20 ms frames, sends each as a ``media`` message
followed by a ``mark`` named ``<item id>:<end byte>``, and learns what was
played from the marks Twilio sends back: Twilio echoes a mark once the audio
before it has played (Media Streams, "mark" message). So the played position
barge-in truncates at is what the caller heard, not what was sent; between
two acknowledgements it advances with the clock, at most to the end of the
frame playing. The bytes pass through untouched: no decoding, no resampling.

Sending is paced by the acknowledgements: at most ``lead_ms`` of audio is
out at Twilio unheard. Twilio plays in real time whatever it holds, so
sending further ahead only lengthens what a ``clear`` throws away; a second
covers any network's jitter, and each acknowledgement lets the next frame go.
Frames beyond the lead wait here, at most ``max_queued_ms`` of them (past
that, new audio is dropped and counted).

``clear()`` (barge-in) freezes the played position, drops what is queued,
and sends ``clear``. Twilio then echoes the marks it dropped as well; their
names are remembered (at most :data:`CLEARED_KEPT`) so that those echoes
are not taken for audio played.

The sink is synchronous for the session (``write`` and ``clear`` never wait);
:meth:`MarkedSink.run` is its sender task, for the life of the stream.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import trio

from ._media import Clear, Mark, Media, dump_message

_log = logging.getLogger("cantata.telephony")

RATE_BYTES_PER_MS = 8
"""G.711 at 8 kHz: one byte a sample, eight a millisecond."""
FRAME_BYTES = 160
"""20 ms of mu-law: the frame size Twilio itself sends."""
LEAD_MS = 1000
"""Audio sent ahead of what the caller has heard, at most."""
MAX_QUEUED_MS = 120_000
"""Audio waiting to be sent, at most; beyond it new audio is dropped (and counted)."""
CLEARED_KEPT = 1024
"""Names of marks a ``clear`` dropped, kept to recognise their echoes."""
KEPT_ITEMS = 64
"""Items whose heard position is remembered (barge-in asks about the one playing)."""

Send = Callable[[str], Awaitable[None]]
_V = TypeVar("_V")


@attrs.define
class _Frame:
    item_id: str
    start: int  # byte offset of the frame in its item's audio
    audio: bytes
    sent_at: float = math.nan

    @property
    def end(self) -> int:
        return self.start + len(self.audio)

    @property
    def name(self) -> str:
        return f"{self.item_id}:{self.end}"


class MarkedSink:
    """The audio sink of a Twilio call (see the module docstring).

    Args:
        lead_ms: audio sent ahead of what was heard, at most.
        max_queued_ms: audio waiting to be sent, at most.

    Attributes:
        stats: frames sent, marks acknowledged, clears, bytes dropped.
        cleared_at: when the last barge-in cleared the line (trio's clock).
    """

    bytes_per_ms = RATE_BYTES_PER_MS

    def __init__(self, *, lead_ms: int = LEAD_MS, max_queued_ms: int = MAX_QUEUED_MS) -> None:
        self._lead_bytes = lead_ms * RATE_BYTES_PER_MS
        self._max_queued = max_queued_ms * RATE_BYTES_PER_MS
        self._queue: deque[_Frame] = deque()
        self._queued = 0
        self._flight: deque[_Frame] = deque()
        self._flight_bytes = 0
        self._heard: OrderedDict[str, int] = OrderedDict()
        self._written: OrderedDict[str, int] = OrderedDict()
        self._cleared: OrderedDict[str, None] = OrderedDict()
        self._clear_pending = False
        self._last_ack = -math.inf
        self._closed = False
        self._changed = trio.Event()
        self.cleared_at: float | None = None
        self.stats = {"frames_sent": 0, "marks_acked": 0, "clears": 0, "bytes_dropped": 0}

    # --- the session's side ----------------------------------------------------------

    def write(self, item_id: str, audio: bytes) -> None:
        if self._closed:
            return
        offset = self._written.get(item_id, 0)
        for start in range(0, len(audio), FRAME_BYTES):
            chunk = audio[start : start + FRAME_BYTES]
            if self._queued + len(chunk) > self._max_queued:
                self.stats["bytes_dropped"] += len(audio) - start
                break
            self._queue.append(_Frame(item_id, offset, chunk))
            self._queued += len(chunk)
            offset += len(chunk)
        _remember(self._written, item_id, offset)
        self._wake()

    def clear(self) -> None:
        self.cleared_at = trio.current_time()
        if self._flight:
            playing = self._flight[0].item_id
            _remember(self._heard, playing, self._heard_bytes(playing))
        for frame in self._flight:
            _remember(self._cleared, frame.name, None, CLEARED_KEPT)
        self._flight.clear()
        self._flight_bytes = 0
        self._queue.clear()
        self._queued = 0
        self._clear_pending = not self._closed
        self.stats["clears"] += 1
        self._wake()

    def played_ms(self, item_id: str) -> int:
        return self._heard_bytes(item_id) // RATE_BYTES_PER_MS

    @property
    def playing(self) -> bool:
        return bool(self._flight or self._queue)

    @property
    def playing_item(self) -> str | None:
        if self._flight:
            return self._flight[0].item_id
        return self._queue[0].item_id if self._queue else None

    async def drain(self) -> None:
        """Returns once everything written so far has been heard (or the stream ended)."""
        while self.playing:
            changed = self._changed
            await changed.wait()

    # --- Twilio's side ---------------------------------------------------------------

    def acknowledged(self, name: str) -> None:
        """Twilio echoed the mark ``name``: the audio up to it was heard."""
        if name in self._cleared:
            del self._cleared[name]  # dropped by a clear, not played
            return
        if not any(frame.name == name for frame in self._flight):
            return  # not one of ours, or acknowledged already
        while self._flight:
            frame = self._flight.popleft()
            self._flight_bytes -= len(frame.audio)
            _remember(self._heard, frame.item_id, frame.end)
            self.stats["marks_acked"] += 1
            if frame.name == name:
                break
        self._last_ack = trio.current_time()
        self._wake()

    def close(self) -> None:
        """The stream ended: nothing more is sent or heard."""
        self._closed = True
        self._queue.clear()
        self._queued = 0
        self._flight.clear()
        self._flight_bytes = 0
        self._wake()

    async def run(self, send: Send, stream_sid: str) -> None:
        """Sends frames, marks and clears to the stream until cancelled."""
        while True:
            changed = self._changed
            if self._clear_pending:
                self._clear_pending = False
                await send(dump_message(Clear(stream_sid=stream_sid)))
            elif self._queue and self._flight_bytes < self._lead_bytes:
                frame = self._queue.popleft()
                self._queued -= len(frame.audio)
                frame.sent_at = trio.current_time()
                self._flight.append(frame)
                self._flight_bytes += len(frame.audio)
                self.stats["frames_sent"] += 1
                await send(dump_message(Media(stream_sid=stream_sid, payload=frame.audio)))
                await send(dump_message(Mark(stream_sid=stream_sid, name=frame.name)))
            else:
                await changed.wait()

    # --- internals -------------------------------------------------------------------

    def _heard_bytes(self, item_id: str) -> int:
        heard = self._heard.get(item_id, 0)
        if self._flight and self._flight[0].item_id == item_id:
            # The frame playing began when the one before it ended (its mark came
            # back), or when it was sent if the caller had nothing left to play.
            frame = self._flight[0]
            began = max(self._last_ack, frame.sent_at)
            elapsed = (trio.current_time() - began) * 1000 * RATE_BYTES_PER_MS
            heard = frame.start + min(len(frame.audio), max(0, int(elapsed)))
        return heard

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


def _remember(table: OrderedDict[str, _V], key: str, value: _V, limit: int = KEPT_ITEMS) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
