"""The bot ``bench_fleet.py`` runs in its worker processes: a caller that talks, timed.

Each call, once attached, says so (``bench:up``) and waits for the
benchmark's go (``bench:go``: every call is up), then a random part of one
gap (so that calls do not speak in step), then says ``BENCH_TURNS`` lines one gap apart,
alternating a plain line and one that makes the model call a tool. It times
three events on the worker's own clock: the first reply text after a plain
line, the tool call after a tool line, and the first reply text after the
tool's output. Then it hangs up and leaves its figures on Redis
(``bench:latency``, one JSON list per call) for the benchmark to pool.

Replies are text only: on a SIP call through the Realtime Calls API the
audio goes between the trunk and the server, never over the worker's socket.
"""

from __future__ import annotations

import gc
import os
import random
import time

import coredis
import orjson
import trio

from framework.runtime import AssistantDelta, SessionEvent, ToolCallFinished, ToolCallStarted
from framework.telephony import PhoneAgent, PhoneCall
from framework.tools import tool

TURNS = int(os.environ.get("BENCH_TURNS", "6"))
GAP_S = float(os.environ.get("BENCH_GAP_S", "2.0"))
TURN_LIMIT_S = 10.0
"""A turn not over by then counts as missing."""
LINES = ("Hello there", "What is the weather in Paris")
_GC_PAUSES: list[float] = []
"""This worker process's garbage collections of the oldest generation, in seconds."""


def _time_collections(phase: str, info: dict[str, int]) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _GC_PAUSES.append(-time.perf_counter())
    elif _GC_PAUSES and _GC_PAUSES[-1] < 0:
        _GC_PAUSES[-1] += time.perf_counter()


gc.callbacks.append(_time_collections)


class BenchBot(PhoneAgent):
    instructions = "You answer the phone for the fleet benchmark."
    output_modalities = ("text",)

    @tool
    async def get_weather(self, city: str) -> str:
        """The weather in a city.

        Args:
            city: the city.
        """
        return "sunny"


async def on_call(call: PhoneCall) -> None:
    assert call.session is not None
    session = call.session
    marks: dict[str, float] = {}

    def observe(event: SessionEvent) -> None:
        now = time.perf_counter()
        if isinstance(event, AssistantDelta):
            marks.setdefault("text", now)
        elif isinstance(event, ToolCallStarted):
            marks.setdefault("tool", now)
        elif isinstance(event, ToolCallFinished):
            marks.setdefault("output", now)
            marks.pop("text", None)  # the reply that counts is the one after the output

    session.observe(observe)
    latencies: list[float] = []
    missing = 0
    redis = coredis.Redis.from_url(os.environ["BENCH_REDIS"], decode_responses=True)
    async with redis:
        # Every call is up before any talks: what is timed is calls talking, not
        # calls being attached (which the benchmark times on its own).
        await redis.rpush("bench:up", [call.id])
        await redis.xread({"bench:go": "0-0"}, count=1, block=0)
        await trio.sleep(random.random() * GAP_S)
        for turn in range(TURNS):
            line = LINES[turn % 2]
            marks.clear()
            sent = time.perf_counter()
            await session.send_text(line)
            with trio.move_on_after(TURN_LIMIT_S) as waited:
                await session.wait_quiet()
            if waited.cancelled_caught or "text" not in marks:
                missing += 1
            elif turn % 2:
                if "tool" not in marks or "output" not in marks:
                    missing += 1
                else:
                    latencies += [marks["tool"] - sent, marks["text"] - marks["output"]]
            else:
                latencies.append(marks["text"] - sent)
            await trio.sleep(max(0.0, GAP_S - (time.perf_counter() - sent)))
        figures = {
            "call": call.id,
            "latency_s": latencies,
            "missing": missing,
            "pid": os.getpid(),
            "gc_pauses_s": [p for p in _GC_PAUSES if p > 0],
        }
        await redis.rpush("bench:latency", [orjson.dumps(figures).decode()])
    await call.hang_up(after_playout=False)
