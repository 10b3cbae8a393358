"""A call observed: per-turn metrics and an OpenTelemetry trace, across a dropped line.

What it shows: the weather bot on the local engine (over a real loopback
socket), its line cut by the engine between two turns with no closing
handshake, and the session reconnecting on its own with its conversation
replayed (``Reconnecting`` / ``Reconnected``); ``session.metrics``, each
turn's latencies, tool times, audio heard, tokens and cost; and the
``otel`` plugin's spans and histograms, read back through the OpenTelemetry
SDK's in-memory exporters and printed as a tree. No key, no network, no model.

Run it from the repository root (``pip install -e '.[examples]'`` brings the
OpenTelemetry SDK)::

    .venv/bin/python examples/observed_call.py
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import trio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from framework import ClockSink, open_session
from framework.engine import Engine, Rules, open_engine
from framework.runtime import Reconnected, Reconnecting, Session, TurnMeasured
from plugins.otel import OpenTelemetry

sys.path.insert(0, str(Path(__file__).parent))
from weather_bot import RULES, WeatherBot

TURNS = ("Hello!", "What is the weather in Paris?", "And what is the weather in Oslo?")
SHOWN = {
    "cantata.turn.first_audio_ms": "first audio {:.0f} ms",
    "gen_ai.response.finish_reasons": "{0[0]}",
    "gen_ai.usage.output_tokens": "{} tokens out",
    "cantata.tool.status": "{}",
}
"""The attributes the tree shows, and how."""


async def watch(session: Session, measured: trio.Event) -> None:
    """Prints the reconnect as it happens; sets ``measured`` once every turn is measured."""
    turns = 0
    async for event in session:
        if isinstance(event, Reconnecting):
            print(f"reconnect: attempt {event.attempt} ({event.reason})")
        elif isinstance(event, Reconnected):
            print(
                f"reconnect: back after {event.outage_ms:.0f} ms, {event.replayed} items replayed"
            )
        elif isinstance(event, TurnMeasured):
            turns += 1
            if turns == len(TURNS):
                measured.set()


def tree(spans: Sequence[ReadableSpan]) -> list[str]:
    """The spans as an indented tree: name, duration, a few attributes, events."""
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def show(span: ReadableSpan, prefix: str, last: bool, top: bool) -> None:
        attributes = span.attributes or {}
        took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        facts = [f"{took:.0f} ms"]
        facts += [shape.format(attributes[k]) for k, shape in SHOWN.items() if k in attributes]
        facts += [f"event {e.name}" for e in span.events]
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{span.name}  ({', '.join(facts)})")
        below = sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time or 0)
        inner = prefix if top else prefix + ("   " if last else "│  ")
        for n, child in enumerate(below):
            show(child, inner, n == len(below) - 1, False)

    for root in children.get(None, []):
        show(root, "", True, True)
    return lines


async def main() -> None:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    otel = OpenTelemetry(tracer_provider=tracing, meter_provider=MeterProvider([reader]))
    engine = Engine(rules=Rules.from_file(RULES), latency_ms=20)
    measured = trio.Event()
    async with (
        open_engine(engine) as running,
        open_session(WeatherBot(), url=running.url, audio_out=ClockSink(), plugins=[otel]) as s,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watch, s, measured)
        for n, text in enumerate(TURNS):
            if n == len(TURNS) - 1:
                (line,) = engine.sessions
                print("engine:    the line is cut (no closing handshake)")
                await line.drop()
            print(f"user:      {text}")
            result = await s.run(text)
            print(f"assistant: {result.text}")
        with trio.move_on_after(15):
            await measured.wait()  # the last reply has played out
        nursery.cancel_scope.cancel()
    metrics = s.metrics
    print("\nsession.metrics:")
    for turn in metrics.turns:
        print(f"  {turn.summary()}")
    cost = f"${metrics.cost_usd:.5f}" if metrics.cost_usd is not None else "no price"
    print(f"  {metrics.turn_count} turns, {metrics.reconnects} reconnect, {cost} in all")
    print("\ntrace:")
    for row in tree(spans.get_finished_spans()):
        print(f"  {row}")
    print("\nhistograms:")
    data = reader.get_metrics_data()
    for scope in data.resource_metrics[0].scope_metrics if data is not None else ():
        for metric in scope.metrics:
            for point in metric.data.data_points:
                if isinstance(point, HistogramDataPoint):
                    kind = point.attributes.get("gen_ai.token.type") if point.attributes else None
                    name = f"{metric.name} ({kind})" if kind else metric.name
                    print(f"  {name}: {point.count} measured, sum {point.sum:.3f} {metric.unit}")
    tracing.shutdown()


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
