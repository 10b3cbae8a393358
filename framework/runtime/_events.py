"""What a session tells the application: ``async for event in session``.

Each event is a frozen attrs class named in the past tense. Raw protocol
events stay available as :class:`ServerEventReceived` for those who want
every frame; the rest are the moments an application acts on.

Actors publish through an :class:`EventHub`, which never waits: it hands each
event to its observers (a turn being collected, the hook runner), then to a
bounded queue for ``async for``, dropping the oldest event when the
application does not keep up (``dropped`` counts them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias

import attrs
import trio

from framework.protocol import (
    CachedTokensDetails,
    RealtimeError,
    RealtimeResponseUsage,
    ServerEvent,
    TranscriptionUsage,
)

from ._approvals import ApprovalRequest
from ._elicitation import ElicitationRequest

if TYPE_CHECKING:
    from ._measures import TurnMetrics

APP_EVENT_BUFFER = 1024
"""Application events kept for ``async for event in session``; past it the oldest go."""

CallStatus: TypeAlias = Literal[
    "ok",
    "bad_arguments",
    "error",
    "timeout",
    "cancelled",
    "unknown_tool",
    "rejected",
    "approved",
    "refused",
]
"""How a call ended. ``approved``/``rejected`` answer approval requests (``rejected``
also a function call that was not approved); ``refused``: the server refused
the output (too large), and the model was told so instead."""


@attrs.frozen(kw_only=True)
class SessionStarted:
    """The server accepted the session and the agent's configuration."""

    session_id: str
    model: str
    agent: str = ""
    """The name of the agent in charge."""


@attrs.frozen(kw_only=True)
class UserSpeechStarted:
    """Server VAD heard the user start speaking (``audio_start_ms`` of the input)."""

    item_id: str
    audio_start_ms: int


@attrs.frozen(kw_only=True)
class UserSpeechStopped:
    """Server VAD heard the user stop."""

    item_id: str
    audio_end_ms: int


@attrs.frozen(kw_only=True)
class UserTranscript:
    """The user's words: a growing partial (``final`` False) or the final text."""

    item_id: str
    text: str
    final: bool
    usage: TranscriptionUsage | None = None
    """With the final text: the transcription's usage (seconds or tokens)."""


@attrs.frozen(kw_only=True)
class TranscriptionFailed:
    """The transcription of a user audio item failed; ``message`` is the server's reason."""

    item_id: str
    message: str


@attrs.frozen(kw_only=True)
class AudioCommitted:
    """The server made the buffered input audio a user item (a VAD turn, or a commit)."""

    item_id: str


@attrs.frozen(kw_only=True)
class AudioCleared:
    """The server emptied the input audio buffer, answering ``input_audio_buffer.clear``.

    The server handles client events in order, so every turn committed from
    audio sent before the clear has been announced by then.
    """


@attrs.frozen(kw_only=True)
class AssistantDelta:
    """A piece of the assistant's reply: written text or the spoken transcript."""

    response_id: str
    item_id: str
    delta: str
    kind: Literal["text", "transcript"]


@attrs.frozen(kw_only=True)
class AssistantMessage:
    """One finished assistant message, with everything it said."""

    response_id: str
    item_id: str
    text: str
    audio_ms: int


@attrs.frozen(kw_only=True)
class ToolCallStarted:
    """A function call is about to run (after any approval)."""

    call_id: str
    name: str
    arguments: str


@attrs.frozen(kw_only=True)
class ToolCallFinished:
    """A function call's one output was sent to the model."""

    call_id: str
    name: str
    arguments: str
    status: CallStatus
    output: str


@attrs.frozen(kw_only=True)
class ToolProgress:
    """A running call reported how far it has got (an MCP server's progress, say).

    ``total`` is ``None`` when the tool does not know how much work there is.
    """

    call_id: str
    name: str
    progress: float
    total: float | None
    message: str | None


@attrs.frozen(kw_only=True)
class ElicitationRequested:
    """A tool asks the user something: ``session.answer_elicitation(request, {...})``,
    ``decline_elicitation`` or ``cancel_elicitation`` before ``request.deadline``."""

    request: ElicitationRequest


@attrs.frozen(kw_only=True)
class ApprovalRequested:
    """A call waits for a decision: ``session.approve(request)`` or ``reject``."""

    request: ApprovalRequest


@attrs.frozen(kw_only=True)
class Interrupted:
    """The user barged in: playback stopped at ``played_ms`` of the item."""

    item_id: str | None
    played_ms: int
    truncated: bool


@attrs.frozen(kw_only=True)
class ResponseFinished:
    """A response ended (``completed``, ``cancelled``, ``incomplete``, ``failed``)."""

    response_id: str
    status: str
    usage: RealtimeResponseUsage | None


@attrs.frozen(kw_only=True)
class HandedOff:
    """The session switched agents (by a handoff tool)."""

    from_agent: str
    to_agent: str


@attrs.frozen(kw_only=True)
class McpToolsListed:
    """The server imported a hosted MCP server's tools (or failed to)."""

    item_id: str
    server_label: str
    tools: Sequence[str]
    ok: bool


@attrs.frozen(kw_only=True)
class McpCallFinished:
    """The server ran a hosted MCP tool: its output, or its error."""

    item_id: str
    server_label: str
    name: str
    arguments: str
    output: str | None
    error: str | None


@attrs.frozen(kw_only=True)
class ErrorReported:
    """The server sent an ``error`` event (the session goes on)."""

    error: RealtimeError


@attrs.frozen(kw_only=True)
class DtmfReceived:
    """A telephone keypad key was pressed (``0``-``9``, ``*``, ``#``, ``A``-``D``).

    On SIP calls the server reports it (``input_audio_buffer.dtmf_event_received``);
    a carrier that brings its own keypad (Twilio Media Streams) publishes it
    with :meth:`Session.publish`. ``received_at`` is in epoch seconds.
    """

    digit: str
    received_at: int


@attrs.frozen(kw_only=True)
class PlayoutStopped:
    """The server stopped playing a response's audio to the caller (WebRTC and SIP).

    ``cleared``: it was cut off (``output_audio_buffer.cleared``), not played
    to its end (``output_audio_buffer.stopped``).
    """

    response_id: str
    cleared: bool


@attrs.frozen(kw_only=True)
class Reconnecting:
    """The connection dropped; the session is dialing again (one event per attempt).

    Attributes:
        attempt: the attempt of this outage, from 1.
        endpoint: the endpoint dialed (its URL, never its key).
        delay_s: how long the session waits before this attempt (back-off).
        reason: why the connection ended, or why the last attempt failed.
    """

    attempt: int
    endpoint: str
    delay_s: float
    reason: str


@attrs.frozen(kw_only=True)
class Reconnected:
    """The session is on a new connection, its conversation replayed.

    Attributes:
        endpoint: the endpoint it is on now.
        attempts: the dials it took.
        outage_ms: from the drop to the replayed conversation.
        replayed: conversation items re-created on the new connection.
        failed_over: whether it is another endpoint than the one that dropped.
    """

    endpoint: str
    attempts: int
    outage_ms: float
    replayed: int
    failed_over: bool


@attrs.frozen(kw_only=True)
class RolledOver:
    """The session moved to a fresh connection before the old one's expiry.

    Attributes:
        endpoint: the endpoint of the new connection.
        replayed: conversation items re-created on it.
        quiet: whether the switch came at a quiet moment (else the expiry was
            too close to wait for one).
    """

    endpoint: str
    replayed: int
    quiet: bool


@attrs.frozen(kw_only=True)
class TurnMeasured:
    """A turn is over: how fast it was, where the time went, what it cost."""

    metrics: TurnMetrics


@attrs.frozen(kw_only=True)
class ServerEventReceived:
    """Any server event, as parsed (only with ``open_session(raw_events=True)``)."""

    event: ServerEvent


SessionEvent: TypeAlias = (
    SessionStarted
    | UserSpeechStarted
    | UserSpeechStopped
    | UserTranscript
    | TranscriptionFailed
    | AudioCommitted
    | AudioCleared
    | AssistantDelta
    | AssistantMessage
    | ToolCallStarted
    | ToolCallFinished
    | ToolProgress
    | ApprovalRequested
    | ElicitationRequested
    | Interrupted
    | ResponseFinished
    | HandedOff
    | McpToolsListed
    | McpCallFinished
    | ErrorReported
    | DtmfReceived
    | PlayoutStopped
    | Reconnecting
    | Reconnected
    | RolledOver
    | TurnMeasured
    | ServerEventReceived
)
"""Everything ``async for event in session`` can yield."""

Observer: TypeAlias = Callable[[SessionEvent], None]
"""A callback that sees every event as it is published; it must not block."""


@attrs.define
class Usage:
    """Token usage summed over a session's (or a turn's) responses.

    Cached tokens are part of the input tokens, as the protocol reports them;
    ``cached_audio_tokens`` and ``cached_text_tokens`` split them by kind (when
    a server does not say, in proportion to the response's audio and text input).
    """

    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    cached_tokens: int = 0
    cached_audio_tokens: int = 0

    @property
    def input_text_tokens(self) -> int:
        """Input tokens that are not audio (text, and images if any)."""
        return self.input_tokens - self.input_audio_tokens

    @property
    def output_text_tokens(self) -> int:
        return self.output_tokens - self.output_audio_tokens

    @property
    def cached_text_tokens(self) -> int:
        return self.cached_tokens - self.cached_audio_tokens

    def add(self, usage: RealtimeResponseUsage | None) -> None:
        """Counts one response and adds its usage (a missing figure counts as 0)."""
        self.responses += 1
        if usage is None:
            return
        input_tokens = _int(usage.input_tokens)
        self.input_tokens += input_tokens
        self.output_tokens += _int(usage.output_tokens)
        self.total_tokens += _int(usage.total_tokens)
        details_in = usage.input_token_details
        if details_in is not None and not isinstance(details_in, str):
            audio = _int(getattr(details_in, "audio_tokens", 0))
            cached = _int(getattr(details_in, "cached_tokens", 0))
            self.input_audio_tokens += audio
            self.cached_tokens += cached
            by_kind = getattr(details_in, "cached_tokens_details", None)
            if isinstance(by_kind, CachedTokensDetails):
                self.cached_audio_tokens += _int(getattr(by_kind, "audio_tokens", 0))
            elif input_tokens:
                self.cached_audio_tokens += cached * audio // input_tokens
        details_out = usage.output_token_details
        if details_out is not None and not isinstance(details_out, str):
            self.output_audio_tokens += _int(getattr(details_out, "audio_tokens", 0))

    def plus(self, other: Usage) -> Usage:
        """The two sums added."""
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in _FIELDS})


_FIELDS = attrs.fields(Usage)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class EventHub:
    """Where actors publish application events; it never makes them wait.

    Observers see every event at once, in order; the application reads them
    from a queue of ``size`` events that drops its oldest when full.
    """

    def __init__(self, size: int = APP_EVENT_BUFFER) -> None:
        self._events: deque[SessionEvent] = deque(maxlen=size)
        self._arrived = trio.Event()
        self._observers: list[Observer] = []
        self._ended = False
        self.closed: BaseException | None = None
        self.dropped = 0
        self.read = False
        """Whether the application has ever asked for an event (``async for``)."""

    def publish(self, event: SessionEvent) -> None:
        """Hands ``event`` to every observer, then to the application's queue."""
        for observer in self._observers:
            observer(event)
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._arrived.set()

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def forget(self, observer: Observer) -> None:
        self._observers.remove(observer)

    @property
    def ended(self) -> bool:
        """Whether the session has ended (``closed`` says how, when by an error)."""
        return self._ended

    def end(self, error: BaseException | None) -> None:
        """No more events: the application's iteration ends (raising ``error`` if set)."""
        if not self._ended:
            self._ended = True
            self.closed = error
            self._arrived.set()

    async def get(self) -> SessionEvent:
        """The next event; raises ``StopAsyncIteration`` once the session ended."""
        self.read = True
        while not self._events:
            if self._ended:
                if self.closed is not None:
                    raise self.closed
                raise StopAsyncIteration
            self._arrived = trio.Event()
            await self._arrived.wait()
        return self._events.popleft()
