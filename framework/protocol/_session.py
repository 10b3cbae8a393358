"""Session configuration: audio formats, turn detection, transcription, tools.

These are the shapes of ``session.update``, ``session.created`` and
``session.updated`` (and, through the tools and formats, of
``response.create``). Realtime sessions (``type: "realtime"``) and
transcription sessions (``type: "transcription"``) share their audio parts.

Enum-like strings are typed ``Literal[...] | str``: the literals document the
values known today, and a value the server adds tomorrow still parses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

from ._base import UNSET, UnknownVariant, Unset, WireObject

NoiseReductionType: TypeAlias = Literal["near_field", "far_field"]
"""Where the microphone is: close to the mouth, or across the room."""

RealtimeReasoningEffort: TypeAlias = Literal["minimal", "low", "medium", "high", "xhigh"]
"""How hard a reasoning model thinks before it answers."""

ToolChoiceOptions: TypeAlias = Literal["none", "auto", "required"]
"""The string modes of ``tool_choice``."""

Modality: TypeAlias = Literal["text", "audio"]
"""An output modality of a session or a response."""

Voice: TypeAlias = Literal[
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"
]
"""The built-in voices known today."""

IncludeOption: TypeAlias = Literal["item.input_audio_transcription.logprobs"]
"""Extra data a session can ask the server to include in its events."""


# --- audio formats -----------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class AudioPCM(WireObject):
    """16-bit little-endian mono PCM; the protocol only allows a 24 kHz rate.

    A format object without a ``type`` is read as PCM, the protocol's default.
    """

    type: Literal["audio/pcm"] | Unset | None = UNSET
    rate: Literal[24000] | int | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class AudioPCMU(WireObject):
    """G.711 mu-law at 8 kHz, as telephony uses it."""

    type: Literal["audio/pcmu"] = "audio/pcmu"


@attrs.frozen(kw_only=True, repr=False)
class AudioPCMA(WireObject):
    """G.711 A-law at 8 kHz, as telephony outside North America uses it."""

    type: Literal["audio/pcma"] = "audio/pcma"


RealtimeAudioFormats: TypeAlias = AudioPCM | AudioPCMU | AudioPCMA | UnknownVariant
"""An audio format object, tagged on ``type``."""


# --- input processing ---------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class NoiseReduction(WireObject):
    """Noise suppression applied to input audio before VAD and the model."""

    type: NoiseReductionType | str | Unset | None = UNSET
    strength: float | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class AudioTranscription(WireObject):
    """How (and whether) input audio is transcribed alongside the model."""

    model: str | Unset | None = UNSET
    language: str | Unset | None = UNSET
    languages: Sequence[str] | Unset | None = UNSET
    prompt: str | Unset | None = UNSET
    keywords: Sequence[str] | Unset | None = UNSET
    delay: RealtimeReasoningEffort | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ServerVad(WireObject):
    """Energy-based turn detection: speech starts above a threshold, ends after silence."""

    type: Literal["server_vad"] = "server_vad"
    threshold: float | Unset | None = UNSET
    prefix_padding_ms: int | Unset | None = UNSET
    silence_duration_ms: int | Unset | None = UNSET
    idle_timeout_ms: int | Unset | None = UNSET
    create_response: bool | Unset | None = UNSET
    interrupt_response: bool | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class SemanticVad(WireObject):
    """Model-based turn detection; ``eagerness`` sets how soon a turn is taken as over."""

    type: Literal["semantic_vad"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] | str | Unset | None = UNSET
    create_response: bool | Unset | None = UNSET
    interrupt_response: bool | Unset | None = UNSET


RealtimeAudioInputTurnDetection: TypeAlias = ServerVad | SemanticVad | UnknownVariant | None
"""Turn detection of a realtime session; ``None`` means manual turns."""

RealtimeTranscriptionSessionAudioInputTurnDetection: TypeAlias = (
    ServerVad | SemanticVad | UnknownVariant | None
)
"""Turn detection of a transcription session; ``None`` means manual commits."""


@attrs.frozen(kw_only=True, repr=False)
class RealtimeAudioConfigInput(WireObject):
    """Input side of a realtime session: format, noise reduction, transcription, VAD."""

    format: RealtimeAudioFormats | Unset | None = UNSET
    noise_reduction: NoiseReduction | Unset | None = UNSET
    transcription: AudioTranscription | Unset | None = UNSET
    turn_detection: RealtimeAudioInputTurnDetection | Unset = UNSET


@attrs.frozen(kw_only=True, repr=False)
class VoiceID(WireObject):
    """A custom voice, referenced by its id."""

    id: str


@attrs.frozen(kw_only=True, repr=False)
class RealtimeAudioConfigOutput(WireObject):
    """Output side of a realtime session: format, voice and speaking speed."""

    format: RealtimeAudioFormats | Unset | None = UNSET
    voice: Voice | str | VoiceID | Unset | None = UNSET
    speed: float | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeAudioConfig(WireObject):
    """The audio configuration of a realtime session."""

    input: RealtimeAudioConfigInput | Unset | None = UNSET
    output: RealtimeAudioConfigOutput | Unset | None = UNSET


# --- tools ---------------------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class RealtimeFunctionTool(WireObject):
    """A function the model may call; the client runs it and returns the output."""

    type: Literal["function"] | Unset | None = UNSET
    name: str | Unset | None = UNSET
    description: str | Unset | None = UNSET
    parameters: Any | Unset = UNSET


@attrs.frozen(kw_only=True, repr=False)
class McpToolFilter(WireObject):
    """Selects MCP tools by name and/or by their read-only annotation."""

    read_only: bool | Unset | None = UNSET
    tool_names: Sequence[str] | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class McpToolApprovalFilter(WireObject):
    """Which MCP tools always need approval and which never do."""

    always: McpToolFilter | Unset | None = UNSET
    never: McpToolFilter | Unset | None = UNSET


McpConnectorId: TypeAlias = Literal[
    "connector_dropbox",
    "connector_gmail",
    "connector_googlecalendar",
    "connector_googledrive",
    "connector_microsoftteams",
    "connector_outlookcalendar",
    "connector_outlookemail",
    "connector_sharepoint",
]
"""The hosted service connectors known today."""


@attrs.frozen(kw_only=True, repr=False)
class McpTool(WireObject):
    """A remote MCP server whose tools the Realtime server itself calls (hosted MCP).

    One of ``server_url``, ``connector_id`` or ``tunnel_id`` names the server.
    The same shape is used in ``session.tools`` and in ``response.create``.
    """

    type: Literal["mcp"] = "mcp"
    server_label: str
    server_url: str | Unset | None = UNSET
    connector_id: McpConnectorId | str | Unset | None = UNSET
    tunnel_id: str | Unset | None = UNSET
    server_description: str | Unset | None = UNSET
    authorization: str | Unset | None = UNSET
    headers: Mapping[str, str] | Unset | None = UNSET
    allowed_tools: Sequence[str] | McpToolFilter | Unset | None = UNSET
    require_approval: McpToolApprovalFilter | Literal["always", "never"] | str | Unset | None = (
        UNSET
    )
    allowed_callers: Sequence[Literal["direct", "programmatic"] | str] | Unset | None = UNSET
    defer_loading: bool | Unset | None = UNSET


RealtimeResponseCreateMcpTool = McpTool
"""The MCP tool of ``response.create``; the same shape as a session's MCP tool."""

RealtimeToolsConfigUnion: TypeAlias = RealtimeFunctionTool | McpTool | UnknownVariant
"""One tool of a session or response, tagged on ``type``."""

RealtimeToolsConfig: TypeAlias = Sequence[RealtimeToolsConfigUnion]
"""The tools of a session."""


@attrs.frozen(kw_only=True, repr=False)
class ToolChoiceFunction(WireObject):
    """Forces the model to call the named function."""

    type: Literal["function"] = "function"
    name: str


@attrs.frozen(kw_only=True, repr=False)
class ToolChoiceMcp(WireObject):
    """Forces the model to call a tool (or any tool) of the labelled MCP server."""

    type: Literal["mcp"] = "mcp"
    server_label: str
    name: str | Unset | None = UNSET


RealtimeToolChoiceConfig: TypeAlias = (
    ToolChoiceOptions | str | ToolChoiceFunction | ToolChoiceMcp | UnknownVariant
)
"""How the model chooses tools: a mode string or a forced tool."""


# --- tracing, truncation, reasoning, prompt -------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class TracingConfiguration(WireObject):
    """Names and metadata for the traces of a session."""

    workflow_name: str | Unset | None = UNSET
    group_id: str | Unset | None = UNSET
    metadata: Any | Unset = UNSET


RealtimeTracingConfig: TypeAlias = Literal["auto"] | str | TracingConfiguration | None
"""Tracing of a session: ``"auto"``, a configuration, or ``None`` for off."""


@attrs.frozen(kw_only=True, repr=False)
class TokenLimits(WireObject):
    """A custom token budget for the conversation after the instructions."""

    post_instructions: int | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeTruncationRetentionRatio(WireObject):
    """Truncation that keeps a fraction of the context, to truncate less often."""

    type: Literal["retention_ratio"] = "retention_ratio"
    retention_ratio: float
    token_limits: TokenLimits | Unset | None = UNSET


RealtimeTruncation: TypeAlias = (
    Literal["auto", "disabled"] | str | RealtimeTruncationRetentionRatio | UnknownVariant
)
"""What happens when the conversation outgrows the context window."""


@attrs.frozen(kw_only=True, repr=False)
class RealtimeReasoning(WireObject):
    """Reasoning settings of reasoning-capable realtime models."""

    effort: RealtimeReasoningEffort | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponsePrompt(WireObject):
    """A stored prompt template and the values of its variables.

    Variable values are strings or Responses-API input objects; the latter are
    kept as plain JSON objects.
    """

    id: str
    variables: Mapping[str, str | Mapping[str, Any]] | Unset | None = UNSET
    version: str | Unset | None = UNSET


# --- sessions -----------------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class RealtimeSessionCreateRequest(WireObject):
    """The configuration of a realtime (speech-to-speech or text) session.

    As ``session.update`` content it is partial: only the fields that are set
    change. ``session.created``/``session.updated`` carry the full effective
    configuration (servers also add ``id``, ``object`` and ``expires_at``,
    kept in ``extra``).
    """

    type: Literal["realtime"] = "realtime"
    model: str | Unset | None = UNSET
    instructions: str | Unset | None = UNSET
    output_modalities: Sequence[Modality | str] | Unset | None = UNSET
    audio: RealtimeAudioConfig | Unset | None = UNSET
    include: Sequence[IncludeOption | str] | Unset | None = UNSET
    max_output_tokens: int | Literal["inf"] | Unset | None = UNSET
    tools: RealtimeToolsConfig | Unset | None = UNSET
    tool_choice: RealtimeToolChoiceConfig | Unset | None = UNSET
    parallel_tool_calls: bool | Unset | None = UNSET
    tracing: RealtimeTracingConfig | Unset = UNSET
    truncation: RealtimeTruncation | Unset | None = UNSET
    prompt: ResponsePrompt | Unset | None = UNSET
    reasoning: RealtimeReasoning | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeTranscriptionSessionAudioInput(WireObject):
    """Input side of a transcription session."""

    format: RealtimeAudioFormats | Unset | None = UNSET
    noise_reduction: NoiseReduction | Unset | None = UNSET
    transcription: AudioTranscription | Unset | None = UNSET
    turn_detection: RealtimeTranscriptionSessionAudioInputTurnDetection | Unset = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeTranscriptionSessionAudio(WireObject):
    """The audio configuration of a transcription session (input only)."""

    input: RealtimeTranscriptionSessionAudioInput | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeTranscriptionSessionCreateRequest(WireObject):
    """The configuration of a transcription-only session: audio in, transcripts out."""

    type: Literal["transcription"] = "transcription"
    audio: RealtimeTranscriptionSessionAudio | Unset | None = UNSET
    include: Sequence[IncludeOption | str] | Unset | None = UNSET


SessionConfig: TypeAlias = (
    RealtimeSessionCreateRequest | RealtimeTranscriptionSessionCreateRequest | UnknownVariant
)
"""Either kind of session configuration, tagged on ``type``."""


@attrs.frozen(kw_only=True, repr=False)
class RealtimeTranscriptionSessionTurnDetection(WireObject):
    """Turn detection as a transcription session's server object reports it."""

    type: str | Unset | None = UNSET
    threshold: float | Unset | None = UNSET
    prefix_padding_ms: int | Unset | None = UNSET
    silence_duration_ms: int | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionSessionResponseAudioInput(WireObject):
    """Input audio settings in a transcription session's server object."""

    format: RealtimeAudioFormats | Unset | None = UNSET
    noise_reduction: NoiseReduction | Unset | None = UNSET
    transcription: AudioTranscription | Unset | None = UNSET
    turn_detection: RealtimeTranscriptionSessionTurnDetection | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionSessionResponseAudio(WireObject):
    """Audio settings in a transcription session's server object."""

    input: TranscriptionSessionResponseAudioInput | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeTranscriptionSessionCreateResponse(WireObject):
    """A transcription session as the server describes it (with its id and expiry)."""

    type: Literal["transcription"] = "transcription"
    id: str
    object: str
    audio: TranscriptionSessionResponseAudio | Unset | None = UNSET
    expires_at: int | Unset | None = UNSET
    include: Sequence[IncludeOption | str] | Unset | None = UNSET
