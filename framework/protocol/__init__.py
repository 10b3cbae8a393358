"""The Realtime API wire protocol: every event, item and config type.

Types are attrs classes (frozen, keyword-only) named as in the official SDK;
their ``type`` fields carry the GA wire strings. One cattrs converter turns
them into JSON and back:

* :func:`parse_server_event` / :func:`parse_client_event` read a frame;
* :func:`to_dict` / :func:`to_json` write one, omitting fields never set and
  keeping an explicit ``None`` as ``null``.

Unknown event types, item types and fields are kept, never dropped; what a
user builds wrongly fails at serialization with the path of the bad value.
"""

# Everything lives in private modules and is re-exported here, so that the
# public surface is this one namespace.
from ._base import (
    EMPTY as EMPTY,
)
from ._base import (
    UNSET as UNSET,
)
from ._base import (
    ProtocolError as ProtocolError,
)
from ._base import (
    UnknownClientEvent as UnknownClientEvent,
)
from ._base import (
    UnknownItem as UnknownItem,
)
from ._base import (
    UnknownServerEvent as UnknownServerEvent,
)
from ._base import (
    UnknownVariant as UnknownVariant,
)
from ._base import (
    Unset as Unset,
)
from ._base import (
    ValidationError as ValidationError,
)
from ._base import (
    WireObject as WireObject,
)
from ._client_events import (
    ClientEvent as ClientEvent,
)
from ._client_events import (
    ConversationItemCreateEvent as ConversationItemCreateEvent,
)
from ._client_events import (
    ConversationItemDeleteEvent as ConversationItemDeleteEvent,
)
from ._client_events import (
    ConversationItemRetrieveEvent as ConversationItemRetrieveEvent,
)
from ._client_events import (
    ConversationItemTruncateEvent as ConversationItemTruncateEvent,
)
from ._client_events import (
    InputAudioBufferAppendEvent as InputAudioBufferAppendEvent,
)
from ._client_events import (
    InputAudioBufferClearEvent as InputAudioBufferClearEvent,
)
from ._client_events import (
    InputAudioBufferCommitEvent as InputAudioBufferCommitEvent,
)
from ._client_events import (
    OutputAudioBufferClearEvent as OutputAudioBufferClearEvent,
)
from ._client_events import (
    RealtimeClientEvent as RealtimeClientEvent,
)
from ._client_events import (
    ResponseCancelEvent as ResponseCancelEvent,
)
from ._client_events import (
    ResponseCreateEvent as ResponseCreateEvent,
)
from ._client_events import (
    SessionUpdateEvent as SessionUpdateEvent,
)
from ._codec import (
    CLIENT_EVENT_TYPES as CLIENT_EVENT_TYPES,
)
from ._codec import (
    MAX_DEPTH as MAX_DEPTH,
)
from ._codec import (
    SERVER_EVENT_TYPES as SERVER_EVENT_TYPES,
)
from ._codec import (
    converter as converter,
)
from ._codec import (
    from_dict as from_dict,
)
from ._codec import (
    make_converter as make_converter,
)
from ._codec import (
    parse_client_event as parse_client_event,
)
from ._codec import (
    parse_server_event as parse_server_event,
)
from ._codec import (
    to_dict as to_dict,
)
from ._codec import (
    to_json as to_json,
)
from ._items import (
    AssistantMessageContent as AssistantMessageContent,
)
from ._items import (
    ConversationItem as ConversationItem,
)
from ._items import (
    ItemStatus as ItemStatus,
)
from ._items import (
    LogProbProperties as LogProbProperties,
)
from ._items import (
    McpCallError as McpCallError,
)
from ._items import (
    McpListedTool as McpListedTool,
)
from ._items import (
    RealtimeConversationItemAssistantMessage as RealtimeConversationItemAssistantMessage,
)
from ._items import (
    RealtimeConversationItemFunctionCall as RealtimeConversationItemFunctionCall,
)
from ._items import (
    RealtimeConversationItemFunctionCallOutput as RealtimeConversationItemFunctionCallOutput,
)
from ._items import (
    RealtimeConversationItemSystemMessage as RealtimeConversationItemSystemMessage,
)
from ._items import (
    RealtimeConversationItemUserMessage as RealtimeConversationItemUserMessage,
)
from ._items import (
    RealtimeMcpApprovalRequest as RealtimeMcpApprovalRequest,
)
from ._items import (
    RealtimeMcpApprovalResponse as RealtimeMcpApprovalResponse,
)
from ._items import (
    RealtimeMcphttpError as RealtimeMcphttpError,
)
from ._items import (
    RealtimeMcpListTools as RealtimeMcpListTools,
)
from ._items import (
    RealtimeMcpProtocolError as RealtimeMcpProtocolError,
)
from ._items import (
    RealtimeMcpToolCall as RealtimeMcpToolCall,
)
from ._items import (
    RealtimeMcpToolExecutionError as RealtimeMcpToolExecutionError,
)
from ._items import (
    ResponseInputItem as ResponseInputItem,
)
from ._items import (
    ResponseItemReference as ResponseItemReference,
)
from ._items import (
    SystemMessageContent as SystemMessageContent,
)
from ._items import (
    TranscriptionLanguage as TranscriptionLanguage,
)
from ._items import (
    UserMessageContent as UserMessageContent,
)
from ._legacy import (
    ConversationItemWithReference as ConversationItemWithReference,
)
from ._legacy import (
    LegacyAudioFormat as LegacyAudioFormat,
)
from ._legacy import (
    LegacyItemContent as LegacyItemContent,
)
from ._legacy import (
    LegacyTranscriptionSession as LegacyTranscriptionSession,
)
from ._legacy import (
    LegacyTurnDetection as LegacyTurnDetection,
)
from ._legacy import (
    RealtimeSession as RealtimeSession,
)
from ._legacy import (
    TranscriptionSessionUpdate as TranscriptionSessionUpdate,
)
from ._legacy import (
    TranscriptionSessionUpdatedEvent as TranscriptionSessionUpdatedEvent,
)
from ._response import (
    CachedTokensDetails as CachedTokensDetails,
)
from ._response import (
    RealtimeResponse as RealtimeResponse,
)
from ._response import (
    RealtimeResponseCreateAudioOutput as RealtimeResponseCreateAudioOutput,
)
from ._response import (
    RealtimeResponseCreateParams as RealtimeResponseCreateParams,
)
from ._response import (
    RealtimeResponseStatus as RealtimeResponseStatus,
)
from ._response import (
    RealtimeResponseUsage as RealtimeResponseUsage,
)
from ._response import (
    RealtimeResponseUsageInputTokenDetails as RealtimeResponseUsageInputTokenDetails,
)
from ._response import (
    RealtimeResponseUsageOutputTokenDetails as RealtimeResponseUsageOutputTokenDetails,
)
from ._response import (
    ResponseAudio as ResponseAudio,
)
from ._response import (
    ResponseAudioOutput as ResponseAudioOutput,
)
from ._response import (
    ResponseAudioOutputParams as ResponseAudioOutputParams,
)
from ._response import (
    ResponseStatus as ResponseStatus,
)
from ._response import (
    ResponseStatusError as ResponseStatusError,
)
from ._response import (
    ResponseStatusReason as ResponseStatusReason,
)
from ._server_events import (
    ContentPart as ContentPart,
)
from ._server_events import (
    Conversation as Conversation,
)
from ._server_events import (
    ConversationCreatedEvent as ConversationCreatedEvent,
)
from ._server_events import (
    ConversationItemAdded as ConversationItemAdded,
)
from ._server_events import (
    ConversationItemCreatedEvent as ConversationItemCreatedEvent,
)
from ._server_events import (
    ConversationItemDeletedEvent as ConversationItemDeletedEvent,
)
from ._server_events import (
    ConversationItemDone as ConversationItemDone,
)
from ._server_events import (
    ConversationItemInputAudioTranscriptionCompletedEvent as ConversationItemInputAudioTranscriptionCompletedEvent,
)
from ._server_events import (
    ConversationItemInputAudioTranscriptionDeltaEvent as ConversationItemInputAudioTranscriptionDeltaEvent,
)
from ._server_events import (
    ConversationItemInputAudioTranscriptionFailedEvent as ConversationItemInputAudioTranscriptionFailedEvent,
)
from ._server_events import (
    ConversationItemInputAudioTranscriptionSegment as ConversationItemInputAudioTranscriptionSegment,
)
from ._server_events import (
    ConversationItemRetrieved as ConversationItemRetrieved,
)
from ._server_events import (
    ConversationItemTruncatedEvent as ConversationItemTruncatedEvent,
)
from ._server_events import (
    InputAudioBufferClearedEvent as InputAudioBufferClearedEvent,
)
from ._server_events import (
    InputAudioBufferCommittedEvent as InputAudioBufferCommittedEvent,
)
from ._server_events import (
    InputAudioBufferDtmfEventReceivedEvent as InputAudioBufferDtmfEventReceivedEvent,
)
from ._server_events import (
    InputAudioBufferSpeechStartedEvent as InputAudioBufferSpeechStartedEvent,
)
from ._server_events import (
    InputAudioBufferSpeechStoppedEvent as InputAudioBufferSpeechStoppedEvent,
)
from ._server_events import (
    InputAudioBufferTimeoutTriggered as InputAudioBufferTimeoutTriggered,
)
from ._server_events import (
    McpListToolsCompleted as McpListToolsCompleted,
)
from ._server_events import (
    McpListToolsFailed as McpListToolsFailed,
)
from ._server_events import (
    McpListToolsInProgress as McpListToolsInProgress,
)
from ._server_events import (
    OutputAudioBufferCleared as OutputAudioBufferCleared,
)
from ._server_events import (
    OutputAudioBufferStarted as OutputAudioBufferStarted,
)
from ._server_events import (
    OutputAudioBufferStopped as OutputAudioBufferStopped,
)
from ._server_events import (
    RateLimit as RateLimit,
)
from ._server_events import (
    RateLimitsUpdatedEvent as RateLimitsUpdatedEvent,
)
from ._server_events import (
    RealtimeError as RealtimeError,
)
from ._server_events import (
    RealtimeErrorEvent as RealtimeErrorEvent,
)
from ._server_events import (
    RealtimeServerEvent as RealtimeServerEvent,
)
from ._server_events import (
    ResponseAudioDeltaEvent as ResponseAudioDeltaEvent,
)
from ._server_events import (
    ResponseAudioDoneEvent as ResponseAudioDoneEvent,
)
from ._server_events import (
    ResponseAudioTranscriptDeltaEvent as ResponseAudioTranscriptDeltaEvent,
)
from ._server_events import (
    ResponseAudioTranscriptDoneEvent as ResponseAudioTranscriptDoneEvent,
)
from ._server_events import (
    ResponseContentPartAddedEvent as ResponseContentPartAddedEvent,
)
from ._server_events import (
    ResponseContentPartDoneEvent as ResponseContentPartDoneEvent,
)
from ._server_events import (
    ResponseCreatedEvent as ResponseCreatedEvent,
)
from ._server_events import (
    ResponseDoneEvent as ResponseDoneEvent,
)
from ._server_events import (
    ResponseFunctionCallArgumentsDeltaEvent as ResponseFunctionCallArgumentsDeltaEvent,
)
from ._server_events import (
    ResponseFunctionCallArgumentsDoneEvent as ResponseFunctionCallArgumentsDoneEvent,
)
from ._server_events import (
    ResponseMcpCallArgumentsDelta as ResponseMcpCallArgumentsDelta,
)
from ._server_events import (
    ResponseMcpCallArgumentsDone as ResponseMcpCallArgumentsDone,
)
from ._server_events import (
    ResponseMcpCallCompleted as ResponseMcpCallCompleted,
)
from ._server_events import (
    ResponseMcpCallFailed as ResponseMcpCallFailed,
)
from ._server_events import (
    ResponseMcpCallInProgress as ResponseMcpCallInProgress,
)
from ._server_events import (
    ResponseOutputItemAddedEvent as ResponseOutputItemAddedEvent,
)
from ._server_events import (
    ResponseOutputItemDoneEvent as ResponseOutputItemDoneEvent,
)
from ._server_events import (
    ResponseTextDeltaEvent as ResponseTextDeltaEvent,
)
from ._server_events import (
    ResponseTextDoneEvent as ResponseTextDoneEvent,
)
from ._server_events import (
    ServerEvent as ServerEvent,
)
from ._server_events import (
    SessionCreatedEvent as SessionCreatedEvent,
)
from ._server_events import (
    SessionUpdatedEvent as SessionUpdatedEvent,
)
from ._server_events import (
    TranscriptionDurationUsage as TranscriptionDurationUsage,
)
from ._server_events import (
    TranscriptionError as TranscriptionError,
)
from ._server_events import (
    TranscriptionInputTokenDetails as TranscriptionInputTokenDetails,
)
from ._server_events import (
    TranscriptionTokenUsage as TranscriptionTokenUsage,
)
from ._server_events import (
    TranscriptionUsage as TranscriptionUsage,
)
from ._session import (
    AudioPCM as AudioPCM,
)
from ._session import (
    AudioPCMA as AudioPCMA,
)
from ._session import (
    AudioPCMU as AudioPCMU,
)
from ._session import (
    AudioTranscription as AudioTranscription,
)
from ._session import (
    IncludeOption as IncludeOption,
)
from ._session import (
    McpConnectorId as McpConnectorId,
)
from ._session import (
    McpTool as McpTool,
)
from ._session import (
    McpToolApprovalFilter as McpToolApprovalFilter,
)
from ._session import (
    McpToolFilter as McpToolFilter,
)
from ._session import (
    Modality as Modality,
)
from ._session import (
    NoiseReduction as NoiseReduction,
)
from ._session import (
    NoiseReductionType as NoiseReductionType,
)
from ._session import (
    RealtimeAudioConfig as RealtimeAudioConfig,
)
from ._session import (
    RealtimeAudioConfigInput as RealtimeAudioConfigInput,
)
from ._session import (
    RealtimeAudioConfigOutput as RealtimeAudioConfigOutput,
)
from ._session import (
    RealtimeAudioFormats as RealtimeAudioFormats,
)
from ._session import (
    RealtimeAudioInputTurnDetection as RealtimeAudioInputTurnDetection,
)
from ._session import (
    RealtimeFunctionTool as RealtimeFunctionTool,
)
from ._session import (
    RealtimeReasoning as RealtimeReasoning,
)
from ._session import (
    RealtimeReasoningEffort as RealtimeReasoningEffort,
)
from ._session import (
    RealtimeResponseCreateMcpTool as RealtimeResponseCreateMcpTool,
)
from ._session import (
    RealtimeSessionCreateRequest as RealtimeSessionCreateRequest,
)
from ._session import (
    RealtimeToolChoiceConfig as RealtimeToolChoiceConfig,
)
from ._session import (
    RealtimeToolsConfig as RealtimeToolsConfig,
)
from ._session import (
    RealtimeToolsConfigUnion as RealtimeToolsConfigUnion,
)
from ._session import (
    RealtimeTracingConfig as RealtimeTracingConfig,
)
from ._session import (
    RealtimeTranscriptionSessionAudio as RealtimeTranscriptionSessionAudio,
)
from ._session import (
    RealtimeTranscriptionSessionAudioInput as RealtimeTranscriptionSessionAudioInput,
)
from ._session import (
    RealtimeTranscriptionSessionAudioInputTurnDetection as RealtimeTranscriptionSessionAudioInputTurnDetection,
)
from ._session import (
    RealtimeTranscriptionSessionCreateRequest as RealtimeTranscriptionSessionCreateRequest,
)
from ._session import (
    RealtimeTranscriptionSessionCreateResponse as RealtimeTranscriptionSessionCreateResponse,
)
from ._session import (
    RealtimeTranscriptionSessionTurnDetection as RealtimeTranscriptionSessionTurnDetection,
)
from ._session import (
    RealtimeTruncation as RealtimeTruncation,
)
from ._session import (
    RealtimeTruncationRetentionRatio as RealtimeTruncationRetentionRatio,
)
from ._session import (
    ResponsePrompt as ResponsePrompt,
)
from ._session import (
    SemanticVad as SemanticVad,
)
from ._session import (
    ServerVad as ServerVad,
)
from ._session import (
    SessionConfig as SessionConfig,
)
from ._session import (
    TokenLimits as TokenLimits,
)
from ._session import (
    ToolChoiceFunction as ToolChoiceFunction,
)
from ._session import (
    ToolChoiceMcp as ToolChoiceMcp,
)
from ._session import (
    ToolChoiceOptions as ToolChoiceOptions,
)
from ._session import (
    TracingConfiguration as TracingConfiguration,
)
from ._session import (
    TranscriptionSessionResponseAudio as TranscriptionSessionResponseAudio,
)
from ._session import (
    TranscriptionSessionResponseAudioInput as TranscriptionSessionResponseAudioInput,
)
from ._session import (
    Voice as Voice,
)
from ._session import (
    VoiceID as VoiceID,
)
