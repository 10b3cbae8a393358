"""The Agents SDK side of ``bench_runtime.py cpu``: N realtime sessions in one asyncio process.

Run by ``bench_runtime.py``, never by hand; it needs ``pip install openai-agents``.
Each session is a ``RealtimeAgent`` with one function tool, run by
``RealtimeRunner`` with its websocket model pointed at the local engine
(``model_config["url"]``; empty ``headers`` so that no API key is needed). It
streams the script with ``session.send_audio`` on the same schedule as the
Cantata client and reads every session event. Prints one JSON line: the same
fields as the Cantata client's (see ``bench_runtime.client_report``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import resource
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from agents import function_tool, set_tracing_disabled
from agents.realtime import RealtimeAgent, RealtimeRunner

MODEL = "gpt-realtime"  # the engine's; the SDK's own default would be refused as a model change

# The same session settings as the Cantata client's agent.
SETTINGS: dict[str, Any] = {
    "model_name": MODEL,
    "voice": "ash",
    "modalities": ["audio"],
    "input_audio_format": "pcm16",
    "output_audio_format": "pcm16",
    "input_audio_transcription": {"model": "gpt-4o-mini-transcribe"},
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    },
}


@function_tool
async def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: the city name.
    """
    return "sunny"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib() -> int:
    """This process's resident memory in KiB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def machine_busy() -> float:
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class Counts:
    """What one session got, up to the end of the window."""

    def __init__(self) -> None:
        self.responses = self.completed = self.tool_calls = self.transcripts = 0
        self.audio_bytes = self.errors = self.barge_ins = self.truncated = 0
        self.error_text: list[str] = []
        self.lag: list[float] = []

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("error_text", "lag")}


async def consume(session: Any, counts: Counts) -> None:
    async for event in session:
        kind = event.type
        if kind == "audio":
            counts.audio_bytes += len(event.audio.data)
        elif kind == "raw_model_event":
            data = event.data
            if data.type == "raw_server_event":
                server_type = data.data.get("type")
                if server_type == "response.done":
                    counts.responses += 1
                    counts.completed += data.data["response"]["status"] == "completed"
                elif server_type == "conversation.item.input_audio_transcription.completed":
                    counts.transcripts += 1
                elif server_type == "conversation.item.truncated":
                    counts.truncated += 1
        elif kind == "tool_end":
            counts.tool_calls += 1
        elif kind == "audio_interrupted":
            # Sent on every speech start after a reply (stop playback); it truncates
            # only audio it thinks is still playing, counted above.
            counts.barge_ins += 1
        elif kind == "error":
            counts.errors += 1
            counts.error_text.append(str(event.error)[:200])


async def pace(due: list[tuple[float, int, Any]]) -> None:
    """One task and one timer that send every session's chunks (as the trio clients do)."""
    loop = asyncio.get_running_loop()
    while due:
        await asyncio.sleep(max(0.0, due[0][0] - loop.time()))
        now = loop.time()
        while due and due[0][0] <= now:
            _, order, step = heapq.heappop(due)
            later = await step(now)
            if later is not None:
                heapq.heappush(due, (later, order, step))


def stream(session: Any, chunks: list[bytes], start: float, chunk_s: float, counts: Counts) -> Any:
    """The pacer's step for one session: sends its next chunk, says when the one after is due."""
    sent = 0

    async def step(now: float) -> float | None:
        nonlocal sent
        counts.lag.append(now - (start + sent * chunk_s))
        await session.send_audio(chunks[sent])
        sent += 1
        return start + sent * chunk_s if sent < len(chunks) else None

    return step


def compression_off() -> None:
    """Has the SDK's websocket offer no permessage-deflate (as shipped it offers it)."""
    import websockets
    from agents.realtime.openai_realtime import _USER_AGENT, OpenAIRealtimeWebSocketModel

    async def connect(self: Any, url: str, headers: dict[str, str], **_: Any) -> Any:
        return await websockets.connect(
            url,
            user_agent_header=_USER_AGENT,
            additional_headers=headers,
            max_size=8 * 1024 * 1024,
            compression=None,
        )

    OpenAIRealtimeWebSocketModel._create_websocket_connection = connect  # type: ignore[method-assign]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.compression == "off":
        compression_off()
    set_tracing_disabled(True)  # tracing exports to the hosted platform: not runtime work
    audio = Path(args.audio).read_bytes()  # noqa: ASYNC240 (before anything runs)
    step = args.chunk_ms * 48
    chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
    chunk_s = args.chunk_ms / 1000
    turn_s = args.turn_ms / 1000
    loop = asyncio.get_running_loop()
    agent = RealtimeAgent(name="Bot", instructions="Weather bot.", tools=[get_weather])
    config: Any = {"model_settings": SETTINGS, "tracing_disabled": True}
    model_config: Any = {"url": f"{args.url}?model={MODEL}", "headers": {}}

    rss1 = 0
    cpu0 = cpu()
    began = loop.time()
    sessions, counts = [], []
    for i in range(args.sessions):
        # A runner holds one websocket model, so one runner per session.
        runner = RealtimeRunner(agent, config=config)
        session = await runner.run(model_config=model_config)
        await asyncio.wait_for(session.enter(), 20)
        sessions.append(session)
        counts.append(Counts())
        if i == 0:
            await asyncio.sleep(0.2)
            rss1 = rss_kib()  # one session up: what it imported is not per session
    consumers = [asyncio.create_task(consume(s, c)) for s, c in zip(sessions, counts, strict=True)]
    await asyncio.sleep(0.5)  # the sessions settle: their configuration is confirmed
    rss_idle = rss_kib()
    t0 = loop.time() + args.lead_ms / 1000
    connect_s = loop.time() - began
    due = [
        (start, i, stream(s, chunks, start, chunk_s, c))
        for i, (s, c) in enumerate(zip(sessions, counts, strict=True))
        for start in [t0 + i * turn_s / len(sessions)]
    ]
    streams = [asyncio.create_task(pace(due))]
    await asyncio.sleep(max(0.0, t0 - loop.time()))
    cpu1, engine1, busy1 = cpu(), process_cpu(args.engine_pid), machine_busy()
    wall1 = time.monotonic()
    end = t0 + turn_s + len(chunks) * chunk_s + args.tail_ms / 1000
    await asyncio.sleep(max(0.0, end - loop.time()))
    cpu2, engine2, busy2 = cpu(), process_cpu(args.engine_pid), machine_busy()
    wall2 = time.monotonic()
    rss_active = rss_kib()
    snapshot = [c.as_dict() for c in counts]
    lags = sorted(x for c in counts for x in c.lag)
    errors = [e for c in counts for e in c.error_text][:5]
    for task in [*streams, *consumers]:
        task.cancel()
    for session in sessions:
        # Closing is not measured; a slow close must not hide the result.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.close(), 5)
    return {
        "framework": "agents-sdk" if args.compression == "shipped" else "agents-sdk-nodeflate",
        "version": version("openai-agents"),
        "sessions": args.sessions,
        "connect_s": connect_s,
        "setup_cpu": cpu1 - cpu0,
        "cpu": cpu2 - cpu1,
        "engine_cpu": engine2 - engine1,
        "machine_busy": busy2 - busy1,
        "wall": wall2 - wall1,
        "audio_s": len(audio) / 48000,
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else float("nan"),
        "per_session": snapshot,
        "errors": errors,
        "rss_kib": [rss1, rss_idle, rss_active],
    }


class _TimedSocket:
    """The SDK's websocket, stamping tool-call frames in and their outputs out.

    The same stamps as ``bench_runtime.TimedWire``: a substring test on the way
    in, the frame parsed only after the outgoing stamp is taken.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.spans_ns: list[tuple[int, int]] = []
        self.arrived: dict[str, int] = {}
        self.pending: list[tuple[int, str]] = []
        self.done = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __aiter__(self) -> Any:
        return self._frames()

    async def _frames(self) -> Any:
        async for message in self.inner:
            now = time.perf_counter_ns()
            if '"response.function_call_arguments.done"' in message:
                self.pending.append((now, message))
            elif '"response.done"' in message:
                self.done += 1
            yield message

    async def send(self, payload: str) -> None:
        now = time.perf_counter_ns()
        if '"function_call_output"' in payload:
            for stamp, raw in self.pending:
                self.arrived[json.loads(raw)["call_id"]] = stamp
            self.pending.clear()
            event = json.loads(payload)
            if event["type"] == "conversation.item.create":
                self.spans_ns.append((self.arrived.pop(event["item"]["call_id"]), now))
        await self.inner.send(payload)


@function_tool
async def ping() -> str:
    """Answers at once."""
    return "pong"


async def latency(args: argparse.Namespace) -> dict[str, Any]:
    """Tool round trips through the SDK: ``ping`` turns, as ``bench_runtime latency`` runs."""
    from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel

    set_tracing_disabled(True)
    created: list[_TimedSocket] = []
    connect = OpenAIRealtimeWebSocketModel._create_websocket_connection

    async def timed(self: Any, *a: Any, **k: Any) -> Any:
        created.append(_TimedSocket(await connect(self, *a, **k)))
        return created[-1]

    OpenAIRealtimeWebSocketModel._create_websocket_connection = timed  # type: ignore[method-assign]
    agent = RealtimeAgent(name="Bot", instructions="Call ping when asked.", tools=[ping])
    settings = {"model_name": MODEL, "modalities": ["text"]}
    config: Any = {"model_settings": settings, "tracing_disabled": True}
    runner = RealtimeRunner(agent, config=config)
    session = await runner.run(model_config={"url": f"{args.url}?model={MODEL}", "headers": {}})
    async with session:
        wire = created[-1]
        events = session.__aiter__()
        for _ in range(args.warmup + args.turns):
            want = wire.done + 2  # the call's response, then the answer's
            await session.send_message("ping")
            while wire.done < want:
                await asyncio.wait_for(events.__anext__(), 20)
    spans = wire.spans_ns[args.warmup :]
    return {"framework": "agents-sdk", "us": [(b - a) / 1000 for a, b in spans]}


def cli() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--latency", action="store_true", help="tool round trips, not CPU")
    parser.add_argument("--turns", type=int, default=500, help="with --latency: measured calls")
    parser.add_argument("--warmup", type=int, default=20, help="with --latency: calls left out")
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--audio", help="raw PCM16 24 kHz mono: one session's script")
    parser.add_argument("--chunk-ms", type=int)
    parser.add_argument("--turn-ms", type=int)
    parser.add_argument("--lead-ms", type=int)
    parser.add_argument("--tail-ms", type=int)
    parser.add_argument("--engine-pid", type=int)
    parser.add_argument(
        "--compression",
        choices=["shipped", "off"],
        default="shipped",
        help="shipped: the SDK offers permessage-deflate; off: it offers none",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(latency(args) if args.latency else main(args))), flush=True)


if __name__ == "__main__":
    cli()
