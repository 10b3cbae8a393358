"""Runtime benchmarks: the latency Cantata adds to a tool call, and CPU per voice session.

``latency``: framework-added tool latency. A wire wrapper stamps frames with
``time.perf_counter_ns``: when its ``receive_text`` returns a
``response.function_call_arguments.done`` frame, and when its ``send_text`` is
called with the ``conversation.item.create`` carrying that call's
``function_call_output``. The difference, per call, is everything Cantata does
between the two (parse, route, start the call's task, run an async tool that
returns a constant, serialize, hand to the writer), plus whatever else the
thread did meanwhile (reading the frames that follow; in the in-thread
variants, the engine). Each turn is ``session.run("ping")``: one call, then a
text reply. Variants: ``memory`` (``engine_wire``: the engine in this thread,
no socket), ``loopback`` (a real WebSocket to ``cantata serve`` in its own
process) and ``loopback-inproc`` (a real WebSocket to ``run_engine`` in this
thread). Calls with a garbage collection inside are counted apart::

    python tests/benchmarks/bench_runtime.py latency [--turns 2000] [--variant memory loopback]

``cpu``: client CPU per concurrent voice session, Cantata beside the OpenAI
Agents SDK's realtime session (``RealtimeRunner``, its websocket model pointed
at the engine), and beside ``trio-ws-floor``: the same sessions over bare
trio-websocket with no framework, the cost of the transport Cantata sits on.
All talk to one local engine in its own process, given a stand-in transcriber
that maps the pitch of a turn to a sentence, so that a spoken turn can ask for
the weather tool. Each client runs in its own process holding N sessions.
Every session streams the same script in real time as PCM16 24 kHz chunks:
turns of a tone then silence; server VAD ends each turn; the engine
transcribes it and answers in audio; one turn asks for the weather, so the
tool runs and a second response speaks its output. Session starts are spread
over one turn, and one pacer (``_load_client.Pacer``: one task, one timer) sends
every session's chunks, through ``session.send_audio`` for Cantata (with the
default framing, and ``cantata-websockets`` with ``framing="websockets"``). The
Agents SDK runs as shipped (``agents-sdk``: its websocket offers
permessage-deflate, which the engine declines) and offering none
(``agents-sdk-nodeflate``). Each client also reports its resident memory with
one session, with all N idle, and at the end of the window. CPU is
``getrusage(RUSAGE_SELF)`` user+sys of the client process over a window of the
same wall time for every client (from the first session's first chunk to one
turn plus the script plus ``--tail`` later), divided by N and by the minutes of
audio each session streamed. Responses, tool calls, transcripts and errors are
counted per session; a run where any session falls short is marked incomplete.
The clients run one after the other, ``--repeat`` times in alternating order;
the summary gives medians::

    python tests/benchmarks/bench_runtime.py cpu [--sessions 10 50] [--chunk-ms 20] [--repeat 3]

Both measure a shared machine: each line reports the CPU other processes used
meanwhile (``others``, % of a core), and each run first waits a while for a
quiet second. The Agents SDK is a benchmark-only dependency, not in pyproject
(measured with openai-agents 0.24.0)::

    .venv/bin/pip install openai-agents
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pybase64
import trio
from _load_client import Pacer

from framework import Agent, ClockSink, open_session, tool
from framework.protocol import AudioTranscription, ServerVad
from framework.runtime import (
    AssistantMessage,
    Endpoint,
    ErrorReported,
    Interrupted,
    ResponseFinished,
    ToolCallFinished,
    UserTranscript,
)
from framework.testing import engine_wire, run_engine
from framework.transport import Framing, open_connection

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
_TICK = os.sysconf("SC_CLK_TCK")
RATE = 24000

# --- engines in their own process -----------------------------------------------------


def start_engine(command: Sequence[str]) -> tuple[subprocess.Popen[bytes], str]:
    """Starts an engine process that prints its URL then "Ready"; returns it and the URL."""
    proc = subprocess.Popen([sys.executable, *command], cwd=REPO, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out, deadline = b"", time.monotonic() + 30
    try:
        # Unbuffered reads: a buffered readline would hide later lines from select.
        while b"Ready" not in out:
            ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
            chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                raise RuntimeError(f"the engine did not start: {out.decode(errors='replace')}")
            out += chunk
        found = re.search(rb"ws://\S+", out)
        assert found, out
        return proc, found.group().decode()
    except BaseException:
        stop_engine(proc)
        raise


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (the engine closes its sessions and exits), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_kib() -> int:
    """This process's resident memory in KiB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- (a) framework-added tool latency --------------------------------------------------

PING_RULES = r"""
fallback = "?"

[[rule]]
when = "^ping"
call = "ping"

[[rule]]
after = "ping"
say = "done"
"""

_ARGS_DONE = '"response.function_call_arguments.done"'
_OUTPUT = '"function_call_output"'


class TimedWire:
    """Wraps a wire; stamps tool-call frames in and their outputs out.

    Only a substring test and a list append happen inside the measured span
    on the way in; the frame is parsed after the outgoing stamp is taken.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.spans_ns: list[tuple[int, int]] = []  # (arrived, output sent) per call
        self._arrived: list[tuple[int, str]] = []
        self._by_call: dict[str, int] = {}

    async def receive_text(self) -> str:
        text: str = await self.inner.receive_text()
        now = time.perf_counter_ns()
        if _ARGS_DONE in text:
            self._arrived.append((now, text))
        return text

    async def send_text(self, text: str) -> None:
        now = time.perf_counter_ns()
        if _OUTPUT in text:
            for stamp, raw in self._arrived:
                self._by_call[orjson.loads(raw)["call_id"]] = stamp
            self._arrived.clear()
            event = orjson.loads(text)
            if event["type"] == "conversation.item.create":
                self.spans_ns.append((self._by_call.pop(event["item"]["call_id"]), now))
        await self.inner.send_text(text)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.aclose(code, reason)


class GcPasses:
    """Records when the garbage collector ran, to tell its pauses from the framework's work."""

    def __init__(self) -> None:
        self.passes: list[tuple[int, int]] = []
        self._start = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
        else:
            self.passes.append((self._start, time.perf_counter_ns()))

    def hit(self, spans: list[tuple[int, int]]) -> np.ndarray:
        """Whether a collection ran inside each span."""
        starts = np.array([p[0] for p in self.passes] or [0], dtype=np.int64)
        begin = np.array([s[0] for s in spans], dtype=np.int64)
        end = np.array([s[1] for s in spans], dtype=np.int64)
        # The first pass starting at or after each span's beginning.
        first = np.searchsorted(starts, begin)
        after = np.append(starts, np.iinfo(np.int64).max)[first]
        return np.asarray((after <= end) & bool(self.passes))


class PingBot(Agent):
    instructions = "Call ping when asked."
    output_modalities = ("text",)

    @tool
    async def ping(self) -> str:
        """Answers at once."""
        return "pong"


async def _ping_turns(wire: TimedWire, turns: int) -> None:
    async with open_session(PingBot(), connection=wire) as session:
        for _ in range(turns):
            result = await session.run("ping")
            calls = result.tool_calls
            if len(calls) != 1 or calls[0].status != "ok" or result.text != "done":
                raise RuntimeError(f"unexpected turn: {result}")


@asynccontextmanager
async def _latency_wire(variant: str, engine_url: str | None) -> AsyncIterator[TimedWire]:
    if variant == "memory":
        async with engine_wire(rules=PING_RULES) as inner:
            yield TimedWire(inner)
    elif variant == "loopback":
        assert engine_url is not None
        async with open_connection(engine_url, keepalive_interval=None) as conn:
            yield TimedWire(conn)
    elif variant == "loopback-inproc":
        async with (
            run_engine(rules=PING_RULES) as url,
            open_connection(url, keepalive_interval=None) as conn,
        ):
            yield TimedWire(conn)
    else:
        raise ValueError(variant)


async def measure_latency(
    variant: str, turns: int, warmup: int, engine_url: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds per call, and whether a GC pass ran inside it; warm-up left out."""
    collections = GcPasses()
    gc.callbacks.append(collections)
    try:
        with trio.fail_after(60 + turns * 0.05):
            async with _latency_wire(variant, engine_url) as wire:
                await _ping_turns(wire, warmup + turns)
    finally:
        gc.callbacks.remove(collections)
    if len(wire.spans_ns) != warmup + turns:
        raise RuntimeError(f"{len(wire.spans_ns)} calls timed, {warmup + turns} expected")
    spans = wire.spans_ns[warmup:]
    return np.array([b - a for a, b in spans]) / 1000, collections.hit(spans)


def latency_main(args: argparse.Namespace) -> None:
    proc = url = None
    rules = Path(tempfile.mkdtemp()) / "ping.toml"
    rules.write_text(PING_RULES)
    if "loopback" in args.variant:
        serve = ["-m", "framework.apps.cli", "serve", "--port", "0", "--rules", str(rules)]
        proc, url = start_engine(serve)
    rows = []
    try:
        for variant in args.variant:
            wait_for_quiet(args.quiet_wait)
            busy0, cpu0 = machine_busy(), self_cpu()
            engine0 = process_cpu(proc.pid) if proc else 0.0
            wall0 = time.monotonic()
            us, gc_hit = trio.run(measure_latency, variant, args.turns, args.warmup, url)
            wall = time.monotonic() - wall0
            mine = self_cpu() - cpu0 + (process_cpu(proc.pid) - engine0 if proc else 0.0)
            others = (machine_busy() - busy0 - mine) / wall
            p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
            clean = np.percentile(us[~gc_hit], 99) if (~gc_hit).any() else float("nan")
            rows.append((variant, len(us), p50, p99, p999, us.max(), gc_hit.sum(), clean, others))
    finally:
        if proc is not None:
            stop_engine(proc)
    print(f"\nframework-added tool latency in us ({args.warmup} warm-up calls left out)")
    print(
        f"{'variant':>16} {'calls':>6} {'p50':>6} {'p99':>6} {'p99.9':>6} {'max':>6} "
        f"{'GC hit':>7} {'p99 no GC':>10} {'others':>7}  p99 < 1 ms"
    )
    for variant, n, p50, p99, p999, peak, hit, clean, others in rows:
        ok = "yes" if p99 < 1000 else "NO"
        print(
            f"{variant:>16} {n:>6} {p50:>6.0f} {p99:>6.0f} {p999:>6.0f} {peak:>6.0f} "
            f"{hit:>7} {clean:>10.0f} {100 * others:>6.0f}%  {ok}"
        )
    print(
        "GC hit: calls with a garbage collection inside; others: other processes' CPU, % of a core"
    )


# --- (b) CPU per voice session: the engine process ------------------------------------

VOICE_RULES = r"""
fallback = "Sorry?"

[[rule]]
when = "weather in (?P<city>[A-Za-z]+)"
call = "get_weather"
args = { city = "{city}" }

[[rule]]
after = "get_weather"
say = "In {city} it is {output}."

[[rule]]
when = "^hello"
say = "Hi! How can I help?"
"""

HELLO_HZ, WEATHER_HZ = 220.0, 440.0
SENTENCES = {HELLO_HZ: "hello there", WEATHER_HZ: "what is the weather in Paris"}


class ToneTranscriber:
    """A stand-in transcriber: the dominant pitch of a turn picks its sentence."""

    name = "tone pitch (benchmark stand-in)"

    async def transcribe(
        self, samples: np.ndarray, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        if not len(samples):
            return [""]
        spectrum = np.abs(np.fft.rfft(samples.astype(np.float32)))
        pitch = float(np.argmax(spectrum)) * rate / len(samples)
        text = SENTENCES[min(SENTENCES, key=lambda hz: abs(hz - pitch))]
        return re.findall(r"\S+\s*", text)


async def _serve_voice_engine(rules: str) -> None:
    from framework.engine import Engine, Rules, serve_engine

    engine = Engine(rules=Rules.from_file(rules), transcriber=ToneTranscriber())
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                lambda task_status: serve_engine(engine, port=0, task_status=task_status)
            )
            print(engine.banner(url), flush=True)
            print("Ready.", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def engine_main(args: argparse.Namespace) -> None:
    trio.run(_serve_voice_engine, args.rules)


# --- (b) the script ---------------------------------------------------------------------


def make_script(*, turns: int, tool_turn: int, speech_ms: int, silence_ms: int) -> bytes:
    """One session's audio: per turn a tone (its pitch is its sentence), then silence."""
    t = np.arange(speech_ms * RATE // 1000) / RATE
    # 4 syllables a second between -10 and -22 dBFS: above the VAD threshold throughout,
    # so every turn has exactly one start and one stop.
    level = 0.2 + 0.1 * np.cos(2 * np.pi * 4 * t)
    pieces = []
    for turn in range(turns):
        pitch = WEATHER_HZ if turn == tool_turn else HELLO_HZ
        pieces += [np.sin(2 * np.pi * pitch * t) * level * 32767, np.zeros(silence_ms * 24)]
    return np.concatenate(pieces).astype("<i2").tobytes()


# --- (b) the clients ---------------------------------------------------------------------


class VoiceBot(Agent):
    """The Cantata side; the same settings as ``_agents_sdk_client.SETTINGS``."""

    instructions = "Weather bot."
    voice = "ash"
    output_modalities = ("audio",)
    transcription = AudioTranscription(model="gpt-4o-mini-transcribe")
    turn_detection = ServerVad(
        threshold=0.5,
        prefix_padding_ms=300,
        silence_duration_ms=500,
        create_response=True,
        interrupt_response=True,
    )

    @tool
    async def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: the city name.
        """
        return "sunny"


class _Counts:
    """What one session got by the end of the window (the SDK client counts the same)."""

    def __init__(self) -> None:
        self.responses = self.completed = self.tool_calls = self.transcripts = 0
        self.audio_bytes = self.errors = self.barge_ins = self.truncated = 0
        self.error_text: list[str] = []
        self.lag: list[float] = []

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("error_text", "lag")}


class _Schedule:
    """When each session's chunks are due, and the one pacer that sends them all.

    The pacer is ``_load_client.Pacer``: one task and one timer for every
    session of the process, so that what is measured is the sessions' cost,
    not a timer and a task per session.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        audio = Path(args.audio).read_bytes()
        step = args.chunk_ms * 48
        self.chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
        self.chunk_s: float = args.chunk_ms / 1000
        self.turn_s: float = args.turn_ms / 1000
        self.audio_s = len(audio) / 48000
        self.sessions: int = args.sessions
        self.pacer = Pacer()
        self.t0: float = 0.0

    def start(self, lead_s: float) -> None:
        self.t0 = trio.current_time() + lead_s

    def end(self, tail_s: float) -> float:
        # The last session starts almost a turn late; the tail takes its last reply.
        return self.t0 + self.turn_s + len(self.chunks) * self.chunk_s + tail_s

    def stream(self, index: int, counts: _Counts, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Has the pacer send the chunks of session ``index``, each at its time."""
        start = self.t0 + index * self.turn_s / self.sessions
        chunks, chunk_s, lag = self.chunks, self.chunk_s, counts.lag
        sent = 0

        async def step(now: float) -> float | None:
            nonlocal sent
            lag.append(now - (start + sent * chunk_s))
            await send(chunks[sent])
            sent += 1
            return start + sent * chunk_s if sent < len(chunks) else None

        self.pacer.add(start, step)


Send = Callable[[bytes], Awaitable[None]]
"""Appends one chunk of a session's audio."""


class _PlayerSink(ClockSink):
    """A ClockSink that plays and forgets, as a player does: it counts what it got.

    ``ClockSink`` keeps every byte (a recorder's sink); a session's memory
    figure should not include a recording the benchmark itself asked for.
    """

    def __init__(self) -> None:
        super().__init__()
        self.played = 0

    def write(self, item_id: str, audio: bytes) -> None:
        super().write(item_id, audio)
        self.played += len(audio)
        self.audio[item_id].clear()


async def _cantata_session(
    url: str,
    counts: _Counts,
    framing: Framing = "trio-websocket",
    *,
    task_status: trio.TaskStatus[Send] = trio.TASK_STATUS_IGNORED,
) -> None:
    sink = _PlayerSink()
    where = Endpoint(url=url, framing=framing)
    try:
        async with open_session(VoiceBot(), endpoints=[where], audio_out=sink) as session:
            task_status.started(session.send_audio)
            async for event in session:
                if isinstance(event, ResponseFinished):
                    counts.responses += 1
                    counts.completed += event.status == "completed"
                elif isinstance(event, ToolCallFinished):
                    counts.tool_calls += 1
                elif isinstance(event, UserTranscript):
                    counts.transcripts += event.final
                elif isinstance(event, Interrupted):
                    counts.barge_ins += 1
                    counts.truncated += event.truncated
                elif isinstance(event, ErrorReported):
                    counts.errors += 1
                    counts.error_text.append(str(event.error)[:200])
                elif isinstance(event, AssistantMessage):
                    counts.audio_bytes = sink.played
    finally:
        counts.audio_bytes = sink.played


async def _floor_session(
    url: str,
    counts: _Counts,
    *,
    task_status: trio.TaskStatus[Send] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The same session over bare trio-websocket: no framework, only what the script needs.

    It gets what Cantata's own connection gets of trio-websocket (its read size
    and queue) and of base64 (pybase64), so the ratio is the framework's cost alone.
    """
    from trio_websocket import open_websocket_url

    from framework.protocol import SessionUpdateEvent, to_json
    from framework.transport._connection import RECEIVE_BYTES

    update = to_json(SessionUpdateEvent(session=VoiceBot().session_config()))
    async with open_websocket_url(
        f"{url}?model=gpt-realtime",
        max_message_size=2**26,
        message_queue_size=256,
        receive_buffer_size=RECEIVE_BYTES,
    ) as ws:
        await ws.get_message()
        await ws.send_message(update)
        while orjson.loads(await ws.get_message())["type"] != "session.updated":
            pass

        async def send(chunk: bytes) -> None:
            audio = pybase64.b64encode_as_string(chunk)
            await ws.send_message('{"type":"input_audio_buffer.append","audio":"' + audio + '"}')

        task_status.started(send)
        while True:
            event = orjson.loads(await ws.get_message())
            kind = event["type"]
            if kind == "response.output_audio.delta":
                counts.audio_bytes += len(event["delta"]) * 3 // 4
            elif kind == "response.done":
                counts.responses += 1
                counts.completed += event["response"]["status"] == "completed"
            elif kind == "response.function_call_arguments.done":
                output = {"type": "function_call_output", "call_id": event["call_id"]}
                create = {
                    "type": "conversation.item.create",
                    "item": {**output, "output": "sunny"},
                }
                await ws.send_message(orjson.dumps(create).decode())
                await ws.send_message('{"type":"response.create"}')
                counts.tool_calls += 1
            elif kind == "conversation.item.input_audio_transcription.completed":
                counts.transcripts += 1
            elif kind == "conversation.item.truncated":
                counts.truncated += 1
            elif kind == "error":
                counts.errors += 1
                counts.error_text.append(str(event["error"])[:200])


async def _trio_client(args: argparse.Namespace) -> dict[str, Any]:
    schedule = _Schedule(args)
    counts = [_Counts() for _ in range(args.sessions)]
    if args.floor:
        one: Callable[..., Awaitable[None]] = _floor_session
    else:
        one = functools.partial(_cantata_session, framing=args.framing)
    name = "trio-ws-floor" if args.floor else CANTATA_BY_FRAMING[args.framing]
    rss1 = 0
    cpu0, began = self_cpu(), trio.current_time()
    async with trio.open_nursery() as nursery:
        senders: list[Send] = []
        for i in range(args.sessions):
            with trio.fail_after(20):
                senders.append(await nursery.start(one, args.url, counts[i]))
            if i == 0:
                await trio.sleep(0.2)
                rss1 = rss_kib()  # one session up: what it imported is not per session
        connect_s = trio.current_time() - began
        await trio.sleep(0.5)  # as the SDK's client waits: the sessions settle
        rss_idle = rss_kib()
        schedule.start(args.lead_ms / 1000)
        for i, send in enumerate(senders):
            schedule.stream(i, counts[i], send)
        nursery.start_soon(schedule.pacer.run)
        await trio.sleep_until(schedule.t0)
        cpu1, engine1, busy1 = self_cpu(), process_cpu(args.engine_pid), machine_busy()
        wall1 = time.monotonic()
        await trio.sleep_until(schedule.end(args.tail_ms / 1000))
        cpu2, engine2, busy2 = self_cpu(), process_cpu(args.engine_pid), machine_busy()
        wall2 = time.monotonic()
        rss_active = rss_kib()
        snapshot = [c.as_dict() for c in counts]
        nursery.cancel_scope.cancel()
    lags = sorted(x for c in counts for x in c.lag)
    return {
        "framework": name,
        "version": version("trio-websocket" if args.floor else "cantata"),
        "sessions": args.sessions,
        "connect_s": connect_s,
        "setup_cpu": cpu1 - cpu0,
        "cpu": cpu2 - cpu1,
        "engine_cpu": engine2 - engine1,
        "machine_busy": busy2 - busy1,
        "wall": wall2 - wall1,
        "audio_s": schedule.audio_s,
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else float("nan"),
        "per_session": snapshot,
        "errors": [e for c in counts for e in c.error_text][:5],
        "rss_kib": [rss1, rss_idle, rss_active],
    }


def client_main(args: argparse.Namespace) -> None:
    print(json.dumps(trio.run(_trio_client, args)), flush=True)


# --- (b) the orchestration --------------------------------------------------------------

CANTATA_BY_FRAMING = {"trio-websocket": "cantata", "websockets": "cantata-websockets"}
FRAMEWORKS = (
    "cantata",
    "cantata-websockets",
    "agents-sdk",
    "agents-sdk-nodeflate",
    "trio-ws-floor",
)


def machine_busy() -> float:
    """CPU seconds all processors spent busy (not idle or in I/O wait), from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICK


def wait_for_quiet(limit_s: float) -> float:
    """Waits (at most ``limit_s``) for a second with the machine under 10% busy."""
    deadline = time.monotonic() + limit_s
    while True:
        busy0 = machine_busy()
        time.sleep(1)
        busy = machine_busy() - busy0
        if busy < 0.1 or time.monotonic() > deadline:
            return busy


def client_command(
    framework: str, n: int, args: argparse.Namespace, url: str, pid: int, audio: Path
) -> list[str]:
    """The command line of one client process."""
    script = {
        "cantata": [str(Path(__file__).resolve()), "_client"],
        "cantata-websockets": [str(Path(__file__).resolve()), "_client", "--framing=websockets"],
        "trio-ws-floor": [str(Path(__file__).resolve()), "_client", "--floor"],
        "agents-sdk": [str(HERE / "_agents_sdk_client.py")],
        "agents-sdk-nodeflate": [str(HERE / "_agents_sdk_client.py"), "--compression=off"],
    }[framework]
    options = [
        f"--url={url}",
        f"--audio={audio}",
        f"--sessions={n}",
        f"--chunk-ms={args.chunk_ms}",
        f"--turn-ms={args.speech_ms + args.silence_ms}",
        f"--lead-ms={args.lead_ms}",
        f"--tail-ms={args.tail_ms}",
        f"--engine-pid={pid}",
    ]
    return [sys.executable, *script, *options]


def client_timeout(n: int, args: argparse.Namespace) -> float:
    return float((args.turns + 2) * (args.speech_ms + args.silence_ms) / 1000 + 60 + n)


def client_result(framework: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    if returncode:
        raise RuntimeError(f"{framework} client failed:\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def run_client(
    framework: str, n: int, args: argparse.Namespace, url: str, pid: int, audio: Path
) -> dict[str, Any]:
    done = subprocess.run(
        client_command(framework, n, args, url, pid, audio),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=client_timeout(n, args),
    )
    return client_result(framework, done.returncode, done.stdout, done.stderr)


def run_together(
    frameworks: Sequence[str], n: int, args: argparse.Namespace, engine: list[str], audio: Path
) -> list[dict[str, Any]]:
    """Every client at once, each against an engine of its own.

    The machine's load drifts over minutes; clients that run side by side see
    the same drift, so their ratio holds steadier than that of runs in turn.
    """
    engines = [start_engine(engine) for _ in frameworks]
    clients: list[subprocess.Popen[str]] = []
    try:
        for framework, (proc, url) in zip(frameworks, engines, strict=True):
            command = client_command(framework, n, args, url, proc.pid, audio)
            clients.append(
                subprocess.Popen(
                    command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        outputs = [client.communicate(timeout=client_timeout(n, args)) for client in clients]
        return [
            client_result(framework, client.returncode, out, err)
            for framework, client, (out, err) in zip(frameworks, clients, outputs, strict=True)
        ]
    finally:
        for client in clients:  # none is left behind when one fails or overruns
            if client.poll() is None:
                client.kill()
                client.wait()
        for proc, _ in engines:
            stop_engine(proc)


def check(result: dict[str, Any], turns: int) -> list[str]:
    """What a run is short of: every session must have finished every turn, without errors."""
    expected = {
        "responses": turns + 1,  # one per turn, plus the tool's follow-up
        "completed": turns + 1,
        "tool_calls": 1,
        "transcripts": turns,
    }
    problems = []
    if len(result["per_session"]) != result["sessions"]:
        problems.append("not every session connected")
    for key, want in expected.items():
        off = [s[key] for s in result["per_session"] if s[key] != want]
        if off:
            problems.append(f"{len(off)} sessions with {key} != {want} (e.g. {off[0]})")
    errors = sum(s["errors"] for s in result["per_session"])
    if errors:
        problems.append(f"{errors} error events, first: {result['errors'][:1]}")
    return problems


def per_minute(result: dict[str, Any]) -> float:
    """Client CPU seconds per session per minute of conversation (audio streamed)."""
    return float(result["cpu"] / result["sessions"] / (result["audio_s"] / 60))


def _others(r: dict[str, Any]) -> float:
    """Other processes' CPU over the window, as a share of one core: the noise floor."""
    return float((r["machine_busy"] - r["cpu"] - r["engine_cpu"]) / r["wall"])


def report(r: dict[str, Any], turns: int) -> None:
    problems = check(r, turns)
    totals = {k: sum(s[k] for s in r["per_session"]) for k in r["per_session"][0]}
    print(
        f"-- {r['framework']} {r['version']}, N={r['sessions']}: "
        f"{'complete' if not problems else 'INCOMPLETE'}; "
        f"client CPU {r['cpu']:.2f} s in {r['wall']:.1f} s = {per_minute(r):.3f} s/session/min; "
        f"engine {r['engine_cpu']:.2f} s; others {100 * _others(r):.0f}% of a core; "
        f"send lag p99 {r['lag_p99_ms']:.1f} ms; setup {1000 * r['setup_cpu'] / r['sessions']:.0f} "
        f"ms CPU/session\n   totals {totals}",
        flush=True,
    )
    for problem in problems:
        print(f"   ! {problem}", flush=True)
    if totals["truncated"]:
        # Not a failure: the client thought a reply was still playing when the next
        # turn began (late replies on a loaded machine), so it truncated it.
        print(f"   note: {totals['truncated']} barge-in truncations", flush=True)


def summary(results: list[dict[str, Any]], turns: int) -> None:
    print(
        f"\n{'client':>14} {'N':>4} {'runs':>5} {'CPU s/session/min':>18} {'(min..max)':>14} "
        f"{'engine s':>9} {'others':>7} {'responses':>10} {'tools':>6} {'truncs':>7} "
        f"{'complete':>9}"
    )
    medians: dict[int, dict[str, float]] = {}
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["sessions"], r["framework"]), []).append(r)
    for (n, framework), runs in groups.items():
        values = [per_minute(r) for r in runs]
        median = float(np.median(values))
        medians.setdefault(n, {})[framework] = median
        completed = [sum(s["completed"] for s in r["per_session"]) for r in runs]
        tools = [sum(s["tool_calls"] for s in r["per_session"]) for r in runs]
        ok = "yes" if not any(check(r, turns) for r in runs) else "NO"
        engine = float(np.median([r["engine_cpu"] for r in runs]))
        others = np.median([_others(r) for r in runs])
        truncs = max(sum(s["truncated"] for s in r["per_session"]) for r in runs)
        print(
            f"{framework:>14} {n:>4} {len(runs):>5} {median:>18.3f} "
            f"{f'({min(values):.3f}..{max(values):.3f})':>14} {engine:>9.2f} "
            f"{100 * others:>6.0f}% {f'{min(completed)}/{(turns + 1) * n}':>10} "
            f"{f'{min(tools)}/{n}':>6} {truncs:>7} {ok:>9}"
        )
    targets = {"agents-sdk": 1.0, "agents-sdk-nodeflate": 1.0, "trio-ws-floor": 1.15}
    for n, row in medians.items():
        for mine in ("cantata", "cantata-websockets"):
            for peer, target in targets.items():
                if mine in row and peer in row:
                    ratio = row[mine] / row[peer]
                    verdict = "meets" if ratio <= target else "misses"
                    print(f"N={n}: {mine} / {peer} = {ratio:.2f} ({verdict} {target:.2f})")


def cpu_main(args: argparse.Namespace) -> None:
    if any(f.startswith("agents-sdk") for f in args.frameworks):
        try:
            print(f"openai-agents {version('openai-agents')}")
        except PackageNotFoundError:
            sys.exit("the Agents SDK is not installed: .venv/bin/pip install openai-agents")
    work = Path(tempfile.mkdtemp(prefix="bench_runtime_"))
    rules, audio = work / "voice.toml", work / "script.pcm"
    rules.write_text(VOICE_RULES)
    script = make_script(
        turns=args.turns,
        tool_turn=args.tool_turn,
        speech_ms=args.speech_ms,
        silence_ms=args.silence_ms,
    )
    audio.write_bytes(script)
    engine = [str(Path(__file__).resolve()), "_engine", f"--rules={rules}"]
    shape = (
        f"per session {args.turns} turns ({len(script) / 48000:.0f} s of audio in "
        f"{args.chunk_ms} ms chunks), the weather on turn {args.tool_turn}"
    )
    results = []
    if args.together:
        print(f"clients side by side, an engine each; {shape}")
        for n in args.sessions:
            for _ in range(args.repeat):
                wait_for_quiet(args.quiet_wait)
                for result in run_together(args.frameworks, n, args, engine, audio):
                    results.append(result)
                    report(result, args.turns)
        summary(results, args.turns)
        return
    proc, url = start_engine(engine)
    print(f"engine pid {proc.pid} on {url}; {shape}")
    try:
        for n in args.sessions:
            for rep in range(args.repeat):
                # Alternate the order so drift in the machine's load hits both sides alike.
                order = args.frameworks if rep % 2 == 0 else args.frameworks[::-1]
                for framework in order:
                    wait_for_quiet(args.quiet_wait)
                    result = run_client(framework, n, args, url, proc.pid, audio)
                    results.append(result)
                    report(result, args.turns)
    finally:
        stop_engine(proc)
    summary(results, args.turns)


# --- argument parsing ------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    lat = commands.add_parser("latency", help="framework-added tool latency")
    lat.add_argument("--turns", type=int, default=2000, help="measured tool calls per variant")
    lat.add_argument("--warmup", type=int, default=100, help="calls left out first")
    lat.add_argument(
        "--variant",
        nargs="+",
        default=["memory", "loopback", "loopback-inproc"],
        choices=["memory", "loopback", "loopback-inproc"],
    )
    lat.add_argument("--quiet-wait", type=float, default=60, help="wait for an idle machine (s)")
    lat.set_defaults(handler=latency_main)

    cpu = commands.add_parser("cpu", help="client CPU per voice session, Cantata vs Agents SDK")
    cpu.add_argument("--sessions", type=int, nargs="+", default=[10, 50], metavar="N")
    cpu.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    cpu.add_argument("--repeat", type=int, default=3, help="runs per client and N, alternated")
    cpu.add_argument("--turns", type=int, default=8, help="user turns per session")
    cpu.add_argument("--tool-turn", type=int, default=2, help="the turn that asks for the weather")
    cpu.add_argument("--speech-ms", type=int, default=1000)
    cpu.add_argument("--silence-ms", type=int, default=3000)
    cpu.add_argument("--chunk-ms", type=int, default=20, help="audio per append")
    cpu.add_argument("--lead-ms", type=int, default=1000, help="from connected to the first chunk")
    cpu.add_argument("--tail-ms", type=int, default=1000, help="window past the last chunk")
    cpu.add_argument("--quiet-wait", type=float, default=60, help="wait for an idle machine (s)")
    cpu.add_argument(
        "--together",
        action="store_true",
        help="run the clients of one repeat at the same time, each with its own engine",
    )
    cpu.set_defaults(handler=cpu_main)

    # Internal: the processes the cpu benchmark starts.
    eng = commands.add_parser("_engine")
    eng.add_argument("--rules", required=True)
    eng.set_defaults(handler=engine_main)
    client = commands.add_parser("_client")
    client.add_argument("--floor", action="store_true", help="bare trio-websocket, no framework")
    client.add_argument("--framing", default="trio-websocket", choices=list(CANTATA_BY_FRAMING))
    for name in ("url", "audio"):
        client.add_argument(f"--{name}", required=True)
    for name in ("sessions", "chunk-ms", "turn-ms", "lead-ms", "tail-ms", "engine-pid"):
        client.add_argument(f"--{name}", type=int, required=True)
    client.set_defaults(handler=client_main)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
