"""Memory benchmarks of one engine session: conversation growth, and a whole hour.

Both run one :class:`EngineSession` in this process over an in-memory
connection (``framework.testing.MemoryWire``, no socket), so that what is
measured is the engine's own cost and memory; the client side keeps nothing
it receives.

``growth``: ``--items`` ``conversation.item.create`` events (30,000 by
default), each parsed, checked, stored and answered with its two events
(``conversation.item.added`` and ``.done``, serialized as for a socket).
Items/s is measured over windows of 1,000 items: the first window, and the
last. Run twice: with the item bound raised to ``--items`` (all items stay: the
conversation's own scaling), and at the default bound (10,000: from then on
each create deletes the oldest item). Flat rates mean linear total time.

``hour``: one session for the hosted API's 60 minutes at 10x speed. The engine
and the client run on trio's ``MockClock(rate=10)``: every engine timer (the
VAD's clockless offsets aside), the session's 60-minute limit and the client's
pacing run ten times faster than the wall clock, so the hour takes six minutes
and the audio arrives ten times faster than real time, exactly as paced. The
client streams 20 ms PCM16 appends under server VAD: a spoken sentence
(espeak-ng, when the speech plugin is installed; else a tone), then 7 s of
silence, again and again; each turn gets a spoken reply. ``max_session_s`` is
left at its default, so the session ends itself at 60 minutes. Every virtual
minute the process's RSS and the session's own accounting are sampled.

Run on demand (not collected by pytest)::

    python tests/benchmarks/bench_engine_memory.py [growth] [hour]
        [--items 30000] [--repeats 3] [--minutes 60]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import math
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import orjson
import trio
import trio.testing

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from framework.engine import Engine, EngineSession  # noqa: E402
from framework.testing import MemoryWire  # noqa: E402
from framework.transport import ConnectionClosed  # noqa: E402

RATE = 24000
CHUNK_MS = 20
WINDOW = 1000


def rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else math.nan


def _options(engine: Engine, **changes: Any) -> Any:
    try:
        return attrs.evolve(engine.options, **changes)
    except TypeError:  # an engine without these options (an older one, for comparison)
        return engine.options


# --- growth ------------------------------------------------------------------------------


async def growth(items: int, max_items: int | None) -> tuple[float, float, float]:
    """Items/s of the first and the last window, and the total seconds."""
    engine = Engine()
    limits: dict[str, Any] = {}
    if max_items is not None:
        try:
            from framework.engine import ConversationLimits
        except ImportError:  # an engine from before the bounds, for comparison
            pass
        else:
            limits["conversation"] = ConversationLimits(max_items=max_items)
    wire = MemoryWire(buffer=64)
    session = EngineSession(_options(engine, **limits), wire)
    frame = orjson.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What is the weather like today?"}],
            },
        }
    ).decode()
    rates: list[float] = []
    done_send, done_receive = trio.open_memory_channel[None](math.inf)

    async def read() -> None:
        # Every event is read (a deletion at the bound is a third one); each
        # item's conversation.item.done tells the sender it was stored.
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await wire.receive_text()
                if text.startswith('{"type":"conversation.item.done"'):
                    done_send.send_nowait(None)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        nursery.start_soon(read)
        start = window = time.perf_counter()
        for n in range(1, items + 1):
            await wire.send_text(frame)
            await done_receive.receive()
            if n % WINDOW == 0:
                now = time.perf_counter()
                rates.append(WINDOW / (now - window))
                window = now
        total = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return rates[0], rates[-1], total


def run_growth(items: int, repeats: int) -> None:
    print(f"\n== growth: {items} conversation.item.create in one session, {repeats} runs")
    for label, bound in (("bound raised to all items", items), ("default bound (10,000)", None)):
        results = [trio.run(growth, items, bound) for _ in range(repeats)]
        first = [r[0] for r in results]
        last = [r[1] for r in results]
        ratios = [r[1] / r[0] for r in results]
        print(
            f"  {label}: first {WINDOW} items {statistics.median(first):,.0f} items/s "
            f"({min(first):,.0f}-{max(first):,.0f}); last {WINDOW} "
            f"{statistics.median(last):,.0f} items/s ({min(last):,.0f}-{max(last):,.0f}); "
            f"last/first {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}); "
            f"total {statistics.median([r[2] for r in results]):.1f} s"
        )


# --- the hour ----------------------------------------------------------------------------


def _utterances() -> tuple[list[np.ndarray], str]:
    sentences = [
        "What is the weather in Paris today?",
        "Tell me a story about a little engine.",
        "Can you book a table for two at eight?",
        "Thanks, that is all for now.",
    ]
    try:
        from plugins.speech import EspeakSynthesizer

        synth = EspeakSynthesizer()

        async def speak() -> list[np.ndarray]:
            return [await synth.synthesize(s, rate=RATE, voice="alloy") for s in sentences]

        return trio.run(speak), "espeak-ng speech"
    except Exception as e:  # the speech plugin is optional: a tone stands in
        print(f"  (no espeak-ng: {type(e).__name__}: {e}; a tone stands in)")
        t = np.arange(int(2.5 * RATE)) / RATE
        return [(np.sin(2 * np.pi * 300 * t) * 0.3 * 32767).astype(np.int16)], "a 2.5 s tone"


def _appends(samples: np.ndarray) -> list[str]:
    step = CHUNK_MS * RATE // 1000
    out = []
    for i in range(0, len(samples), step):
        chunk = samples[i : i + step].astype("<i2").tobytes()
        out.append(
            orjson.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
            ).decode()
        )
    return out


@attrs.define
class Sample:
    minute: int
    rss_mb: float
    items: int
    audio_mib: float
    text_kib: float
    buffered_ms: int


async def hour(minutes: int, turns_audio: list[list[str]], silence: list[str]) -> dict[str, Any]:
    engine = Engine()
    wire = MemoryWire(buffer=64)
    session = EngineSession(engine.options, wire)
    samples: list[Sample] = []
    counts: dict[str, int] = {}
    ended: dict[str, Any] = {}

    def sample(minute: int) -> None:
        stats = getattr(session, "statistics", None)
        if stats is None:  # an engine without its own accounting
            samples.append(Sample(minute, rss_mb(), len(session.items), 0.0, 0.0, 0))  # type: ignore[attr-defined]
            return
        s = stats()
        samples.append(
            Sample(
                minute,
                rss_mb(),
                s.conversation.items,
                s.conversation.audio_bytes / 2**20,
                s.conversation.text_bytes / 1024,
                s.input.buffered_ms,
            )
        )

    closed = trio.Event()

    async def read() -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                event = orjson.loads(await wire.receive_text())
                kind = event["type"]
                counts[kind] = counts.get(kind, 0) + 1
                if kind == "error":
                    error = event["error"]
                    ended["error"] = (error.get("code"), error.get("message"))
                    ended["at_s"] = trio.current_time() - t0
        ended["closed"] = (wire.close_code, wire.close_reason)
        closed.set()

    async def talk() -> None:
        step = CHUNK_MS / 1000
        k = 0
        turn = 0
        try:
            while True:
                for frame in [*turns_audio[turn % len(turns_audio)], *silence]:
                    k += 1
                    await trio.sleep_until(t0 + k * step)
                    await wire.send_text(frame)
                turn += 1
        except ConnectionClosed:
            return

    async def sampler() -> None:
        for minute in range(minutes + 1):
            await trio.sleep_until(t0 + minute * 60)
            sample(minute)

    t0 = trio.current_time()
    wall = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        nursery.start_soon(read)
        nursery.start_soon(sampler)
        nursery.start_soon(talk)
        # A safety net for an engine that never ends the session itself.
        with trio.move_on_after(minutes * 60 + 5):
            await closed.wait()
        nursery.cancel_scope.cancel()
    return {
        "samples": samples,
        "counts": counts,
        "ended": ended,
        "wall_s": time.perf_counter() - wall,
    }


def run_hour(minutes: int) -> None:
    print(f"\n== hour: one session, {minutes} virtual minutes at 10x (MockClock(rate=10))")
    voices, source = _utterances()
    turns = [_appends(v) for v in voices]
    silence = _appends(np.zeros(7 * RATE, dtype=np.int16))
    result = trio.run(hour, minutes, turns, silence, clock=trio.testing.MockClock(rate=10))
    counts = result["counts"]
    print(
        f"  audio: {source}, then 7 s of silence, as 20 ms appends; wall {result['wall_s']:.0f} s"
    )
    print(
        f"  turns: {counts.get('input_audio_buffer.committed', 0)} committed, "
        f"{counts.get('response.done', 0)} answered, "
        f"{counts.get('conversation.item.deleted', 0)} items deleted by the bound"
    )
    print(f"  ended: {result['ended']}")
    print("  minute   RSS MB   items   conv audio MiB   conv text KiB   input buffer ms")
    for s in result["samples"]:
        if s.minute % 5 == 0 or s.minute == 1:
            print(
                f"  {s.minute:>6} {s.rss_mb:>8.1f} {s.items:>7} {s.audio_mib:>16.2f} "
                f"{s.text_kib:>15.1f} {s.buffered_ms:>17}"
            )
    by_minute = {s.minute: s for s in result["samples"]}
    if 30 in by_minute and minutes in by_minute:
        slope = (by_minute[minutes].rss_mb - by_minute[30].rss_mb) / (minutes - 30)
        print(f"  RSS slope over minutes 30-{minutes}: {slope:+.2f} MB/min")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", nargs="*", choices=["growth", "hour"], default=[])
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()
    which = args.which or ["growth", "hour"]
    if "growth" in which:
        run_growth(args.items, args.repeats)
    if "hour" in which:
        run_hour(args.minutes)


if __name__ == "__main__":
    main()
