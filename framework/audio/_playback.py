"""Audio sinks: where assistant audio goes, and how much of it was heard.

A sink takes audio as it arrives (``write`` queues and returns at once, so
the response path never waits on a speaker) and reports, per assistant item,
how many milliseconds it has actually *played*. Barge-in truncates the
conversation at that position, not at what was received.

How long some bytes play depends on their format (PCM16 at 24 kHz is 48
bytes a millisecond, G.711 8), and only the session knows the format the
server sends: a sink that defines ``set_format(fmt)`` is told it whenever the
server confirms the session's configuration. The sinks here all do, so a
``ClockSink()`` times a G.711 session's audio right without being told.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
import trio

from ._formats import AudioFormat, bytes_per_ms


@runtime_checkable
class AudioSink(Protocol):
    """Plays assistant audio (bytes in the session's output format).

    Optionally ``set_format(fmt)``: the session's output format, each time the
    server confirms it (see the module docstring).
    """

    def write(self, item_id: str, audio: bytes) -> None:
        """Queues audio of an assistant item for playback; never blocks."""
        ...

    def clear(self) -> None:
        """Stops playback now and drops what is queued."""
        ...

    def played_ms(self, item_id: str) -> int:
        """Milliseconds of that item's audio played so far."""
        ...

    @property
    def playing(self) -> bool:
        """Whether queued audio is still being played."""
        ...

    @property
    def playing_item(self) -> str | None:
        """The item whose audio is playing now (``None`` when nothing plays).

        A response may hold several messages (a short preamble, then the
        answer); barge-in truncates this one. A sink without it is taken to
        play the item it received last.
        """
        ...


@attrs.define
class _Span:
    item_id: str
    start: float  # clock time its first sample plays
    ms: float


class ClockSink:
    """A sink that "plays" in real time by trio's clock and keeps the audio.

    Playback of each chunk starts when the previous one ends (or when it
    arrives, if the sink had gone quiet). It needs no device, so it serves
    headless runs, and on ``MockClock`` it makes playback arithmetic exact.

    Args:
        fmt: the format of the audio it gets (default PCM16 at 24 kHz); a
            session sets it to its own.

    Attributes:
        audio: every byte written, per item (what a recorder would save).
    """

    def __init__(self, fmt: AudioFormat = None) -> None:
        self.fmt = fmt
        self.audio: dict[str, bytearray] = {}
        self._spans: list[_Span] = []
        self._end = 0.0

    @property
    def bytes_per_ms(self) -> int:
        """Bytes of one millisecond of audio in its format."""
        return bytes_per_ms(self.fmt)

    def set_format(self, fmt: AudioFormat) -> None:
        """Reads what is written from now on as ``fmt``."""
        self.fmt = fmt

    def write(self, item_id: str, audio: bytes) -> None:
        now = trio.current_time()
        start = max(now, self._end)
        ms = len(audio) / self.bytes_per_ms
        last = self._spans[-1] if self._spans else None
        if last is not None and last.item_id == item_id and start == last.start + last.ms / 1000:
            last.ms += ms  # contiguous audio of one item is one span: no growth per delta
        else:
            self._spans.append(_Span(item_id, start, ms))
        self._end = start + ms / 1000
        self.audio.setdefault(item_id, bytearray()).extend(audio)

    def clear(self) -> None:
        now = trio.current_time()
        kept: list[_Span] = []
        for span in self._spans:
            if span.start >= now:
                continue  # never played
            played = min(span.ms, (now - span.start) * 1000)
            kept.append(_Span(span.item_id, span.start, played))
        self._spans = kept
        self._end = now

    def played_ms(self, item_id: str) -> int:
        now = trio.current_time()
        total = 0.0
        for span in self._spans:
            if span.item_id == item_id and span.start < now:
                total += min(span.ms, (now - span.start) * 1000)
        return int(total)

    @property
    def playing(self) -> bool:
        return trio.current_time() < self._end

    @property
    def playing_item(self) -> str | None:
        now = trio.current_time()
        for span in reversed(self._spans):  # the one playing is at the end, or none is
            if span.start <= now:
                return span.item_id if now < span.start + span.ms / 1000 else None
        return None

    async def drain(self) -> None:
        """Returns once everything queued so far has played."""
        await trio.sleep_until(self._end)

    def received_ms(self, item_id: str) -> int:
        """Milliseconds of that item's audio written to the sink."""
        return len(self.audio.get(item_id, b"")) // self.bytes_per_ms
