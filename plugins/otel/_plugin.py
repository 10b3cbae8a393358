"""OpenTelemetry for sessions: spans for the session, its turns, responses and tool calls.

The plugin observes a session's application events (the runtime's observer
seam); nothing in the core imports OpenTelemetry. Spans are made when a
:class:`~framework.runtime.TurnMeasured` reports a turn, with the times the
metrics measured (trio's clock, placed on the wall clock when the plugin
opened), so a turn's span tree is complete and its times are the metrics'
own:

* ``session {agent}`` (``gen_ai.operation.name`` ``invoke_agent``), the session's
  lifetime, with ``gen_ai.conversation.id``; reconnects, rollovers, handoffs
  and interruptions are events on it;
* ``turn {index}`` under it, from the user's input to the end of the turn;
* ``chat {model}`` per response, with its id, status and usage;
* ``execute_tool {name}`` per function call, under the response that asked for
  it, and ``approval {name}`` under it while the application decided.

Metrics, as histograms in seconds or tokens: ``gen_ai.client.operation.duration``
(responses), ``gen_ai.client.operation.time_to_first_chunk`` (a response's
start to its first audio or text), ``gen_ai.client.token.usage`` (input and
output tokens), and, where the conventions have no name,
``cantata.turn.time_to_first_audio`` and ``cantata.turn.time_to_first_text``
(from the end of the user's input), ``cantata.tool.duration`` and
``cantata.tool.approval_wait``.

What was said (``gen_ai.input.messages``, ``gen_ai.output.messages``) and tool
arguments and results (``gen_ai.tool.call.arguments``,
``gen_ai.tool.call.result``) are left out unless ``capture_content=True``:
they may hold personal data.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import orjson
import trio

from framework.errors import PluginError
from framework.plugin import Contribution, Plugin
from framework.runtime import (
    AssistantMessage,
    HandedOff,
    Interrupted,
    Reconnected,
    Reconnecting,
    ResponseMetrics,
    RolledOver,
    SessionEvent,
    SessionStarted,
    ToolCallFinished,
    ToolMetrics,
    TurnMeasured,
    TurnMetrics,
    UserTranscript,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram, Meter, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

PROVIDER = "openai"
"""``gen_ai.provider.name``: the protocol is OpenAI's, whichever server speaks it."""
KEPT_CALLS = 256
"""Finished calls whose arguments and results wait for their turn's spans (content on)."""
KEPT_MESSAGES = 256
"""Transcripts and replies kept for their turns' spans (content on); past it the oldest go."""
INSTALL = "pip install 'cantata[otel]'"
SECONDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
"""Bucket bounds of the duration histograms, as the GenAI semantic conventions advise."""
TOKENS = [4**n for n in range(14)]
"""Bucket bounds of the token histogram, as the conventions advise (1, 4, ..., 67108864)."""
FINE = frozenset({"ok", "approved"})
"""Call statuses that are not errors (any other is the span's ``error.type``)."""

Attributes: TypeAlias = "dict[str, AttributeValue]"


def _opentelemetry() -> tuple[Any, Any]:
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        raise PluginError(
            f"the otel plugin needs OpenTelemetry, which is not installed: {INSTALL}"
        ) from None
    return trace, metrics


class Instruments:
    """The histograms, made once per plugin and shared by its sessions."""

    def __init__(self, meter: Meter) -> None:
        def seconds(name: str, description: str) -> Histogram:
            return meter.create_histogram(
                name, unit="s", description=description, explicit_bucket_boundaries_advisory=SECONDS
            )

        self.durations = seconds("gen_ai.client.operation.duration", "GenAI operation duration.")
        self.first_chunk = seconds(
            "gen_ai.client.operation.time_to_first_chunk",
            "From a response's start to its first audio or text.",
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used, per response.",
            explicit_bucket_boundaries_advisory=TOKENS,
        )
        self.first_audio = seconds(
            "cantata.turn.time_to_first_audio",
            "From the end of the user's input to the assistant's first audio.",
        )
        self.first_text = seconds(
            "cantata.turn.time_to_first_text",
            "From the end of the user's input to the assistant's first text or transcript.",
        )
        self.tools = seconds("cantata.tool.duration", "A tool call's own run.")
        self.approvals = seconds("cantata.tool.approval_wait", "A call's wait for approval.")


class SessionTelemetry:
    """One session's spans and measurements (the plugin's observer).

    Args:
        tracer: where spans go.
        instruments: the histograms measurements go to.
        capture_content: also record what was said and tools' arguments and results.
    """

    def __init__(self, tracer: Tracer, instruments: Instruments, *, capture_content: bool) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._content = capture_content
        # trio's clock (MockClock in tests) on the wall clock: spans take epoch nanoseconds.
        now = trio.current_time()
        self._offset_ns = time.time_ns() - int(now * 1e9)
        self._model = ""
        self._session: Span = tracer.start_span(
            "session",
            start_time=self._ns(now),
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": PROVIDER},
        )
        # With content on: the user's final transcripts by item, the assistant's
        # messages by response, finished calls by id.
        self._heard: dict[str, str] = {}
        self._answers: dict[str, list[str]] = {}
        self._calls: dict[str, ToolCallFinished] = {}

        self._measure = instruments

    def _ns(self, clock: float) -> int:
        return self._offset_ns + int(clock * 1e9)

    @property
    def _common(self) -> Attributes:
        """What every chat span and measurement carries."""
        return {"gen_ai.provider.name": PROVIDER, "gen_ai.request.model": self._model}

    def observe(self, event: SessionEvent) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def end(self) -> None:
        """The session is over: its span ends (at trio's clock, like its turns)."""
        self._session.end(end_time=self._ns(trio.current_time()))

    # --- the session span and its events -------------------------------------------

    def _started(self, event: SessionStarted) -> None:
        self._model = event.model
        self._session.update_name(f"session {event.agent}".strip())
        self._session.set_attributes(
            {
                "gen_ai.agent.name": event.agent,
                "gen_ai.conversation.id": event.session_id,
                **self._common,
            }
        )

    def _mark(self, name: str, attributes: Attributes) -> None:
        self._session.add_event(name, attributes, timestamp=self._ns(trio.current_time()))

    def _reconnecting(self, event: Reconnecting) -> None:
        self._mark(
            "reconnecting",
            {
                "cantata.attempt": event.attempt,
                "cantata.endpoint": event.endpoint,
                "cantata.delay_s": event.delay_s,
                "cantata.reason": event.reason,
            },
        )

    def _reconnected(self, event: Reconnected) -> None:
        self._mark(
            "reconnected",
            {
                "cantata.endpoint": event.endpoint,
                "cantata.attempts": event.attempts,
                "cantata.outage_ms": event.outage_ms,
                "cantata.replayed": event.replayed,
                "cantata.failed_over": event.failed_over,
            },
        )

    def _rolled_over(self, event: RolledOver) -> None:
        self._mark(
            "rolled_over",
            {
                "cantata.endpoint": event.endpoint,
                "cantata.replayed": event.replayed,
                "cantata.quiet": event.quiet,
            },
        )

    def _handed_off(self, event: HandedOff) -> None:
        self._mark(
            "handed_off",
            {"cantata.from_agent": event.from_agent, "gen_ai.agent.name": event.to_agent},
        )

    def _interrupted(self, event: Interrupted) -> None:
        self._mark("interrupted", {"cantata.played_ms": event.played_ms})

    # --- content, when asked for ---------------------------------------------------------

    def _transcribed(self, event: UserTranscript) -> None:
        if self._content and event.final:
            self._heard[event.item_id] = event.text
            if len(self._heard) > KEPT_MESSAGES:
                del self._heard[next(iter(self._heard))]

    def _answered(self, event: AssistantMessage) -> None:
        if self._content:
            self._answers.setdefault(event.response_id, []).append(event.text)
            if len(self._answers) > KEPT_MESSAGES:
                del self._answers[next(iter(self._answers))]

    def _finished(self, event: ToolCallFinished) -> None:
        if self._content:
            self._calls[event.call_id] = event
            if len(self._calls) > KEPT_CALLS:
                del self._calls[next(iter(self._calls))]

    # --- a turn's spans and measurements -------------------------------------------------

    def _turn(self, event: TurnMeasured) -> None:
        turn: TurnMetrics = event.metrics
        attributes: Attributes = {
            "cantata.turn.index": turn.index,
            "cantata.turn.trigger": turn.trigger,
            "cantata.turn.interruptions": turn.interruptions,
            "cantata.turn.audio_generated_ms": turn.audio_generated_ms,
            "cantata.turn.audio_played_ms": turn.audio_played_ms,
            "gen_ai.usage.input_tokens": turn.usage.input_tokens,
            "gen_ai.usage.output_tokens": turn.usage.output_tokens,
            **_optional("cantata.turn.first_audio_ms", turn.first_audio_ms),
            **_optional("cantata.turn.first_text_ms", turn.first_text_ms),
            **_optional("cantata.turn.cost_usd", turn.cost_usd),
        }
        if self._content:
            attributes.update(self._messages(turn))
        span = self._tracer.start_span(
            f"turn {turn.index}",
            context=self._trace.set_span_in_context(self._session),
            start_time=self._ns(turn.started_at),
            attributes=attributes,
        )
        for histogram, ms in (
            (self._measure.first_audio, turn.first_audio_ms),
            (self._measure.first_text, turn.first_text_ms),
        ):
            if ms is not None:
                histogram.record(ms / 1000, self._common)
        parents = {r.response_id: self._response(span, r) for r in turn.responses}
        for tool in turn.tools:
            self._tool(parents.get(tool.response_id, span), tool)
        span.end(end_time=self._ns(turn.ended_at))

    def _messages(self, turn: TurnMetrics) -> Attributes:
        """What the user said in the turn (its input's transcript), and the replies."""
        words = self._heard.pop(turn.input_item_id or "", None)
        heard = [{"role": "user", "content": words}] if words is not None else []
        answers = [
            {"role": "assistant", "content": text}
            for r in turn.responses
            for text in self._answers.pop(r.response_id, ())
        ]
        said: Attributes = {}
        if heard:
            said["gen_ai.input.messages"] = _json(heard)
        if answers:
            said["gen_ai.output.messages"] = _json(answers)
        return said

    def _response(self, turn: Span, response: ResponseMetrics) -> Span:
        usage = response.usage
        first = min(
            (m for m in (response.first_audio_ms, response.first_text_ms) if m is not None),
            default=None,
        )
        attributes: Attributes = {
            "gen_ai.operation.name": "chat",
            **self._common,
            "gen_ai.response.id": response.response_id,
            "gen_ai.response.finish_reasons": [response.status],
            "gen_ai.output.type": "speech" if response.audio_ms else "text",
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
            "cantata.usage.audio.input_tokens": usage.input_audio_tokens,
            "cantata.usage.audio.output_tokens": usage.output_audio_tokens,
            "cantata.response.audio_ms": response.audio_ms,
            **_optional("gen_ai.response.time_to_first_chunk", _s(first)),
            **_optional("cantata.response.cost_usd", response.cost_usd),
        }
        if response.status == "failed":
            attributes["error.type"] = "failed"
        span = self._tracer.start_span(
            f"chat {self._model}".strip(),
            context=self._trace.set_span_in_context(turn),
            start_time=self._ns(response.started_at),
            attributes=attributes,
        )
        ended = response.ended_at if response.ended_at is not None else response.started_at
        span.end(end_time=self._ns(ended))
        measured: Attributes = {"gen_ai.operation.name": "chat", **self._common}
        if response.duration_ms is not None:
            self._measure.durations.record(response.duration_ms / 1000, measured)
        if first is not None:
            self._measure.first_chunk.record(first / 1000, measured)
        for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            self._measure.tokens.record(count, {**measured, "gen_ai.token.type": kind})
        return span

    def _tool(self, parent: Span, tool: ToolMetrics) -> None:
        attributes: Attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool.name,
            "gen_ai.tool.call.id": tool.call_id,
            "gen_ai.tool.type": "function",
            "cantata.tool.status": tool.status,
            **_optional("cantata.tool.approval_wait_ms", tool.approval_wait_ms),
        }
        if tool.status not in FINE:
            attributes["error.type"] = tool.status
        finished = self._calls.pop(tool.call_id, None)
        if finished is not None:
            attributes["gen_ai.tool.call.arguments"] = finished.arguments
            attributes["gen_ai.tool.call.result"] = finished.output
        span = self._tracer.start_span(
            f"execute_tool {tool.name}",
            context=self._trace.set_span_in_context(parent),
            start_time=self._ns(tool.requested_at),
            attributes=attributes,
        )
        if tool.asked_at is not None and tool.approval_wait_ms is not None:
            decided = tool.asked_at + tool.approval_wait_ms / 1000
            self._tracer.start_span(
                f"approval {tool.name}",
                context=self._trace.set_span_in_context(span),
                start_time=self._ns(tool.asked_at),
                attributes={
                    "gen_ai.tool.call.id": tool.call_id,
                    "cantata.tool.status": tool.status,
                },
            ).end(end_time=self._ns(decided))
        end = tool.finished_at if tool.finished_at is not None else tool.requested_at
        span.end(end_time=self._ns(end))
        named: Attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool.name}
        if tool.latency_ms is not None:
            self._measure.tools.record(tool.latency_ms / 1000, named)
        if tool.approval_wait_ms is not None:
            self._measure.approvals.record(tool.approval_wait_ms / 1000, named)


def _optional(name: str, value: float | None) -> Attributes:
    return {} if value is None else {name: value}


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


_Handler: TypeAlias = Callable[[SessionTelemetry, Any], None]
_HANDLERS: Mapping[type, _Handler] = {
    SessionStarted: SessionTelemetry._started,
    TurnMeasured: SessionTelemetry._turn,
    Reconnecting: SessionTelemetry._reconnecting,
    Reconnected: SessionTelemetry._reconnected,
    RolledOver: SessionTelemetry._rolled_over,
    HandedOff: SessionTelemetry._handed_off,
    Interrupted: SessionTelemetry._interrupted,
    UserTranscript: SessionTelemetry._transcribed,
    AssistantMessage: SessionTelemetry._answered,
    ToolCallFinished: SessionTelemetry._finished,
}
"""What each application event does to the telemetry."""


class OpenTelemetry(Plugin):
    """Traces and measures each session it is opened for (see the module docstring).

    Args:
        tracer_provider, meter_provider: where spans and measurements go
            (default: OpenTelemetry's global providers).
        capture_content: also record what was said and tool arguments and
            results (personal data: off by default).
    """

    name = "otel"

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool = False,
    ) -> None:
        super().__init__()
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.capture_content = capture_content
        self._instruments: Instruments | None = None

    def describe(self) -> dict[str, list[str]]:
        return {"telemetry": ["OpenTelemetry spans and metrics per session and turn"]}

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        trace, metrics = _opentelemetry()
        tracer = trace.get_tracer("cantata", tracer_provider=self._tracer_provider)
        if self._instruments is None:
            meter = metrics.get_meter("cantata", meter_provider=self._meter_provider)
            self._instruments = Instruments(cast("Meter", meter))
        telemetry = SessionTelemetry(
            cast("Tracer", tracer), self._instruments, capture_content=self.capture_content
        )
        try:
            yield Contribution(observe=telemetry.observe)
        finally:
            telemetry.end()
