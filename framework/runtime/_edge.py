"""The edge: server events translated into the actors' messages, once.

Part of the SessionActor, on its reader. Each wire event type has one
translator in a table; it resolves the protocol's optional fields (``UNSET``,
``None``) and sends plain messages to the actor that acts on them, or publishes
an application event. Events no actor needs stop here.

Routing that needs memory is bounded: the calls told to the tools per response
(until that response's ``response.done``) keep at most :data:`OPEN_RESPONSES`
responses.
"""

from __future__ import annotations

import base64
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Never, Protocol, TypeAlias, TypeVar, cast

import trio

from framework.protocol import (
    ConversationItem,
    ConversationItemAdded,
    ConversationItemCreatedEvent,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
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
    RealtimeErrorEvent,
    RealtimeMcpApprovalRequest,
    RealtimeMcpListTools,
    RealtimeMcpToolCall,
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
    DtmfReceived,
    ErrorReported,
    EventHub,
    McpCallFinished,
    McpToolsListed,
    PlayoutStopped,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._history import History, message_text
from ._messages import (
    AudioDelta,
    BargedIn,
    CallRequested,
    CreateRefused,
    MessageDone,
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


def _server_interrupts(event: SessionUpdatedEvent) -> bool:
    """Whether server VAD cancels the active response itself on speech."""
    config = event.session
    audio = config.audio if isinstance(config, RealtimeSessionCreateRequest) else None
    if isinstance(audio, RealtimeAudioConfig) and isinstance(audio.input, RealtimeAudioConfigInput):
        detection = audio.input.turn_detection
        if isinstance(detection, (ServerVad, SemanticVad)):
            # The protocol's default for interrupt_response is true.
            return detection.interrupt_response is not False
    return False


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class Edge:
    """Translates the server's events for one session (see the module docstring)."""

    def __init__(
        self,
        state: SessionState,
        *,
        to_responses: trio.MemorySendChannel[ResponseInbox],
        to_tools: trio.MemorySendChannel[ToolInbox],
        events: EventHub,
    ) -> None:
        self._state = state
        self._to_responses = to_responses
        self._to_tools = to_tools
        self._events = events
        self._calls: dict[str, list[str]] = {}
        # Listings that failed: their item is done after the failure (with no tools),
        # and the application hears of each listing once.
        self._failed_listings: deque[str] = deque(maxlen=FAILED_LISTINGS)

    def close(self) -> None:
        """Closes its send ends: no more messages from the wire."""
        self._to_responses.close()
        self._to_tools.close()

    async def translate(self, event: ServerEvent) -> None:
        translator = _TABLE.get(type(event))
        if translator is not None:
            await translator(self, event)

    # --- configuration and responses ----------------------------------------------------

    @_translates(SessionUpdatedEvent)
    async def _session_updated(self, event: SessionUpdatedEvent) -> None:
        await post(
            self._to_responses, SessionConfigured(server_interrupts=_server_interrupts(event))
        )

    @_translates(ResponseCreatedEvent)
    async def _response_created(self, event: ResponseCreatedEvent) -> None:
        if isinstance(event.response.id, str):
            await post(self._to_responses, ResponseStarted(response_id=event.response.id))

    @_translates(ResponseTextDeltaEvent)
    async def _text_delta(self, event: ResponseTextDeltaEvent) -> None:
        await post(
            self._to_responses,
            AssistantDelta(
                response_id=event.response_id, item_id=event.item_id, delta=event.delta, kind="text"
            ),
        )

    @_translates(ResponseAudioTranscriptDeltaEvent)
    async def _transcript_delta(self, event: ResponseAudioTranscriptDeltaEvent) -> None:
        await post(
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
        audio = base64.b64decode(event.delta)
        await post(
            self._to_responses,
            AudioDelta(response_id=event.response_id, item_id=event.item_id, audio=audio),
        )

    @_translates(ResponseOutputItemDoneEvent)
    async def _output_item_done(self, event: ResponseOutputItemDoneEvent) -> None:
        item = event.item
        if isinstance(item, RealtimeConversationItemAssistantMessage):
            await post(
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
        calls = self._calls.get(response_id)
        if calls is None:
            if len(self._calls) >= OPEN_RESPONSES:
                del self._calls[next(iter(self._calls))]
            calls = self._calls[response_id] = []
        calls.append(call_id)
        await post(
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

    @_translates(ResponseDoneEvent)
    async def _response_done(self, event: ResponseDoneEvent) -> None:
        response = event.response
        response_id = _text(response.id)
        usage = response.usage if isinstance(response.usage, RealtimeResponseUsage) else None
        calls = self._calls.pop(response_id, [])
        await post(
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
        barged_in = BargedIn(audio_start_ms=event.audio_start_ms)
        await post(self._to_tools, barged_in)
        await post(self._to_responses, barged_in)
        self._events.publish(
            UserSpeechStarted(item_id=event.item_id, audio_start_ms=event.audio_start_ms)
        )

    @_translates(InputAudioBufferSpeechStoppedEvent)
    async def _speech_stopped(self, event: InputAudioBufferSpeechStoppedEvent) -> None:
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

    # --- items -----------------------------------------------------------------------------

    @_translates(ConversationItemAdded, ConversationItemCreatedEvent)
    async def _item_added(
        self, event: ConversationItemAdded | ConversationItemCreatedEvent
    ) -> None:
        item: ConversationItem = event.item
        if isinstance(item, RealtimeConversationItemFunctionCallOutput):
            await post(self._to_tools, OutputAccepted(call_id=item.call_id))

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
            await post(
                self._to_responses,
                CreateRefused(event_id=event_id, code=code, message=error.message),
            )
        elif (event_id is not None and event_id.startswith(TOOL_EVENT_PREFIXES)) or (
            # A server that cannot read a frame that large cannot name its event
            # either (the local engine does not); the tools match it to an output.
            event_id is None and code == "message_too_large"
        ):
            await post(
                self._to_tools, OutputRefused(event_id=event_id, code=code, message=error.message)
            )
