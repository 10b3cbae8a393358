"""The load client of ``bench_engine.py``: many voice sessions in one trio process.

Each session streams the same pre-encoded turn (a tone, then silence) in real
time and reads every event, looking only at the ``type`` of most of them. Latency
is measured on this process's clock only (``trio.current_time``, a monotonic
clock): from sending the append whose audio makes an event due to receiving
that event.

One :class:`Pacer` sends every session's appends from one task on one timer:
a timer and a task per session cost the client a third of its time, and the
client must stay far from saturation for the engine's latency to be what is
measured.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import math
from collections.abc import Awaitable, Callable

import attrs
import numpy as np
import orjson
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

RATE = 24000
_PREFIX = '{"type":"'

# Events timed from a turn's trigger appends; "response.done" is reported but
# not part of the overall figure (the engine streams a reply as fast as the
# socket takes it, so it measures throughput, not latency).
KINDS = (
    "speech_started",
    "speech_stopped",
    "committed",
    "response.created",
    "first_audio_delta",
    "response.done",
)
LATENCY_KINDS = KINDS[:5]


def _b64(samples: np.ndarray) -> str:
    return base64.b64encode(samples.tobytes()).decode()


@attrs.frozen(kw_only=True)
class Turn:
    """One user turn as append frames, with the frames that trigger VAD events."""

    frames: tuple[str, ...]
    chunk_s: float
    start_index: int  # holds the first speech sample
    stop_index: int  # holds the sample where the silence reaches the VAD duration
    stop_ms: int  # audio_end_ms of speech_stopped, relative to the turn's start

    @property
    def seconds(self) -> float:
        return len(self.frames) * self.chunk_s


def make_turn(
    *, speech_ms: int = 1500, silence_ms: int = 1000, chunk_ms: int = 100, vad_silence_ms: int = 500
) -> Turn:
    """Builds the turn: a tone with a syllable rhythm, then digital silence."""
    if speech_ms % chunk_ms or silence_ms % chunk_ms or chunk_ms % 10:
        raise ValueError("speech and silence must be whole chunks, chunks whole 10 ms VAD frames")
    if silence_ms <= vad_silence_ms:
        raise ValueError("the silence must be longer than the VAD's silence duration")
    t = np.arange(speech_ms * RATE // 1000) / RATE
    # 4 syllables a second between -10 and -22 dBFS: always above the VAD threshold
    # (-30 dBFS), so the turn has exactly one start and one stop.
    level = 0.2 + 0.1 * np.cos(2 * math.pi * 4 * t)
    tone = np.sin(2 * math.pi * (180 + 40 * np.sin(2 * math.pi * 0.7 * t)) * t) * level
    pcm = np.concatenate([tone * 32767, np.zeros(silence_ms * RATE // 1000)]).astype("<i2")
    step = chunk_ms * RATE // 1000
    frames = tuple(
        '{"type":"input_audio_buffer.append","audio":"' + _b64(pcm[i : i + step]) + '"}'
        for i in range(0, len(pcm), step)
    )
    stop_ms = speech_ms + vad_silence_ms
    return Turn(
        frames=frames,
        chunk_s=chunk_ms / 1000,
        start_index=0,
        stop_index=(stop_ms - 1) // chunk_ms,
        stop_ms=stop_ms,
    )


@attrs.define
class Results:
    """What all sessions of one level measured."""

    latencies: dict[str, list[float]] = attrs.Factory(lambda: {k: [] for k in KINDS})
    send_lag: list[float] = attrs.Factory(list)
    turns: int = 0  # measured turns (both triggers inside the window)
    missing: dict[str, int] = attrs.Factory(dict)
    errors: list[str] = attrs.Factory(list)
    broken: list[str] = attrs.Factory(list)  # sessions whose connection failed
    not_completed: int = 0  # measured responses that ended other than "completed"
    vad_mismatch: int = 0  # speech_stopped at another offset than the script's
    events: int = 0
    bytes: int = 0


Step = Callable[[float], Awaitable[float | None]]
"""Sends what is due at the given time; returns when the next send is due (None: done)."""


class Pacer:
    """One task and one timer that send the appends of every session of the process."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Step]] = []
        self._order = itertools.count()  # ties go first come, first served
        self._added = trio.Event()

    def add(self, due: float, step: Step) -> None:
        heapq.heappush(self._due, (due, next(self._order), step))
        self._added.set()

    async def run(self) -> None:
        """Sends on time until cancelled."""
        due = self._due
        while True:
            if not due:
                self._added = trio.Event()
                await self._added.wait()
                continue
            await trio.sleep_until(due[0][0])
            now = trio.current_time()
            while due and due[0][0] <= now:
                _, _, step = heapq.heappop(due)
                later = await step(now)
                if later is not None:
                    heapq.heappush(due, (later, next(self._order), step))


class _Session:
    """The client side of one engine session."""

    def __init__(self, turn: Turn, results: Results) -> None:
        self.turn = turn
        self.results = results
        self.start_sent: list[float] = []
        self.stop_sent: list[float] = []
        self.measured: list[bool] = []
        self.got: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.first_audio_turn: int | None = None
        self.reply_turn: dict[str, int] = {}
        self.n_started = self.n_stopped = self.n_committed = 0
        self.finished = trio.Event()

    def _record(self, kind: str, turn: int, now: float, sent: list[float]) -> None:
        if 0 <= turn < len(self.measured) and self.measured[turn]:
            self.results.latencies[kind].append(now - sent[turn])
            self.got[kind] += 1

    def stream(
        self, ws: WebSocketConnection, begin: float, window: tuple[float, float], pacer: Pacer
    ) -> trio.Event:
        """Has ``pacer`` send turns from ``begin`` in real time until a turn would start
        after the window; the event is set once the last is sent (or the line broke)."""
        turn, send = self.turn, ws.send_message
        lags = self.results.send_lag
        streamed = trio.Event()
        frames = len(turn.frames)
        sent = 0  # appends sent so far, over all turns

        async def step(now: float) -> float | None:
            nonlocal sent
            index, n = divmod(sent, frames)
            start = begin + index * turn.seconds
            if n == 0:
                if start >= window[1]:
                    streamed.set()
                    return None
                self.start_sent.append(math.inf)
                self.stop_sent.append(math.inf)
                stop_at = start + turn.stop_index * turn.chunk_s
                measured = start >= window[0] and stop_at <= window[1]
                self.measured.append(measured)
                self.results.turns += measured
            if self.measured[index]:
                lags.append(now - (start + n * turn.chunk_s))
            if n == turn.start_index:
                self.start_sent[index] = now
            if n == turn.stop_index:
                self.stop_sent[index] = now
            try:
                await send(turn.frames[n])
            except ConnectionClosed as e:
                self.results.broken.append(repr(e))
                streamed.set()
                return None
            sent += 1
            return begin + sent * turn.chunk_s

        pacer.add(begin, step)
        return streamed

    async def receive(self, ws: WebSocketConnection) -> None:
        get, results, turn = ws.get_message, self.results, self.turn
        turn_ms = round(turn.seconds * 1000)
        while True:
            message = await get()
            now = trio.current_time()
            results.events += 1
            results.bytes += len(message)
            if message.startswith(_PREFIX):
                kind = message[9 : message.index('"', 9)]
            else:
                kind = orjson.loads(message)["type"]
            if kind == "response.output_audio.delta":
                if self.first_audio_turn is not None:
                    k, self.first_audio_turn = self.first_audio_turn, None
                    self._record("first_audio_delta", k, now, self.stop_sent)
            elif kind == "input_audio_buffer.speech_started":
                self._record("speech_started", self.n_started, now, self.start_sent)
                self.n_started += 1
            elif kind == "input_audio_buffer.speech_stopped":
                k = self.n_stopped
                self.n_stopped += 1
                if orjson.loads(message)["audio_end_ms"] != k * turn_ms + turn.stop_ms:
                    results.vad_mismatch += 1
                self._record("speech_stopped", k, now, self.stop_sent)
            elif kind == "input_audio_buffer.committed":
                self._record("committed", self.n_committed, now, self.stop_sent)
                self.n_committed += 1
            elif kind == "response.created":
                # A reply answers the turn whose speech stopped last; its done
                # event may come after the next turn's, hence the map by id.
                k = self.first_audio_turn = self.n_stopped - 1
                self.reply_turn[orjson.loads(message)["response"]["id"]] = k
                self._record("response.created", k, now, self.stop_sent)
            elif kind == "response.done":
                response = orjson.loads(message)["response"]
                k = self.reply_turn.pop(response["id"], -1)
                if 0 <= k < len(self.measured) and self.measured[k]:
                    results.not_completed += response["status"] != "completed"
                    self._record("response.done", k, now, self.stop_sent)
                if self.got["response.done"] == sum(self.measured):
                    self.finished.set()
            elif kind == "error":
                results.errors.append(message[:300])

    def count_missing(self) -> None:
        expected = sum(self.measured)
        for kind in KINDS:
            if self.got[kind] < expected:
                missing = self.results.missing
                missing[kind] = missing.get(kind, 0) + expected - self.got[kind]


async def run_session(
    url: str,
    turn: Turn,
    results: Results,
    *,
    go: trio.Event,
    window: list[float],
    pacer: Pacer,
    begin_offset: float,
    grace_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Connects (started once ``session.created`` is in), then streams once ``go`` is set.

    ``window`` holds the measurement window (start, end on ``trio.current_time``)
    by the time ``go`` is set. The first turn starts one turn before the window
    plus ``begin_offset``, so that every session is streaming when it opens.
    """
    session = _Session(turn, results)
    started = False
    try:
        async with open_websocket_url(
            url,
            message_queue_size=4096,
            max_message_size=64 * 2**20,
            connect_timeout=20,
            disconnect_timeout=5,
            receive_buffer_size=2**16,
        ) as ws:
            created = orjson.loads(await ws.get_message())
            assert created["type"] == "session.created", created
            task_status.started()
            started = True
            await go.wait()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.receive, ws)
                begin = window[0] - turn.seconds + begin_offset
                await session.stream(ws, begin, (window[0], window[1]), pacer).wait()
                if any(session.measured):
                    with trio.move_on_after(grace_s):
                        await session.finished.wait()
                nursery.cancel_scope.cancel()
    except* (ConnectionClosed, HandshakeError, OSError) as group:
        # A failed connection fails the level; it must not end the benchmark.
        results.broken.append(repr(group.exceptions[0]))
        if not started:
            task_status.started()
    session.count_missing()
