"""The edge: server events translated into the actors' messages, once.

Part of the SessionActor, on its reader. Each wire event type has one
translator in a table; it resolves the protocol's optional fields (``UNSET``,
``None``) and sends plain messages to the actor that acts on them, or publishes
an application event. Events no actor needs stop here.

Routing that needs memory is bounded: the responses started and not yet done,
with the calls each told to the tools, keep at most :data:`OPEN_RESPONSES`.

When the connection is lost (or replaced), :meth:`Edge.line_lost` stands in for
what the old connection will never send: a ``ResponseEnded`` (``cut``) for
each response still open, and ``ConnectionLost`` to the ResponseActor and the
AudioInputActor; :meth:`Edge.line_restored` tells the audio to flow again.

Every message it sends is shown first to ``observe`` (the metrics collector).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Never, Protocol, TypeAlias, TypeVar, cast

import pybase64
import trio

from framework.audio import AudioFormat
from framework.protocol import (
    AudioPCM,
    AudioPCMA,
    AudioPCMU,
    ConversationItem,
    ConversationItemAdded,
    ConversationItemCreatedEvent,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferDtmfEventReceivedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    McpCallError,
    McpListToolsFailed,
    OutputAudioBufferCleared,
    OutputAudioBufferStopped,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeMcpApprovalRequest,
    RealtimeMcpListTools,
    RealtimeMcpToolCall,
    RealtimeResponse,
    RealtimeResponseStatus,
    RealtimeResponseUsage,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    SemanticVad,
    ServerEvent,
    ServerVad,
    SessionUpdatedEvent,
)

from ._events import (
    AssistantDelta,
    AudioCleared,
    AudioCommitted,
    DtmfReceived,
    ErrorReported,
    EventHub,
    McpCallFinished,
    McpToolsListed,
    PlayoutStopped,
    TranscriptionFailed,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._history import History, message_text
from ._messages import (
    AudioDelta,
    AudioInbox,
    BargedIn,
    CallRequested,
    ConnectionLost,
    ConnectionRestored,
    CreateRefused,
    CreateResponse,
    MessageDone,
    NotifyWhenQuiet,
    OutputAccepted,
    OutputRefused,
    ResponseEnded,
    ResponseInbox,
    ResponseStarted,
    SessionConfigured,
    ToolInbox,
)

if TYPE_CHECKING:
    from ._toolset import Toolset

_log = logging.getLogger("cantata.session")

OPEN_RESPONSES = 64
"""Responses whose calls are remembered until their ``response.done``; past it the oldest go."""

TOOL_EVENT_PREFIXES = ("output_", "mcpr_")
"""Event ids of the ToolExecutionActor's item creates (its outputs and approval answers)."""
RESPONSE_EVENT_PREFIX = "create_"
"""Event ids of the ResponseActor's ``response.create`` events."""
FAILED_LISTINGS = 64
"""Failed hosted-MCP listings remembered until their item is done (one event per listing)."""

_M = TypeVar("_M")


async def post(channel: trio.MemorySendChannel[_M], message: _M) -> None:
    """Sends without a checkpoint when there is room (the common case on the reader)."""
    try:
        channel.send_nowait(message)
    except trio.WouldBlock:
        await channel.send(message)


def malformed(message: str) -> ErrorReported:
    """What the application is told of a server event the session could not use."""
    return ErrorReported(
        error=RealtimeError(type="client_error", code="malformed_server_event", message=message)
    )


class SessionState(Protocol):
    """What the edge reads of its SessionActor."""

    @property
    def toolset(self) -> Toolset: ...

    @property
    def history(self) -> History: ...


_Translator: TypeAlias = Callable[["Edge", ServerEvent], Awaitable[None]]
_TABLE: dict[type[ServerEvent], _Translator] = {}
"""The translator of each event type; events of other types stop at the edge."""
_F = TypeVar("_F", bound=Callable[["Edge", Never], Awaitable[None]])


def _translates(*kinds: type[ServerEvent]) -> Callable[[_F], _F]:
    """Registers a method of :class:`Edge` as the translator of ``kinds``."""

    def register(translate: _F) -> _F:
        for kind in kinds:
            _TABLE[kind] = cast(_Translator, translate)
        return translate

    return register


def _detection(event: SessionUpdatedEvent) -> ServerVad | SemanticVad | None:
    """The server's turn detection in the confirmed configuration, if any."""
    config = event.session
    audio = config.audio if isinstance(config, RealtimeSessionCreateRequest) else None
    if isinstance(audio, RealtimeAudioConfig) and isinstance(audio.input, RealtimeAudioConfigInput):
        detection = audio.input.turn_detection
        if isinstance(detection, (ServerVad, SemanticVad)):
            return detection
    return None


def _server_interrupts(event: SessionUpdatedEvent) -> bool:
    """Whether server VAD cancels the active response itself on speech."""
    detection = _detection(event)
    # The protocol's default for interrupt_response is true.
    return detection is not None and detection.interrupt_response is not False


def _vad_replies(event: SessionUpdatedEvent) -> bool:
    """Whether server VAD asks for a response itself when the user stops."""
    detection = _detection(event)
    # The protocol's default for create_response is true.
    return detection is not None and detection.create_response is not False


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _formats(event: SessionUpdatedEvent) -> dict[str, AudioFormat]:
    config = event.session
    audio = config.audio if isinstance(config, RealtimeSessionCreateRequest) else None
    if not isinstance(audio, RealtimeAudioConfig):
        return {}
    found: dict[str, AudioFormat] = {}
    for name, part in (("input_format", audio.input), ("output_format", audio.output)):
        fmt = getattr(part, "format", None)
        if isinstance(fmt, AudioPCM | AudioPCMU | AudioPCMA):
            found[name] = fmt
    return found


def _cut(response_id: str) -> RealtimeResponse:
    """What stands in for the ``response.done`` of a response its connection took with it."""
    return RealtimeResponse(
        id=response_id,
        object="realtime.response",
        status="incomplete",
        status_details=RealtimeResponseStatus(type="incomplete", reason="connection_lost"),
    )


class Edge:
    """Translates the server's events for one session (see the module docstring)."""

    def __init__(
        self,
        state: SessionState,
        *,
        to_responses: trio.MemorySendChannel[ResponseInbox],
        to_tools: trio.MemorySendChannel[ToolInbox],
        to_audio: trio.MemorySendChannel[AudioInbox] | None = None,
        events: EventHub,
        observe: Callable[[object], None] | None = None,
    ) -> None:
        self._state = state
        self._to_responses = to_responses
        self._to_tools = to_tools
        self._to_audio = to_audio
        self._events = events
        self._observe = observe
        self._calls: dict[str, list[str]] = {}  # open responses, with their calls
        # Listings that failed: their item is done after the failure (with no tools),
        # and the application hears of each listing once.
        self._failed_listings: deque[str] = deque(maxlen=FAILED_LISTINGS)
        self.speaking = False
        """Whether the user is speaking (server VAD heard a start and no stop yet)."""
        self.reply_owed = False
        """The user stopped speaking and server VAD will answer: no response started yet."""
        self.changed = trio.Event()
        """Set (and renewed) whenever ``speaking``, ``reply_owed`` or the open responses change."""
        self._vad_replies = False
        self.closed = False

    def close(self) -> None:
        """Closes its send ends: no more messages from the wire."""
        self.closed = True
        self._to_responses.close()
        self._to_tools.close()
        if self._to_audio is not None:
            self._to_audio.close()

    async def _send(self, channel: trio.MemorySendChannel[_M], message: _M) -> None:
        if self._observe is not None:
            self._observe(message)
        await post(channel, message)

    @property
    def open_responses(self) -> int:
        """Responses the server started and has not said are done."""
        return len(self._calls)

    async def notify_when_quiet(self, quiet: trio.Event) -> None:
        """Asks the ResponseActor to set ``quiet`` once the session is quiet."""
        await self._send(self._to_responses, NotifyWhenQuiet(quiet=quiet))

    async def ask(self, message: CreateResponse) -> None:
        """Asks the ResponseActor for a response (a resumed session's calls were answered)."""
        await self._send(self._to_responses, message)

    async def line_lost(self, keep_audio_bytes: int, lost_create: str | None = None) -> None:
        """The connection is gone: its open responses end here, cut, and the actors are told."""
        for response_id, calls in list(self._calls.items()):
            del self._calls[response_id]
            await self._send(
                self._to_responses,
                ResponseEnded(
                    response_id=response_id,
                    status="incomplete",
                    usage=None,
                    response=_cut(response_id),
                    call_ids=tuple(dict.fromkeys(calls)),
                    cut=True,
                ),
            )
        self.speaking = self.reply_owed = False  # what the old server heard ended with it
        self._changed()
        await self._send(self._to_responses, ConnectionLost(lost_create=lost_create))
        if self._to_audio is not None:
            await self._send(self._to_audio, ConnectionLost(keep_bytes=keep_audio_bytes))

    async def line_restored(self) -> None:
        """The session is on its new connection, conversation replayed: audio may flow."""
        if self._to_audio is not None:
            await self._send(self._to_audio, ConnectionRestored())

    @property
    def busy(self) -> bool:
        """Whether the server is at work on the user's turn (a bad moment for a switch)."""
        return self.speaking or self.reply_owed or bool(self._calls)

    def _changed(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def translate(self, event: ServerEvent) -> None:
        translator = _TABLE.get(type(event))
        if translator is not None:
            await translator(self, event)

    # --- configuration and responses ----------------------------------------------------

    @_translates(SessionUpdatedEvent)
    async def _session_updated(self, event: SessionUpdatedEvent) -> None:
        self._vad_replies = _vad_replies(event)
        await self._send(
            self._to_responses,
            SessionConfigured(server_interrupts=_server_interrupts(event), **_formats(event)),
        )

    @_translates(ResponseCreatedEvent)
    async def _response_created(self, event: ResponseCreatedEvent) -> None:
        if isinstance(event.response.id, str):
            self._open(event.response.id)
            self.reply_owed = False
            self._changed()
            await self._send(self._to_responses, ResponseStarted(response_id=event.response.id))

    @_translates(ResponseTextDeltaEvent)
    async def _text_delta(self, event: ResponseTextDeltaEvent) -> None:
        await self._send(
            self._to_responses,
            AssistantDelta(
                response_id=event.response_id, item_id=event.item_id, delta=event.delta, kind="text"
            ),
        )

    @_translates(ResponseAudioTranscriptDeltaEvent)
    async def _transcript_delta(self, event: ResponseAudioTranscriptDeltaEvent) -> None:
        await self._send(
            self._to_responses,
            AssistantDelta(
                response_id=event.response_id,
                item_id=event.item_id,
                delta=event.delta,
                kind="transcript",
            ),
        )

    @_translates(ResponseAudioDeltaEvent)
    async def _audio_delta(self, event: ResponseAudioDeltaEvent) -> None:
        try:
            audio = pybase64.b64decode(event.delta, validate=True)
        except ValueError:
            # The delta is lost, not the session: the rest of the reply still plays.
            _log.warning("an audio delta of %s is not base64; dropped", event.response_id)
            self._events.publish(
                malformed(f"response.output_audio.delta {event.event_id}: not base64")
            )
            return
        await self._send(
            self._to_responses,
            AudioDelta(response_id=event.response_id, item_id=event.item_id, audio=audio),
        )

    @_translates(ResponseOutputItemDoneEvent)
    async def _output_item_done(self, event: ResponseOutputItemDoneEvent) -> None:
        item = event.item
        if isinstance(item, RealtimeConversationItemAssistantMessage):
            await self._send(
                self._to_responses,
                MessageDone(
                    response_id=event.response_id,
                    item_id=_text(item.id),
                    text=message_text(item),
                ),
            )
        elif isinstance(item, RealtimeMcpApprovalRequest):
            await self._call(
                item.id, item.name, item.arguments, event.response_id, label=item.server_label
            )
        elif isinstance(item, RealtimeMcpToolCall):
            self._events.publish(
                McpCallFinished(
                    item_id=item.id,
                    server_label=item.server_label,
                    name=item.name,
                    arguments=item.arguments,
                    output=item.output if isinstance(item.output, str) else None,
                    error=item.error.message if isinstance(item.error, McpCallError) else None,
                )
            )

    @_translates(ResponseFunctionCallArgumentsDoneEvent)
    async def _arguments_done(self, event: ResponseFunctionCallArgumentsDoneEvent) -> None:
        # The one place a function call is detected: the earliest event that has
        # all of it. The hosted API sends it for every call, before the item's
        # response.output_item.done (which repeats it, and is not read for calls).
        name = event.name
        if not isinstance(name, str):  # the GA event carries it; older servers did not
            known = self._state.history.get(event.item_id)
            item = known.item if known is not None else None
            name = item.name if isinstance(item, RealtimeConversationItemFunctionCall) else ""
        await self._call(event.call_id, name, event.arguments, event.response_id)

    async def _call(
        self, call_id: str, name: str, arguments: str, response_id: str, label: str | None = None
    ) -> None:
        toolset = self._state.toolset
        self._open(response_id).append(call_id)
        await self._send(
            self._to_tools,
            CallRequested(
                call_id=call_id,
                name=name,
                arguments=arguments,
                response_id=response_id,
                tool=toolset.tools.get(name) if label is None else None,
                context=toolset.context,
                server_label=label,
            ),
        )

    def _open(self, response_id: str) -> list[str]:
        calls = self._calls.get(response_id)
        if calls is None:
            if len(self._calls) >= OPEN_RESPONSES:
                del self._calls[next(iter(self._calls))]
            calls = self._calls[response_id] = []
        return calls

    @_translates(ResponseDoneEvent)
    async def _response_done(self, event: ResponseDoneEvent) -> None:
        response = event.response
        response_id = _text(response.id)
        usage = response.usage if isinstance(response.usage, RealtimeResponseUsage) else None
        calls = self._calls.pop(response_id, [])
        self._changed()
        await self._send(
            self._to_responses,
            ResponseEnded(
                response_id=response_id,
                status=response.status if isinstance(response.status, str) else "completed",
                usage=usage,
                response=response,
                call_ids=tuple(dict.fromkeys(calls)),
            ),
        )

    # --- the user ------------------------------------------------------------------------

    @_translates(InputAudioBufferSpeechStartedEvent)
    async def _speech_started(self, event: InputAudioBufferSpeechStartedEvent) -> None:
        self.speaking = True
        self._changed()
        barged_in = BargedIn(audio_start_ms=event.audio_start_ms)
        await self._send(self._to_tools, barged_in)
        await self._send(self._to_responses, barged_in)
        self._events.publish(
            UserSpeechStarted(item_id=event.item_id, audio_start_ms=event.audio_start_ms)
        )

    @_translates(InputAudioBufferSpeechStoppedEvent)
    async def _speech_stopped(self, event: InputAudioBufferSpeechStoppedEvent) -> None:
        self.speaking = False
        self.reply_owed = self._vad_replies
        self._changed()
        self._events.publish(
            UserSpeechStopped(item_id=event.item_id, audio_end_ms=event.audio_end_ms)
        )

    @_translates(InputAudioBufferDtmfEventReceivedEvent)
    async def _dtmf(self, event: InputAudioBufferDtmfEventReceivedEvent) -> None:
        self._events.publish(DtmfReceived(digit=event.event, received_at=event.received_at))

    @_translates(OutputAudioBufferStopped, OutputAudioBufferCleared)
    async def _playout_stopped(
        self, event: OutputAudioBufferStopped | OutputAudioBufferCleared
    ) -> None:
        cleared = isinstance(event, OutputAudioBufferCleared)
        self._events.publish(PlayoutStopped(response_id=event.response_id, cleared=cleared))

    @_translates(ConversationItemInputAudioTranscriptionDeltaEvent)
    async def _transcription_delta(
        self, event: ConversationItemInputAudioTranscriptionDeltaEvent
    ) -> None:
        known = self._state.history.get(event.item_id)
        text = known.text if known is not None else _text(event.delta)
        self._events.publish(UserTranscript(item_id=event.item_id, text=text, final=False))

    @_translates(ConversationItemInputAudioTranscriptionCompletedEvent)
    async def _transcription_completed(
        self, event: ConversationItemInputAudioTranscriptionCompletedEvent
    ) -> None:
        self._events.publish(
            UserTranscript(
                item_id=event.item_id, text=_text(event.transcript), final=True, usage=event.usage
            )
        )

    @_translates(ConversationItemInputAudioTranscriptionFailedEvent)
    async def _transcription_failed(
        self, event: ConversationItemInputAudioTranscriptionFailedEvent
    ) -> None:
        error = event.error
        message = error.message if isinstance(error.message, str) else ""
        self._events.publish(
            TranscriptionFailed(item_id=event.item_id, message=message or "no reason given")
        )

    @_translates(InputAudioBufferCommittedEvent)
    async def _committed(self, event: InputAudioBufferCommittedEvent) -> None:
        self._events.publish(AudioCommitted(item_id=event.item_id))

    @_translates(InputAudioBufferClearedEvent)
    async def _cleared(self, event: InputAudioBufferClearedEvent) -> None:
        self._events.publish(AudioCleared())

    # --- items -----------------------------------------------------------------------------

    @_translates(ConversationItemAdded, ConversationItemCreatedEvent)
    async def _item_added(
        self, event: ConversationItemAdded | ConversationItemCreatedEvent
    ) -> None:
        item: ConversationItem = event.item
        if isinstance(item, RealtimeConversationItemFunctionCallOutput):
            await self._send(self._to_tools, OutputAccepted(call_id=item.call_id))

    @_translates(ConversationItemDone)
    async def _item_done(self, event: ConversationItemDone) -> None:
        listed = event.item
        if isinstance(listed, RealtimeMcpListTools):
            if listed.id in self._failed_listings:
                self._failed_listings.remove(_text(listed.id))
                return
            self._events.publish(
                McpToolsListed(
                    item_id=_text(listed.id),
                    server_label=listed.server_label,
                    tools=[t.name for t in listed.tools],
                    ok=True,
                )
            )

    @_translates(McpListToolsFailed)
    async def _listing_failed(self, event: McpListToolsFailed) -> None:
        known = self._state.history.get(event.item_id)
        item = known.item if known is not None else None
        label = item.server_label if isinstance(item, RealtimeMcpListTools) else ""
        self._failed_listings.append(event.item_id)
        self._events.publish(
            McpToolsListed(item_id=event.item_id, server_label=label, tools=[], ok=False)
        )

    @_translates(RealtimeErrorEvent)
    async def _error(self, event: RealtimeErrorEvent) -> None:
        error = event.error
        self._events.publish(ErrorReported(error=error))
        event_id = error.event_id if isinstance(error.event_id, str) else None
        code = _text(error.code)
        if event_id is not None and event_id.startswith(RESPONSE_EVENT_PREFIX):
            await self._send(
                self._to_responses,
                CreateRefused(event_id=event_id, code=code, message=error.message),
            )
        elif (event_id is not None and event_id.startswith(TOOL_EVENT_PREFIXES)) or (
            # A server that cannot read a frame that large cannot name its event
            # either (the local engine does not); the tools match it to an output.
            event_id is None and code == "message_too_large"
        ):
            await self._send(
                self._to_tools, OutputRefused(event_id=event_id, code=code, message=error.message)
            )
