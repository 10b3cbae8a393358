"""What the metrics are: a turn's, a response's, a tool call's, the session's; and prices.

Plain frozen values (times on trio's clock, durations in milliseconds) that
:class:`~._metrics.MetricsCollector` fills in, and the :class:`Pricing` table
that turns a turn's tokens into its cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeAlias

import attrs

from ._events import Usage

Trigger: TypeAlias = Literal["speech", "text", "commit", "response"]


@attrs.frozen(kw_only=True)
class Pricing:
    """What tokens cost, in US dollars per million.

    Cached input tokens are a part of the input tokens: they are priced at
    the cached rate and the rest of the input at the full one. Audio and text
    are priced apart.
    """

    text_input: float
    cached_text_input: float
    text_output: float
    audio_input: float
    cached_audio_input: float
    audio_output: float

    def cost(self, usage: Usage) -> float:
        """The price of ``usage``, in US dollars."""
        cached_text, cached_audio = usage.cached_text_tokens, usage.cached_audio_tokens
        micro = (
            (usage.input_text_tokens - cached_text) * self.text_input
            + cached_text * self.cached_text_input
            + (usage.input_audio_tokens - cached_audio) * self.audio_input
            + cached_audio * self.cached_audio_input
            + usage.output_text_tokens * self.text_output
            + usage.output_audio_tokens * self.audio_output
        )
        return micro / 1_000_000


HOSTED_PRICES: Mapping[str, Pricing] = {
    "gpt-realtime-mini": Pricing(
        text_input=0.60,
        cached_text_input=0.06,
        text_output=2.40,
        audio_input=10.0,
        cached_audio_input=0.30,
        audio_output=20.0,
    ),
    "gpt-realtime": Pricing(
        text_input=4.0,
        cached_text_input=0.40,
        text_output=16.0,
        audio_input=32.0,
        cached_audio_input=0.40,
        audio_output=64.0,
    ),
}
"""The hosted API's published prices per model (and its dated snapshots, by prefix).
Prices change: pass your own table to ``open_session(pricing=...)``."""


def price_for(model: str, table: Mapping[str, Pricing]) -> Pricing | None:
    """The table's entry for ``model``: its own, or the longest name it starts with."""
    if model in table:
        return table[model]
    named = [name for name in table if model.startswith(name)]
    return table[max(named, key=len)] if named else None


@attrs.frozen(kw_only=True)
class ToolMetrics:
    """One function call of a turn.

    Attributes:
        requested_at, finished_at: when the model's call arrived and its output
            went out (trio clock seconds).
        approval_wait_ms: from asking the application to its answer (``None``
            when nobody was asked).
        latency_ms: the tool's own run, from its start to its output (``None``
            when it never ran: rejected, unknown, bad arguments).
        total_ms: from the call's arrival to its output.
        asked_at: when the application was asked to approve it (``None``: never).
    """

    call_id: str
    name: str
    response_id: str
    status: str
    requested_at: float
    finished_at: float | None
    approval_wait_ms: float | None
    latency_ms: float | None
    total_ms: float | None
    asked_at: float | None = None


@attrs.frozen(kw_only=True)
class ResponseMetrics:
    """One response of a turn; its latencies are from its own start."""

    response_id: str
    status: str
    started_at: float
    ended_at: float | None
    duration_ms: float | None
    first_audio_ms: float | None
    first_text_ms: float | None
    audio_ms: int
    usage: Usage
    cost_usd: float | None


@attrs.frozen(kw_only=True)
class TurnMetrics:
    """One turn: from the user's input to the end of everything it caused.

    Attributes:
        index: the turn's number in the session, from 1.
        trigger: what opened it: ``speech`` (server VAD), ``text``, ``commit``,
            or ``response`` (a response nobody's input asked for).
        input_ended_at: when the user stopped speaking, or the message or
            commit went out (trio clock seconds).
        first_audio_ms: from the input's end to the first assistant audio.
        first_text_ms: from the input's end to the first assistant text or
            transcript.
        audio_generated_ms: assistant audio received; ``audio_played_ms``:
            of it, what the user heard (an interrupted item counts up to where
            it was cut).
        interruptions: barge-ins into this turn's audio or responses.
        usage: the turn's tokens; ``cost_usd`` their price (``None`` when the
            model has no price in the table).
        input_item_id: the conversation item of the user's input: the speech
            server VAD heard, or the message sent (``None`` for a commit or
            a response nobody asked for).
    """

    index: int
    trigger: Trigger
    started_at: float
    input_ended_at: float | None
    ended_at: float
    first_audio_ms: float | None
    first_text_ms: float | None
    responses: tuple[ResponseMetrics, ...]
    tools: tuple[ToolMetrics, ...]
    audio_generated_ms: int
    audio_played_ms: int
    interruptions: int
    usage: Usage
    cost_usd: float | None
    input_item_id: str | None = None

    def summary(self) -> str:
        """One line for a terminal."""
        parts = [f"turn {self.index} ({self.trigger})"]
        if self.first_audio_ms is not None:
            parts.append(f"first audio {self.first_audio_ms:.0f} ms")
        if self.first_text_ms is not None:
            parts.append(f"first text {self.first_text_ms:.0f} ms")
        parts.append(f"{len(self.responses)} responses")
        for tool in self.tools:
            took = f" {tool.latency_ms:.0f} ms" if tool.latency_ms is not None else ""
            waited = (
                f", approval {tool.approval_wait_ms:.0f} ms"
                if tool.approval_wait_ms is not None
                else ""
            )
            parts.append(f"{tool.name} {tool.status}{took}{waited}")
        if self.audio_generated_ms:
            parts.append(f"audio {self.audio_played_ms}/{self.audio_generated_ms} ms played")
        if self.interruptions:
            parts.append(f"{self.interruptions} interruptions")
        parts.append(f"{self.usage.input_tokens} in / {self.usage.output_tokens} out tokens")
        if self.cost_usd is not None:
            parts.append(f"${self.cost_usd:.5f}")
        return ", ".join(parts)


@attrs.frozen(kw_only=True)
class SessionMetrics:
    """The session so far (``session.metrics``).

    Attributes:
        turns: the last :data:`~._metrics.KEPT_TURNS` turns reported, oldest first.
        turn_count: every turn reported.
        usage, cost_usd: over every response of the session.
        reconnects, rollovers: connections replaced after a drop, before an expiry.
    """

    turns: tuple[TurnMetrics, ...]
    turn_count: int
    usage: Usage
    cost_usd: float | None
    interruptions: int
    reconnects: int
    rollovers: int

    def first_audio_ms(self, quantile: float = 0.5) -> float | None:
        """A quantile (0.5: the median) of the kept turns' input-to-first-audio times."""
        values = sorted(t.first_audio_ms for t in self.turns if t.first_audio_ms is not None)
        if not values:
            return None
        return values[min(len(values) - 1, int(quantile * len(values)))]
