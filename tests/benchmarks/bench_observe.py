"""What observing a session costs: the metrics alone, then with the OpenTelemetry plugin.

Each run is ``--sessions`` whole sessions of the weather bot against the engine
in memory (``memory_engine``, no socket), each of ``--turns`` text turns that
call a tool, back to back in one thread. The metrics collector is always on
(it is part of every session); the ``otel`` variant adds the OpenTelemetry
plugin with the SDK's in-memory span exporter and metric reader, so each turn
also makes its spans and histogram points. The figure is CPU time
(``time.process_time``) per turn. The variants alternate, ``--repeat`` times;
the summary gives each variant's median and spread (min to max) and the ratio
of the medians::

    python tests/benchmarks/bench_observe.py [--sessions 50] [--turns 10] [--repeat 5]

A shared machine is noisy: compare the ratio, and read the spread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import trio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from framework import open_session
from framework.runtime import Endpoint, SessionPlugin
from framework.testing import memory_engine
from plugins.otel import OpenTelemetry
from tests.runtime.bots import RULES, WeatherBot


def _plugins(variant: str) -> list[SessionPlugin]:
    if variant == "metrics":
        return []
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return [OpenTelemetry(tracer_provider=tracing, meter_provider=meters)]


async def _run(variant: str, sessions: int, turns: int) -> float:
    """CPU seconds per turn over ``sessions`` sessions."""
    plugins = _plugins(variant)
    started = time.process_time()
    for _ in range(sessions):
        async with (
            memory_engine(rules=RULES) as served,
            open_session(
                WeatherBot(), endpoints=[Endpoint(dial=served.dial)], plugins=plugins
            ) as session,
        ):
            for _ in range(turns):
                await session.run("What is the weather in Paris?")
        assert session.metrics.turn_count == turns
    return (time.process_time() - started) / (sessions * turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"metrics": [], "otel": []}
    trio.run(_run, "otel", 2, 2)  # warm up: imports, caches
    for n in range(args.repeat):
        for variant in ("metrics", "otel") if n % 2 == 0 else ("otel", "metrics"):
            per_turn = trio.run(_run, variant, args.sessions, args.turns)
            results[variant].append(per_turn)
            print(f"run {n + 1} {variant:<8} {per_turn * 1e3:.3f} ms CPU per turn", flush=True)
    medians = {k: statistics.median(v) for k, v in results.items()}
    for variant, values in results.items():
        print(
            f"{variant:<8} median {medians[variant] * 1e3:.3f} ms CPU per turn "
            f"(min {min(values) * 1e3:.3f}, max {max(values) * 1e3:.3f})"
        )
    print(f"otel / metrics: {medians['otel'] / medians['metrics']:.2f}x")


if __name__ == "__main__":
    main()
