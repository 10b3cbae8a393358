"""The recorder plugin: the call as a stereo WAV file and a JSON session report.

For each session it opens, a :class:`Recording` taps the session's audio (the
runtime's ``AudioTap`` seam) and observes its events. A task of the plugin
places the audio on one :class:`~._timeline.Timeline` and appends what can no
longer change to the WAV file twice a second (in a worker thread), so a long
call is never held in memory. When the session ends, the rest is written and
the report beside it: the turns with their metrics, the transcript, the tool
calls, usage and cost, and what happened to the connection.

Files: ``DIR/<YYYYmmdd-HHMMSS>-<session id>.wav`` (16-bit stereo, user left,
assistant right, at the higher of the session's two audio rates) and the same
name with ``.json``.

Bounds: the report keeps the first :data:`MAX_ENTRIES` transcript entries,
tool calls and events, and counts the rest.
"""

from __future__ import annotations

import logging
import time
import wave
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import cattrs
import numpy as np
import orjson
import trio

from framework.audio import AudioFormat, decode, sample_rate
from framework.plugin import Contribution, Plugin
from framework.runtime import (
    AssistantMessage,
    ErrorReported,
    Interrupted,
    Reconnected,
    RolledOver,
    SessionEvent,
    SessionStarted,
    ToolCallFinished,
    TurnMeasured,
    TurnMetrics,
    UserTranscript,
)

from ._timeline import Timeline

_log = logging.getLogger("cantata.recorder")

FLUSH_S = 0.5
"""How often the audio that can no longer change is written out."""
CLOSE_S = 5.0
"""How long writing the rest of a recording may take when its session ends."""
MAX_ENTRIES = 10_000
"""Transcript entries, tool calls, events and turns kept for the report (each)."""
KEPT_RECORDINGS = 100
"""Recordings a :class:`Recorder` remembers in ``recordings`` (its files stay on disk)."""

_unstructure = cattrs.Converter().unstructure


@attrs.frozen
class _Noted:
    """What a tap saw, and when: placed on the timeline later, off the actors' tasks."""

    at: float
    kind: str
    audio: bytes = b""
    item_id: str | None = None
    played_ms: int = 0
    formats: tuple[AudioFormat, AudioFormat] | None = None


def _samples(audio: bytes, fmt: AudioFormat, rate: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    return decode(audio, fmt, rate=rate).astype(np.int16)


class Recording:
    """One session's recording: its audio tap and event observer, and its files.

    Attributes:
        wav_path, report_path: the files (named once the session is known).
        timeline: the audio's clock (``timeline.origin`` is frame 0, trio time).
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.session_id = "session"
        self.model = ""
        self.started = time.time()
        self.origin = trio.current_time()
        self.timeline: Timeline | None = None
        self.wav_path: Path | None = None
        self.report_path: Path | None = None
        self._formats: tuple[AudioFormat, AudioFormat] = (None, None)
        self._pending: list[_Noted] = []
        self._wav: wave.Wave_write | None = None
        self.transcript: list[dict[str, Any]] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.turns: list[TurnMetrics] = []
        self.events: list[dict[str, Any]] = []
        self.left_out = 0
        # Over every turn, those left out of ``turns`` included.
        self._usage: dict[str, int] = {}
        self._cost: float | None = None

    # --- the tap (on the actors' tasks: it only takes note) -----------------------------

    def formats(self, input: AudioFormat, output: AudioFormat) -> None:
        self._pending.append(_Noted(trio.current_time(), "formats", formats=(input, output)))

    def user_audio(self, audio: bytes) -> None:
        self._pending.append(_Noted(trio.current_time(), "user", audio))

    def assistant_audio(self, item_id: str, audio: bytes) -> None:
        self._pending.append(_Noted(trio.current_time(), "assistant", audio, item_id))

    def playback_stopped(self, item_id: str | None, played_ms: int) -> None:
        self._pending.append(_Noted(trio.current_time(), "stopped", b"", item_id, played_ms))

    # --- the observer ---------------------------------------------------------------------

    def observe(self, event: SessionEvent) -> None:
        handler = _NOTED.get(type(event))
        if handler is not None:
            handler(self, round(trio.current_time() - self.origin, 3), event)

    def _started(self, at: float, event: SessionStarted) -> None:
        self.session_id, self.model = event.session_id or self.session_id, event.model

    def _heard(self, at: float, event: UserTranscript) -> None:
        if event.final:
            self._keep(self.transcript, {"at_s": at, "role": "user", "text": event.text})

    def _said(self, at: float, event: AssistantMessage) -> None:
        entry = {"at_s": at, "role": "assistant", "text": event.text, "audio_ms": event.audio_ms}
        self._keep(self.transcript, entry)

    def _called(self, at: float, event: ToolCallFinished) -> None:
        self._keep(self.tool_calls, {"at_s": at, **_unstructure(event)})

    def _turn(self, at: float, event: TurnMeasured) -> None:
        self._measured(event.metrics)

    def _happened(self, at: float, event: Interrupted | Reconnected | RolledOver) -> None:
        self._keep(self.events, {"at_s": at, "event": type(event).__name__, **_unstructure(event)})

    def _error(self, at: float, event: ErrorReported) -> None:
        entry = {"at_s": at, "event": "ErrorReported", "message": event.error.message}
        self._keep(self.events, entry)

    def _measured(self, turn: TurnMetrics) -> None:
        for name, value in attrs.asdict(turn.usage).items():
            self._usage[name] = self._usage.get(name, 0) + value
        if turn.cost_usd is not None:
            self._cost = (self._cost or 0.0) + turn.cost_usd
        if len(self.turns) < MAX_ENTRIES:
            self.turns.append(turn)
        else:
            self.left_out += 1

    def _keep(self, entries: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        if len(entries) < MAX_ENTRIES:
            entries.append(entry)
        else:
            self.left_out += 1

    # --- the audio, off the actors' tasks -------------------------------------------------

    def _place(self) -> Timeline:
        """Puts what the taps noted on the timeline."""
        pending, self._pending = self._pending, []
        timeline = self.timeline
        if timeline is None:
            # The rate of the first formats the session confirmed (audio before them
            # is in the protocol's default format).
            first = next((n.formats for n in pending if n.formats is not None), self._formats)
            rate = max(sample_rate(first[0]), sample_rate(first[1]))
            timeline = self.timeline = Timeline(rate, self.origin)
        for noted in pending:
            fmt_in, fmt_out = self._formats
            if noted.formats is not None:
                self._formats = noted.formats
            elif noted.kind == "user":
                timeline.user(noted.at, _samples(noted.audio, fmt_in, timeline.rate))
            elif noted.kind == "assistant":
                samples = _samples(noted.audio, fmt_out, timeline.rate)
                timeline.assistant(noted.at, noted.item_id or "", samples)
            else:
                timeline.stopped(noted.at, noted.item_id, noted.played_ms)
        return timeline

    def _open_files(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        name = f"{stamp}-{self.session_id}"
        self._directory.mkdir(parents=True, exist_ok=True)
        self.wav_path = self._directory / f"{name}.wav"
        self.report_path = self._directory / f"{name}.json"

    def _write(self, frames: np.ndarray[Any, np.dtype[np.int16]], rate: int) -> None:
        """Appends stereo frames to the WAV file (in a worker thread)."""
        if self._wav is None:
            assert self.wav_path is not None
            self._wav = wave.open(str(self.wav_path), "wb")  # noqa: SIM115 (closed in close)
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(rate)
        self._wav.writeframes(frames.astype("<i2").tobytes())

    async def flush(self) -> None:
        """Writes out the audio that can no longer change."""
        if self.wav_path is None:
            self._open_files()
        timeline = self._place()
        frames = timeline.take(trio.current_time())
        if len(frames):
            await trio.to_thread.run_sync(self._write, frames, timeline.rate)

    async def run(self) -> None:
        """Flushes every :data:`FLUSH_S` until cancelled."""
        while True:
            await trio.sleep(FLUSH_S)
            await self.flush()

    async def close(self) -> None:
        """Writes the rest of the audio and the report."""
        await self.flush()
        assert self.timeline is not None
        rest = self.timeline.rest()
        report = self.report()
        await trio.to_thread.run_sync(self._finish, rest, report)

    def _finish(self, rest: np.ndarray[Any, np.dtype[np.int16]], report: dict[str, Any]) -> None:
        assert self.timeline is not None and self.report_path is not None
        self._write(rest, self.timeline.rate)
        assert self._wav is not None
        self._wav.close()
        self.report_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))

    def report(self) -> dict[str, Any]:
        """The session report, as JSON values (times in seconds from the recording's start)."""
        timeline = self.timeline
        return {
            "session_id": self.session_id,
            "model": self.model,
            "started_at": self.started,
            "audio": {
                "file": self.wav_path.name if self.wav_path is not None else None,
                "rate": timeline.rate if timeline is not None else None,
                "channels": ["user", "assistant"],
                "seconds": round(timeline.taken / timeline.rate, 3) if timeline else 0,
                "assistant_dropped_ms": timeline.dropped_ms if timeline else 0,
            },
            "turns": [_relative(_unstructure(t), self.origin) for t in self.turns],
            "transcript": self.transcript,
            "tool_calls": self.tool_calls,
            "events": self.events,
            "usage": dict(self._usage),
            "cost_usd": self._cost,
            "entries_left_out": self.left_out,
        }


_NOTED: dict[type, Callable[[Recording, float, Any], None]] = {
    SessionStarted: Recording._started,
    UserTranscript: Recording._heard,
    AssistantMessage: Recording._said,
    ToolCallFinished: Recording._called,
    TurnMeasured: Recording._turn,
    Interrupted: Recording._happened,
    Reconnected: Recording._happened,
    RolledOver: Recording._happened,
    ErrorReported: Recording._error,
}
"""What the report keeps of each event (given when it came, in seconds from the start)."""


def _relative(value: Any, origin: float) -> Any:
    """Clock times (``*_at`` fields) as seconds from the recording's start."""
    if isinstance(value, dict):
        return {
            k: round(v - origin, 3)
            if k.endswith("_at") and isinstance(v, float)
            else _relative(v, origin)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_relative(v, origin) for v in value]
    return value


class Recorder(Plugin):
    """Records each session it is opened for: a stereo WAV file and a JSON report.

    Args:
        directory: where the files go (created if missing).

    Attributes:
        recordings: the last :data:`KEPT_RECORDINGS` recordings, oldest first.
    """

    name = "recorder"

    def __init__(self, directory: str | Path = "recordings") -> None:
        super().__init__()
        self.directory = Path(directory)
        self.recordings: deque[Recording] = deque(maxlen=KEPT_RECORDINGS)

    def describe(self) -> dict[str, list[str]]:
        return {"records": [f"stereo WAV and a JSON report per session, in {self.directory}/"]}

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        recording = Recording(self.directory)
        self.recordings.append(recording)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recording.run)
            try:
                yield Contribution(observe=recording.observe, audio=recording)
            finally:
                nursery.cancel_scope.cancel()
        # The files are finished even when the session was cancelled, within a bound.
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_S):
            await recording.close()
        _log.info("recorded %s and %s", recording.wav_path, recording.report_path)
