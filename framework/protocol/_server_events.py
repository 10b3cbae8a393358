"""Server events: everything a Realtime server sends to a client.

Each class keeps the official SDK's class name (some are beta-era names, e.g.
``ResponseTextDeltaEvent``) while its ``type`` is the GA wire string
(``response.output_text.delta``). Every server event carries a server-chosen
``event_id``, except the SIP-only DTMF event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

import attrs

from ._base import UNSET, UnknownServerEvent, UnknownVariant, Unset, WireObject
from ._items import ConversationItem, LogProbProperties, TranscriptionLanguage
from ._legacy import TranscriptionSessionUpdatedEvent
from ._response import RealtimeResponse
from ._session import SessionConfig

# --- payload parts ---------------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class Conversation(WireObject):
    """The default conversation of a session (legacy ``conversation.created``)."""

    id: str | Unset | None = UNSET
    object: Literal["realtime.conversation"] | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ContentPart(WireObject):
    """A content part in ``response.content_part.added``/``done``.

    Its ``type`` is ``text`` or ``audio`` here, not the ``output_*`` names the
    item content uses.
    """

    type: Literal["text", "audio"] | str | Unset | None = UNSET
    text: str | Unset | None = UNSET
    audio: str | Unset | None = UNSET
    transcript: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionError(WireObject):
    """Why transcribing a user audio item failed."""

    type: str | Unset | None = UNSET
    code: str | Unset | None = UNSET
    message: str | Unset | None = UNSET
    param: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionInputTokenDetails(WireObject):
    """Input tokens of a transcription, by kind."""

    text_tokens: int | Unset | None = UNSET
    audio_tokens: int | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionTokenUsage(WireObject):
    """Usage of a transcription model billed by tokens."""

    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: TranscriptionInputTokenDetails | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionDurationUsage(WireObject):
    """Usage of a transcription model billed by audio duration."""

    type: Literal["duration"] = "duration"
    seconds: float


TranscriptionUsage: TypeAlias = (
    TranscriptionTokenUsage | TranscriptionDurationUsage | UnknownVariant
)
"""Usage of a transcription, tagged on ``type``."""


@attrs.frozen(kw_only=True, repr=False)
class RateLimit(WireObject):
    """One rate limit: its ceiling, what remains, and when it resets."""

    name: Literal["requests", "tokens"] | str | Unset | None = UNSET
    limit: int | Unset | None = UNSET
    remaining: int | Unset | None = UNSET
    reset_seconds: float | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeError(WireObject):
    """The body of an ``error`` event; ``event_id`` names the client event at fault."""

    type: str
    message: str
    code: str | Unset | None = UNSET
    param: str | Unset | None = UNSET
    event_id: str | Unset | None = UNSET


# --- events ----------------------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class SessionCreatedEvent(WireObject):
    """The first event of every connection: the session's effective configuration."""

    type: Literal["session.created"] = "session.created"
    event_id: str
    session: SessionConfig


@attrs.frozen(kw_only=True, repr=False)
class SessionUpdatedEvent(WireObject):
    """The full effective configuration after a ``session.update``."""

    type: Literal["session.updated"] = "session.updated"
    event_id: str
    session: SessionConfig


@attrs.frozen(kw_only=True, repr=False)
class ConversationCreatedEvent(WireObject):
    """Legacy: announced the default conversation; GA servers no longer send it."""

    type: Literal["conversation.created"] = "conversation.created"
    event_id: str
    conversation: Conversation


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemCreatedEvent(WireObject):
    """Legacy: an item was created; GA servers send ``conversation.item.added``/``done``."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    event_id: str
    item: ConversationItem
    previous_item_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemAdded(WireObject):
    """An item entered the default conversation (audio bytes omitted)."""

    type: Literal["conversation.item.added"] = "conversation.item.added"
    event_id: str
    item: ConversationItem
    previous_item_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemDone(WireObject):
    """An item of the default conversation is final (audio bytes omitted)."""

    type: Literal["conversation.item.done"] = "conversation.item.done"
    event_id: str
    item: ConversationItem
    previous_item_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemRetrieved(WireObject):
    """The server's copy of an item, audio included, answering a retrieve."""

    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    event_id: str
    item: ConversationItem


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemDeletedEvent(WireObject):
    """An item was removed from the conversation."""

    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    event_id: str
    item_id: str


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemTruncatedEvent(WireObject):
    """An assistant audio item was cut where the user stopped hearing it."""

    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    event_id: str
    item_id: str
    content_index: int
    audio_end_ms: int


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemInputAudioTranscriptionDeltaEvent(WireObject):
    """More text of a user audio item's transcript."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    event_id: str
    item_id: str
    content_index: int | Unset | None = UNSET
    delta: str | Unset | None = UNSET
    logprobs: Sequence[LogProbProperties] | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemInputAudioTranscriptionCompletedEvent(WireObject):
    """The final transcript of a user audio item, with its usage."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    event_id: str
    item_id: str
    content_index: int
    transcript: str
    usage: TranscriptionUsage
    logprobs: Sequence[LogProbProperties] | Unset | None = UNSET
    languages: Sequence[TranscriptionLanguage] | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemInputAudioTranscriptionFailedEvent(WireObject):
    """Transcribing a user audio item failed."""

    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    event_id: str
    item_id: str
    content_index: int
    error: TranscriptionError


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemInputAudioTranscriptionSegment(WireObject):
    """A transcribed segment with its speaker label (diarizing models)."""

    type: Literal["conversation.item.input_audio_transcription.segment"] = (
        "conversation.item.input_audio_transcription.segment"
    )
    event_id: str
    item_id: str
    content_index: int
    id: str
    text: str
    speaker: str
    start: float
    end: float


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferCommittedEvent(WireObject):
    """The input buffer became a user message item."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    event_id: str
    item_id: str
    previous_item_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferClearedEvent(WireObject):
    """The input buffer was emptied on request."""

    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"
    event_id: str


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferSpeechStartedEvent(WireObject):
    """Turn detection heard speech start (offset includes the prefix padding)."""

    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    event_id: str
    item_id: str
    audio_start_ms: int


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferSpeechStoppedEvent(WireObject):
    """Turn detection heard speech end (offset includes the silence)."""

    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    event_id: str
    item_id: str
    audio_end_ms: int


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferTimeoutTriggered(WireObject):
    """No speech for ``idle_timeout_ms``: the silence is committed and answered."""

    type: Literal["input_audio_buffer.timeout_triggered"] = "input_audio_buffer.timeout_triggered"
    event_id: str
    item_id: str
    audio_start_ms: int
    audio_end_ms: int


@attrs.frozen(kw_only=True, repr=False)
class OutputAudioBufferStarted(WireObject):
    """The server began playing a response's audio (WebRTC and SIP only)."""

    type: Literal["output_audio_buffer.started"] = "output_audio_buffer.started"
    event_id: str
    response_id: str


@attrs.frozen(kw_only=True, repr=False)
class OutputAudioBufferStopped(WireObject):
    """A response's audio finished playing (WebRTC and SIP only)."""

    type: Literal["output_audio_buffer.stopped"] = "output_audio_buffer.stopped"
    event_id: str
    response_id: str


@attrs.frozen(kw_only=True, repr=False)
class OutputAudioBufferCleared(WireObject):
    """A response's audio was cut off (WebRTC and SIP only)."""

    type: Literal["output_audio_buffer.cleared"] = "output_audio_buffer.cleared"
    event_id: str
    response_id: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseCreatedEvent(WireObject):
    """A response began (status ``in_progress``, no output yet)."""

    type: Literal["response.created"] = "response.created"
    event_id: str
    response: RealtimeResponse


@attrs.frozen(kw_only=True, repr=False)
class ResponseDoneEvent(WireObject):
    """A response ended, whatever its final status; output without audio bytes."""

    type: Literal["response.done"] = "response.done"
    event_id: str
    response: RealtimeResponse


@attrs.frozen(kw_only=True, repr=False)
class ResponseOutputItemAddedEvent(WireObject):
    """A response started producing an item."""

    type: Literal["response.output_item.added"] = "response.output_item.added"
    event_id: str
    response_id: str
    output_index: int
    item: ConversationItem


@attrs.frozen(kw_only=True, repr=False)
class ResponseOutputItemDoneEvent(WireObject):
    """A response finished an item (also when interrupted)."""

    type: Literal["response.output_item.done"] = "response.output_item.done"
    event_id: str
    response_id: str
    output_index: int
    item: ConversationItem


@attrs.frozen(kw_only=True, repr=False)
class ResponseContentPartAddedEvent(WireObject):
    """A content part was added to an assistant item."""

    type: Literal["response.content_part.added"] = "response.content_part.added"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart


@attrs.frozen(kw_only=True, repr=False)
class ResponseContentPartDoneEvent(WireObject):
    """A content part of an assistant item is final."""

    type: Literal["response.content_part.done"] = "response.content_part.done"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart


@attrs.frozen(kw_only=True, repr=False)
class ResponseTextDeltaEvent(WireObject):
    """More text of an ``output_text`` part."""

    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseTextDoneEvent(WireObject):
    """The full text of an ``output_text`` part."""

    type: Literal["response.output_text.done"] = "response.output_text.done"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    text: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseAudioDeltaEvent(WireObject):
    """More audio (base64, session output format) of an ``output_audio`` part."""

    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseAudioDoneEvent(WireObject):
    """An ``output_audio`` part has no more audio."""

    type: Literal["response.output_audio.done"] = "response.output_audio.done"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int


@attrs.frozen(kw_only=True, repr=False)
class ResponseAudioTranscriptDeltaEvent(WireObject):
    """More transcript of the audio being produced."""

    type: Literal["response.output_audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseAudioTranscriptDoneEvent(WireObject):
    """The full transcript of an ``output_audio`` part."""

    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    transcript: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseFunctionCallArgumentsDeltaEvent(WireObject):
    """More of a function call's JSON arguments."""

    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseFunctionCallArgumentsDoneEvent(WireObject):
    """A function call's complete arguments (``name`` is absent from older servers)."""

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    arguments: str
    name: str | Unset = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponseMcpCallArgumentsDelta(WireObject):
    """More of a hosted MCP call's JSON arguments."""

    type: Literal["response.mcp_call_arguments.delta"] = "response.mcp_call_arguments.delta"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    delta: str
    obfuscation: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponseMcpCallArgumentsDone(WireObject):
    """A hosted MCP call's complete arguments."""

    type: Literal["response.mcp_call_arguments.done"] = "response.mcp_call_arguments.done"
    event_id: str
    response_id: str
    item_id: str
    output_index: int
    arguments: str


@attrs.frozen(kw_only=True, repr=False)
class ResponseMcpCallInProgress(WireObject):
    """The server started a hosted MCP call."""

    type: Literal["response.mcp_call.in_progress"] = "response.mcp_call.in_progress"
    event_id: str
    item_id: str
    output_index: int


@attrs.frozen(kw_only=True, repr=False)
class ResponseMcpCallCompleted(WireObject):
    """A hosted MCP call succeeded."""

    type: Literal["response.mcp_call.completed"] = "response.mcp_call.completed"
    event_id: str
    item_id: str
    output_index: int


@attrs.frozen(kw_only=True, repr=False)
class ResponseMcpCallFailed(WireObject):
    """A hosted MCP call failed; the item's ``error`` says why."""

    type: Literal["response.mcp_call.failed"] = "response.mcp_call.failed"
    event_id: str
    item_id: str
    output_index: int


@attrs.frozen(kw_only=True, repr=False)
class McpListToolsInProgress(WireObject):
    """The server is listing a hosted MCP server's tools."""

    type: Literal["mcp_list_tools.in_progress"] = "mcp_list_tools.in_progress"
    event_id: str
    item_id: str


@attrs.frozen(kw_only=True, repr=False)
class McpListToolsCompleted(WireObject):
    """The server listed a hosted MCP server's tools."""

    type: Literal["mcp_list_tools.completed"] = "mcp_list_tools.completed"
    event_id: str
    item_id: str


@attrs.frozen(kw_only=True, repr=False)
class McpListToolsFailed(WireObject):
    """Listing a hosted MCP server's tools failed."""

    type: Literal["mcp_list_tools.failed"] = "mcp_list_tools.failed"
    event_id: str
    item_id: str


@attrs.frozen(kw_only=True, repr=False)
class RateLimitsUpdatedEvent(WireObject):
    """Rate limits at the start of a response (output tokens reserved)."""

    type: Literal["rate_limits.updated"] = "rate_limits.updated"
    event_id: str
    rate_limits: Sequence[RateLimit]


@attrs.frozen(kw_only=True, repr=False)
class RealtimeErrorEvent(WireObject):
    """Something went wrong; most errors leave the session open."""

    type: Literal["error"] = "error"
    event_id: str
    error: RealtimeError


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferDtmfEventReceivedEvent(WireObject):
    """A telephone keypad press on a SIP call; this event has no ``event_id``."""

    type: Literal["input_audio_buffer.dtmf_event_received"] = (
        "input_audio_buffer.dtmf_event_received"
    )
    event: str
    received_at: int


RealtimeServerEvent: TypeAlias = (
    SessionCreatedEvent
    | SessionUpdatedEvent
    | ConversationCreatedEvent
    | ConversationItemCreatedEvent
    | ConversationItemAdded
    | ConversationItemDone
    | ConversationItemRetrieved
    | ConversationItemDeletedEvent
    | ConversationItemTruncatedEvent
    | ConversationItemInputAudioTranscriptionDeltaEvent
    | ConversationItemInputAudioTranscriptionCompletedEvent
    | ConversationItemInputAudioTranscriptionFailedEvent
    | ConversationItemInputAudioTranscriptionSegment
    | InputAudioBufferCommittedEvent
    | InputAudioBufferClearedEvent
    | InputAudioBufferSpeechStartedEvent
    | InputAudioBufferSpeechStoppedEvent
    | InputAudioBufferTimeoutTriggered
    | OutputAudioBufferStarted
    | OutputAudioBufferStopped
    | OutputAudioBufferCleared
    | ResponseCreatedEvent
    | ResponseDoneEvent
    | ResponseOutputItemAddedEvent
    | ResponseOutputItemDoneEvent
    | ResponseContentPartAddedEvent
    | ResponseContentPartDoneEvent
    | ResponseTextDeltaEvent
    | ResponseTextDoneEvent
    | ResponseAudioDeltaEvent
    | ResponseAudioDoneEvent
    | ResponseAudioTranscriptDeltaEvent
    | ResponseAudioTranscriptDoneEvent
    | ResponseFunctionCallArgumentsDeltaEvent
    | ResponseFunctionCallArgumentsDoneEvent
    | ResponseMcpCallArgumentsDelta
    | ResponseMcpCallArgumentsDone
    | ResponseMcpCallInProgress
    | ResponseMcpCallCompleted
    | ResponseMcpCallFailed
    | McpListToolsInProgress
    | McpListToolsCompleted
    | McpListToolsFailed
    | RateLimitsUpdatedEvent
    | RealtimeErrorEvent
    | InputAudioBufferDtmfEventReceivedEvent
)
"""The server events of the GA protocol, tagged on ``type``."""

ServerEvent: TypeAlias = RealtimeServerEvent | TranscriptionSessionUpdatedEvent | UnknownServerEvent
"""What ``parse_server_event`` returns: a GA event, the legacy transcription
update, or an unknown event kept whole."""
