"""The OpenTelemetry plugin, read back through the OTel SDK's in-memory exporters.

Whole sessions run against the engine in memory on MockClock: a greeting, then
a turn that calls a tool. The spans must form the tree session > turn >
response > tool call, with the GenAI semantic conventions' attributes and the
metrics' times; the histograms must hold one measurement per response and call.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import trio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from trio.testing import MockClock

from framework import ClockSink, open_session
from framework.errors import PluginError
from framework.protocol import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ResponseCreateEvent,
    TranscriptionDurationUsage,
)
from framework.runtime import Continuity, Endpoint, TurnMeasured
from framework.testing import ScriptedServer, memory_engine
from plugins.otel import OpenTelemetry

from ..runtime.bots import RULES, BankBot, WeatherBot, approve_after, weather_turns
from ..runtime.test_timing import Talker


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def plugin(self, **options: bool) -> OpenTelemetry:
        return OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def histograms(self) -> dict[str, list[HistogramDataPoint]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found: dict[str, list[HistogramDataPoint]] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = list(metric.data.data_points)  # type: ignore[arg-type]
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    made = Telemetry()
    yield made
    made.tracer_provider.shutdown()


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def _parent(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    assert span.parent is not None
    return next(
        s for s in spans if s.context is not None and s.context.span_id == span.parent.span_id
    )


async def test_spans_form_the_session_tree_with_genai_attributes(
    autojump_clock: MockClock, telemetry: Telemetry
) -> None:
    session_id = (await weather_turns([telemetry.plugin()])).id
    spans = telemetry.spans.get_finished_spans()
    named = _by_name(spans)
    (session,) = named["session WeatherBot"]
    assert session.attributes is not None
    assert session.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert session.attributes["gen_ai.conversation.id"] == session_id
    assert session.attributes["gen_ai.provider.name"] == "openai"
    turns = named["turn 1"] + named["turn 2"]
    assert all(_parent(t, spans) is session for t in turns)
    # One clock for all: the session's span holds its turns (on MockClock too).
    assert session.start_time is not None and session.end_time is not None
    assert all(session.start_time <= t.start_time <= t.end_time <= session.end_time for t in turns)  # type: ignore[operator]
    chats = named["chat gpt-realtime"]
    assert len(chats) == 3  # the greeting; the call; the answer after it
    assert [_parent(c, spans).name for c in chats] == ["turn 1", "turn 2", "turn 2"]
    (tool,) = named["execute_tool get_weather"]
    caller = _parent(tool, spans)
    assert caller in chats and caller.attributes is not None
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool.attributes["gen_ai.tool.call.id"].startswith("call_")  # type: ignore[union-attr]
    assert tool.attributes["cantata.tool.status"] == "ok"
    # What was said and the call's arguments stay out unless asked for.
    assert "gen_ai.tool.call.arguments" not in tool.attributes
    assert all("gen_ai.output.messages" not in (t.attributes or {}) for t in turns)
    # Usage on each response; times from the metrics, children inside parents.
    for chat in chats:
        assert chat.attributes is not None and chat.attributes["gen_ai.usage.input_tokens"] > 0  # type: ignore[operator]
        parent = _parent(chat, spans)
        assert parent.start_time is not None and chat.start_time is not None
        assert parent.start_time <= chat.start_time
        assert chat.end_time is not None and parent.end_time is not None
        assert chat.end_time <= parent.end_time
    assert caller.attributes["gen_ai.response.finish_reasons"] == ("completed",)


async def test_content_is_recorded_only_when_turned_on(
    autojump_clock: MockClock, telemetry: Telemetry
) -> None:
    await weather_turns([telemetry.plugin(capture_content=True)])
    named = _by_name(telemetry.spans.get_finished_spans())
    (tool,) = named["execute_tool get_weather"]
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'
    assert tool.attributes["gen_ai.tool.call.result"] == "sunny"
    (second,) = named["turn 2"]
    assert second.attributes is not None
    assert "In Paris it is sunny." in str(second.attributes["gen_ai.output.messages"])


async def test_latencies_and_tokens_are_histograms(
    autojump_clock: MockClock, telemetry: Telemetry
) -> None:
    await weather_turns([telemetry.plugin()])
    histograms = telemetry.histograms()
    (durations,) = histograms["gen_ai.client.operation.duration"]
    assert durations.count == 3
    tokens = histograms["gen_ai.client.token.usage"]
    assert sorted(p.attributes["gen_ai.token.type"] for p in tokens) == ["input", "output"]  # type: ignore[index]
    assert all(p.count == 3 and p.sum > 0 for p in tokens)
    (tool,) = histograms["cantata.tool.duration"]
    assert tool.count == 1 and tool.attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
    }
    (first,) = histograms["gen_ai.client.operation.time_to_first_chunk"]
    assert first.count == 2  # the response that only called the tool had no chunk of output
    (text,) = histograms["cantata.turn.time_to_first_text"]
    assert text.count == 2  # each turn's reply was written (at once, in memory)
    assert durations.explicit_bounds[:3] == (0.01, 0.02, 0.04)  # seconds, as the conventions say


async def test_one_plugin_measures_many_sessions_into_the_same_histograms(
    autojump_clock: MockClock, telemetry: Telemetry
) -> None:
    plugin = telemetry.plugin()
    await weather_turns([plugin])
    await weather_turns([plugin])
    (durations,) = telemetry.histograms()["gen_ai.client.operation.duration"]
    assert durations.count == 6
    assert len(_by_name(telemetry.spans.get_finished_spans())["session WeatherBot"]) == 2


async def test_a_spoken_turn_carries_its_words_and_latency(
    autojump_clock: MockClock, telemetry: Telemetry
) -> None:
    server = ScriptedServer()
    plugin = telemetry.plugin(capture_content=True)
    async with open_session(
        Talker(), connection=server, audio_out=ClockSink(), plugins=[plugin]
    ) as session:
        await server.send(server.speech_started(0))
        await trio.sleep(1.0)
        stopped = server.speech_stopped(1000)
        await server.send(stopped)
        await server.send(
            ConversationItemInputAudioTranscriptionCompletedEvent(
                event_id="event_t",
                item_id=stopped.item_id,
                content_index=0,
                transcript="is it raining",
                usage=TranscriptionDurationUsage(type="duration", seconds=1.0),
            )
        )
        await trio.sleep(0.25)
        await server.send(*server.audio_response(bytes(48 * 500)))
        async for event in session:
            if isinstance(event, TurnMeasured):
                break
    named = _by_name(telemetry.spans.get_finished_spans())
    (turn,) = named["turn 1"]
    assert turn.attributes is not None
    assert turn.attributes["cantata.turn.first_audio_ms"] == 250.0
    assert turn.attributes["gen_ai.input.messages"] == '[{"role":"user","content":"is it raining"}]'
    (chat,) = named["chat"]  # the scripted server names no model
    assert chat.attributes is not None and chat.attributes["gen_ai.output.type"] == "speech"
    histograms = telemetry.histograms()
    (first,) = histograms["cantata.turn.time_to_first_audio"]
    assert (first.count, first.sum) == (1, 0.25)
    assert "cantata.turn.time_to_first_text" not in histograms  # no transcript came


async def test_an_approval_is_a_span_under_its_call(
    autojump_clock: MockClock, telemetry: Telemetry
) -> None:
    server = ScriptedServer()
    async with open_session(BankBot(), connection=server, plugins=[telemetry.plugin()]) as session:
        await session.send_text("send 100 to Bob")
        await server.expect(ResponseCreateEvent)
        await server.send(*server.function_call("transfer_money", {"amount": "100"}))
        await approve_after(session, 2.0)  # the application takes two seconds to say yes
        await server.expect(ResponseCreateEvent)  # the follow-up, after the output
        await server.send(*server.text_response("Done."))
        async for event in session:
            if isinstance(event, TurnMeasured):
                break
    spans = telemetry.spans.get_finished_spans()
    (approval,) = _by_name(spans)["approval transfer_money"]
    assert _parent(approval, spans).name == "execute_tool transfer_money"
    assert approval.start_time is not None and approval.end_time is not None
    assert approval.end_time - approval.start_time == 2_000_000_000  # ns, on MockClock
    (waited,) = telemetry.histograms()["cantata.tool.approval_wait"]
    assert (waited.count, waited.sum) == (1, 2.0)


async def test_a_reconnect_is_an_event_on_the_session_span(
    autojump_clock: MockClock, telemetry: Telemetry
) -> None:
    policy = Continuity(backoff_s=0.1, jitter=0.0)
    async with (
        memory_engine(rules=RULES) as served,
        open_session(
            WeatherBot(),
            endpoints=[Endpoint(dial=served.dial, name="memory")],
            continuity=policy,
            plugins=[telemetry.plugin()],
        ) as session,
    ):
        await session.run("hello")
        await served.latest.drop()
        await session.run("What is the weather in Paris?")
    (session_span,) = _by_name(telemetry.spans.get_finished_spans())["session WeatherBot"]
    marks = [(e.name, dict(e.attributes or {})) for e in session_span.events]
    assert [name for name, _ in marks] == ["reconnecting", "reconnected"]
    assert marks[1][1]["cantata.endpoint"] == "memory"
    assert marks[1][1]["cantata.failed_over"] is False


def test_the_core_never_imports_opentelemetry() -> None:
    code = (
        "import sys, framework, framework.runtime, framework.agent, framework.apps.cli, "
        "framework.testing, plugins.recorder; "
        "from framework import open_session; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


async def test_without_opentelemetry_the_plugin_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(PluginError, match=r"pip install 'cantata\[otel\]'"):
        async with OpenTelemetry().open(lambda: None):
            pass
