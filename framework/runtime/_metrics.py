"""Per-turn metrics, observed at the messages: how fast a turn was, where the time went.

The :class:`MetricsCollector` watches three streams, each at the one place it
passes: the messages the edge translates from the server (a response starting
and ending, its first audio and text, a call requested), the client events the
writer puts on the wire (a user message, a commit, a ``response.create``), and
the application events (speech stopped, calls started and finished, approvals
asked, interruptions). It counts nothing in step with another actor: every
figure is the difference of two moments it saw, or a sum of what the messages
carried. Times are trio's clock (``MockClock`` in tests, so exact there).

A **turn** opens at the user's input: speech started (server VAD), a user
message sent, a commit, or a response nobody asked for in an open turn. Its
*input end* is when the user stopped (``speech_stopped``) or the message or
commit went out; latencies are measured from there. It closes at the next
quiet moment (the ResponseActor says when: no response running or owed, no
call outstanding) or at the next input, and is reported
(:class:`~framework.runtime.TurnMeasured`) once its responses and calls have
ended and its audio has played out (the play-out is reckoned as a sink plays:
each chunk after the one before, cut short by a barge-in), so that what the
user heard, and whether they cut it short, is part of it. The collector's
:meth:`~MetricsCollector.run` task reports a turn when its audio ends.

Cost comes from a :class:`Pricing` table (US dollars per million tokens;
cached input tokens are part of the input and priced as cached, audio tokens
apart from text), chosen by the session's model from :data:`HOSTED_PRICES`
unless given.

Bounds: :data:`KEPT_TURNS` turns kept for ``session.metrics`` (the totals
count every turn); at most :data:`OPEN_TURNS` turns waiting for their
responses to end (past it the oldest is reported as it stands).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import TypeAlias, cast

import attrs
import trio

from framework.audio import bytes_per_ms
from framework.protocol import (
    ClientEvent,
    ConversationItemCreateEvent,
    InputAudioBufferCommitEvent,
    RealtimeConversationItemUserMessage,
    ResponseCreateEvent,
)

from ._events import (
    ApprovalRequested,
    AssistantDelta,
    EventHub,
    Interrupted,
    Reconnected,
    RolledOver,
    SessionEvent,
    SessionStarted,
    ToolCallFinished,
    ToolCallStarted,
    TurnMeasured,
    Usage,
    UserSpeechStarted,
    UserSpeechStopped,
)
from ._measures import (
    HOSTED_PRICES,
    Pricing,
    ResponseMetrics,
    SessionMetrics,
    ToolMetrics,
    Trigger,
    TurnMetrics,
    price_for,
)
from ._messages import AudioDelta, CallRequested, ResponseEnded, ResponseStarted, SessionConfigured

KEPT_TURNS = 1000
"""Turns whose metrics ``session.metrics`` keeps; older ones count only in the totals."""
OPEN_TURNS = 8
"""Closed turns waiting for their responses and calls to end."""


@attrs.define(eq=False)
class _Tool:
    request: CallRequested
    requested_at: float
    asked_at: float | None = None
    started_at: float | None = None
    decided_at: float | None = None
    finished: ToolCallFinished | None = None
    finished_at: float | None = None

    def metrics(self) -> ToolMetrics:
        ms = _ms
        return ToolMetrics(
            call_id=self.request.call_id,
            name=self.request.name,
            response_id=self.request.response_id,
            status=self.finished.status if self.finished is not None else "running",
            requested_at=self.requested_at,
            finished_at=self.finished_at,
            approval_wait_ms=ms(self.asked_at, self.decided_at),
            latency_ms=ms(self.started_at, self.finished_at),
            total_ms=ms(self.requested_at, self.finished_at),
            asked_at=self.asked_at,
        )


@attrs.define(eq=False)
class _Response:
    response_id: str
    started_at: float
    ended: ResponseEnded | None = None
    ended_at: float | None = None
    first_audio_at: float | None = None
    first_text_at: float | None = None
    audio: dict[str, int] = attrs.Factory(dict)  # bytes per item
    usage: Usage = attrs.Factory(Usage)


@attrs.define(eq=False)
class _Turn:
    index: int
    trigger: Trigger
    started_at: float
    input_ended_at: float | None
    responses: list[_Response] = attrs.Factory(list)
    tools: dict[str, _Tool] = attrs.Factory(dict)
    heard: dict[str, int] = attrs.Factory(dict)  # ms played of each interrupted item
    interruptions: int = 0
    played_until: float = 0.0  # when its last audio stops playing (trio clock)
    input_item_id: str | None = None

    @property
    def settled(self) -> bool:
        return (
            trio.current_time() >= self.played_until
            and all(r.ended is not None for r in self.responses)
            and all(t.finished is not None for t in self.tools.values())
        )


class MetricsCollector:
    """Turns the messages of one session into metrics (see the module docstring).

    Args:
        events: the session's event hub; it observes it, and publishes
            :class:`~framework.runtime.TurnMeasured` there.
        pricing: one price for every model, a table by model name, or ``None``
            for no costs.
        playback: whether assistant audio is played (to a sink); without, a
            turn does not wait for its audio, and all of it counts as heard.
    """

    def __init__(
        self,
        events: EventHub,
        *,
        pricing: Pricing | Mapping[str, Pricing] | None = HOSTED_PRICES,
        playback: bool = True,
    ) -> None:
        self._events = events
        self._pricing = pricing
        self._price: Pricing | None = pricing if isinstance(pricing, Pricing) else None
        self._per_ms = 48
        self._count = 0
        self._current: _Turn | None = None
        self._closed: deque[_Turn] = deque()
        self._responses: dict[str, tuple[_Turn, _Response]] = {}
        self._items: dict[str, _Turn] = {}
        self._kept: deque[TurnMetrics] = deque(maxlen=KEPT_TURNS)
        self._usage = Usage()
        self._interruptions = 0
        self._reconnects = 0
        self._rollovers = 0
        self._reported = 0
        self._playback = playback
        self._played_until = 0.0
        self._timer = trio.CancelScope()
        events.observe(self.event)

    async def run(self) -> None:
        """Reports each closed turn when its audio has played out (until cancelled)."""
        while True:
            with trio.CancelScope() as self._timer:
                self._timer.deadline = self._due()
                await trio.sleep_forever()
            self._report_settled()

    def _due(self) -> float:
        waiting = [t.played_until for t in self._closed if t.played_until > trio.current_time()]
        return min(waiting, default=math.inf)

    # --- what the session asks -----------------------------------------------------

    def snapshot(self) -> SessionMetrics:
        return SessionMetrics(
            turns=tuple(self._kept),
            turn_count=self._reported,
            usage=self._usage.plus(Usage()),
            cost_usd=self._cost(self._usage),
            interruptions=self._interruptions,
            reconnects=self._reconnects,
            rollovers=self._rollovers,
        )

    def quiet(self) -> None:
        """The session became quiet: the turn that had responses is over."""
        if self._current is not None and self._current.responses:
            self._close()
        self._report_settled()

    def finish(self) -> None:
        """The session ended: every turn is reported as it stands."""
        self._close()
        while self._closed:
            self._report(self._closed.popleft())

    # --- the three streams -------------------------------------------------------------

    def message(self, message: object) -> None:
        """A message the edge sent (from the server's events)."""
        handler = _MESSAGES.get(type(message))
        if handler is not None:
            handler(self, message)

    def sent(self, event: ClientEvent) -> None:
        """A client event the writer put on the wire."""
        handler = _SENT.get(type(event))
        if handler is not None:
            handler(self, event)

    def event(self, event: SessionEvent) -> None:
        """An application event (the hub's observer)."""
        handler = _EVENTS.get(type(event))
        if handler is not None:
            handler(self, event)

    # --- turns ---------------------------------------------------------------------------

    def _open(self, trigger: Trigger, *, input_ended: bool) -> _Turn:
        self._close()
        self._count += 1
        now = trio.current_time()
        turn = _Turn(self._count, trigger, now, now if input_ended else None)
        self._current = turn
        return turn

    def _close(self) -> None:
        if self._current is None:
            return
        self._closed.append(self._current)
        self._current = None
        self._report_settled()

    def _report_settled(self) -> None:
        while self._closed and (self._closed[0].settled or len(self._closed) > OPEN_TURNS):
            self._report(self._closed.popleft())
        for turn in [t for t in self._closed if t.settled]:
            self._closed.remove(turn)
            self._report(turn)
        self._timer.deadline = self._due()

    def _report(self, turn: _Turn) -> None:
        for response in turn.responses:
            self._responses.pop(response.response_id, None)
            for item_id in response.audio:
                self._items.pop(item_id, None)
        metrics = self._measure(turn)
        self._kept.append(metrics)
        self._reported += 1
        self._events.publish(TurnMeasured(metrics=metrics))

    def _measure(self, turn: _Turn) -> TurnMetrics:
        per_ms = self._per_ms
        usage = Usage()
        responses = []
        generated = played = 0
        first_audio = first_text = None
        for r in turn.responses:
            usage = usage.plus(r.usage)
            audio_ms = sum(r.audio.values()) // per_ms
            generated += audio_ms
            played += sum(
                min(size // per_ms, turn.heard.get(item_id, size // per_ms))
                for item_id, size in r.audio.items()
            )
            first_audio = _earliest(first_audio, r.first_audio_at)
            first_text = _earliest(first_text, r.first_text_at)
            responses.append(
                ResponseMetrics(
                    response_id=r.response_id,
                    status=r.ended.status if r.ended is not None else "unfinished",
                    started_at=r.started_at,
                    ended_at=r.ended_at,
                    duration_ms=_ms(r.started_at, r.ended_at),
                    first_audio_ms=_ms(r.started_at, r.first_audio_at),
                    first_text_ms=_ms(r.started_at, r.first_text_at),
                    audio_ms=audio_ms,
                    usage=r.usage,
                    cost_usd=self._cost(r.usage),
                )
            )
        # Reported before its audio played out (the session ended, or too many turns
        # wait): the tail still queued was never heard.
        unplayed = max(0.0, turn.played_until - trio.current_time())
        played = max(0, played - round(unplayed * 1000))
        ends = [r.ended_at for r in turn.responses if r.ended_at is not None]
        ends += [t.finished_at for t in turn.tools.values() if t.finished_at is not None]
        return TurnMetrics(
            index=turn.index,
            trigger=turn.trigger,
            started_at=turn.started_at,
            input_ended_at=turn.input_ended_at,
            ended_at=max(ends, default=trio.current_time()),
            first_audio_ms=_ms(turn.input_ended_at, first_audio),
            first_text_ms=_ms(turn.input_ended_at, first_text),
            responses=tuple(responses),
            tools=tuple(t.metrics() for t in turn.tools.values()),
            audio_generated_ms=generated,
            audio_played_ms=played,
            interruptions=turn.interruptions,
            usage=usage,
            cost_usd=self._cost(usage),
            input_item_id=turn.input_item_id,
        )

    def _cost(self, usage: Usage) -> float | None:
        return self._price.cost(usage) if self._price is not None else None

    def _response(self, response_id: str) -> tuple[_Turn, _Response] | None:
        return self._responses.get(response_id)

    # --- from the edge -----------------------------------------------------------------

    def _configured(self, message: SessionConfigured) -> None:
        self._per_ms = bytes_per_ms(message.output_format)

    def _started(self, message: ResponseStarted) -> None:
        turn = self._current or self._open("response", input_ended=True)
        response = _Response(message.response_id, trio.current_time())
        turn.responses.append(response)
        self._responses[message.response_id] = (turn, response)

    def _audio(self, message: AudioDelta) -> None:
        found = self._response(message.response_id)
        if found is None:
            return
        turn, response = found
        if response.first_audio_at is None:
            response.first_audio_at = trio.current_time()
        if message.item_id not in response.audio:
            response.audio[message.item_id] = 0
            self._items[message.item_id] = turn
        response.audio[message.item_id] += len(message.audio)
        if self._playback:
            # As a sink plays: after what is queued, or now if it went quiet.
            start = max(trio.current_time(), self._played_until)
            self._played_until = start + len(message.audio) / self._per_ms / 1000
            turn.played_until = self._played_until

    def _text(self, message: AssistantDelta) -> None:
        found = self._response(message.response_id)
        if found is not None and found[1].first_text_at is None:
            found[1].first_text_at = trio.current_time()

    def _ended(self, message: ResponseEnded) -> None:
        found = self._response(message.response_id)
        if found is None:
            return
        _, response = found
        response.ended = message
        response.ended_at = trio.current_time()
        response.usage.add(message.usage)
        self._usage.add(message.usage)
        self._report_settled()

    def _call(self, message: CallRequested) -> None:
        found = self._response(message.response_id)
        turn = found[0] if found is not None else self._current
        if turn is not None:
            turn.tools[message.call_id] = _Tool(message, trio.current_time())

    # --- from the writer ---------------------------------------------------------------

    def _item_sent(self, event: ConversationItemCreateEvent) -> None:
        if isinstance(event.item, RealtimeConversationItemUserMessage):
            item_id = event.item.id
            turn = self._open("text", input_ended=True)
            turn.input_item_id = item_id if isinstance(item_id, str) and item_id else None

    def _commit_sent(self, event: InputAudioBufferCommitEvent) -> None:
        turn = self._current
        if turn is not None and turn.trigger == "speech" and not turn.responses:
            turn.input_ended_at = trio.current_time()
        else:
            self._open("commit", input_ended=True)

    def _create_sent(self, event: ResponseCreateEvent) -> None:
        if self._current is None:
            self._open("response", input_ended=True)

    # --- from the application events ---------------------------------------------------

    def _session_started(self, event: SessionStarted) -> None:
        pricing = self._pricing
        if pricing is not None and not isinstance(pricing, Pricing):
            self._price = price_for(event.model, pricing)

    def _speech_started(self, event: UserSpeechStarted) -> None:
        self._open("speech", input_ended=False).input_item_id = event.item_id

    def _speech_stopped(self, event: UserSpeechStopped) -> None:
        if self._current is not None and self._current.trigger == "speech":
            self._current.input_ended_at = trio.current_time()

    def _tool(self, call_id: str) -> tuple[_Turn, _Tool] | None:
        for turn in (self._current, *self._closed):
            if turn is not None and call_id in turn.tools:
                return turn, turn.tools[call_id]
        return None

    def _asked(self, event: ApprovalRequested) -> None:
        found = self._tool(event.request.call_id)
        if found is not None:
            found[1].asked_at = trio.current_time()

    def _tool_started(self, event: ToolCallStarted) -> None:
        found = self._tool(event.call_id)
        if found is not None:
            tool = found[1]
            tool.started_at = trio.current_time()
            if tool.asked_at is not None:
                tool.decided_at = tool.started_at

    def _tool_finished(self, event: ToolCallFinished) -> None:
        found = self._tool(event.call_id)
        if found is None:
            return
        tool = found[1]
        tool.finished = event
        tool.finished_at = trio.current_time()
        if tool.asked_at is not None and tool.decided_at is None:
            tool.decided_at = tool.finished_at  # not approved: it ended at the answer
        self._report_settled()

    def _interrupted(self, event: Interrupted) -> None:
        self._interruptions += 1
        now = trio.current_time()
        self._played_until = min(self._played_until, now)  # the sink stopped
        for waiting in (self._current, *self._closed):
            if waiting is not None:
                waiting.played_until = min(waiting.played_until, now)
        turn = self._items.get(event.item_id or "") or self._latest_with_responses()
        if turn is None:
            return
        turn.interruptions += 1
        if event.item_id is not None and event.truncated:
            turn.heard[event.item_id] = event.played_ms
        self._report_settled()

    def _latest_with_responses(self) -> _Turn | None:
        for turn in (self._current, *reversed(self._closed)):
            if turn is not None and turn.responses:
                return turn
        return None

    def _reconnected(self, event: Reconnected) -> None:
        self._reconnects += 1

    def _rolled_over(self, event: RolledOver) -> None:
        self._rollovers += 1


def _ms(start: float | None, end: float | None) -> float | None:
    """Milliseconds from ``start`` to ``end`` (``None`` when either is unknown, or reversed)."""
    if start is None or end is None or end < start:
        return None
    return round((end - start) * 1000, 3)


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


_Handler: TypeAlias = Callable[[MetricsCollector, object], None]


def _table(*pairs: tuple[type, Callable[[MetricsCollector, object], None]]) -> dict[type, _Handler]:
    return dict(pairs)


_MESSAGES = _table(
    (SessionConfigured, cast(_Handler, MetricsCollector._configured)),
    (ResponseStarted, cast(_Handler, MetricsCollector._started)),
    (AudioDelta, cast(_Handler, MetricsCollector._audio)),
    (AssistantDelta, cast(_Handler, MetricsCollector._text)),
    (ResponseEnded, cast(_Handler, MetricsCollector._ended)),
    (CallRequested, cast(_Handler, MetricsCollector._call)),
)
"""What each message of the edge tells the collector."""
_SENT = _table(
    (ConversationItemCreateEvent, cast(_Handler, MetricsCollector._item_sent)),
    (InputAudioBufferCommitEvent, cast(_Handler, MetricsCollector._commit_sent)),
    (ResponseCreateEvent, cast(_Handler, MetricsCollector._create_sent)),
)
"""What each client event on the wire tells it."""
_EVENTS = _table(
    (SessionStarted, cast(_Handler, MetricsCollector._session_started)),
    (UserSpeechStarted, cast(_Handler, MetricsCollector._speech_started)),
    (UserSpeechStopped, cast(_Handler, MetricsCollector._speech_stopped)),
    (ApprovalRequested, cast(_Handler, MetricsCollector._asked)),
    (ToolCallStarted, cast(_Handler, MetricsCollector._tool_started)),
    (ToolCallFinished, cast(_Handler, MetricsCollector._tool_finished)),
    (Interrupted, cast(_Handler, MetricsCollector._interrupted)),
    (Reconnected, cast(_Handler, MetricsCollector._reconnected)),
    (RolledOver, cast(_Handler, MetricsCollector._rolled_over)),
)
"""What each application event tells it."""
