"""Responses: the resource in ``response.created``/``response.done``, its status
and usage, and the parameters of ``response.create``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

import attrs

from ._base import UNSET, Unset, WireObject
from ._items import ConversationItem, ResponseInputItem
from ._session import (
    Modality,
    RealtimeAudioFormats,
    RealtimeReasoning,
    RealtimeToolChoiceConfig,
    RealtimeToolsConfigUnion,
    ResponsePrompt,
    Voice,
    VoiceID,
)

ResponseStatus: TypeAlias = Literal["completed", "cancelled", "failed", "incomplete", "in_progress"]
"""The lifecycle state of a response."""

ResponseStatusReason: TypeAlias = Literal[
    "turn_detected", "client_cancelled", "max_output_tokens", "content_filter"
]
"""Why a response was cancelled or left incomplete."""


@attrs.frozen(kw_only=True, repr=False)
class ResponseAudioOutput(WireObject):
    """The output format and voice a response used."""

    format: RealtimeAudioFormats | Unset | None = UNSET
    voice: Voice | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponseAudio(WireObject):
    """Audio settings of a response."""

    output: ResponseAudioOutput | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponseStatusError(WireObject):
    """What made a response fail."""

    type: str | Unset | None = UNSET
    code: str | Unset | None = UNSET
    message: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeResponseStatus(WireObject):
    """Details of a final status: the cancel/incomplete reason, or the failure."""

    type: Literal["completed", "cancelled", "incomplete", "failed"] | str | Unset | None = UNSET
    reason: ResponseStatusReason | str | Unset | None = UNSET
    error: ResponseStatusError | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class CachedTokensDetails(WireObject):
    """The cached share of the input tokens, by kind."""

    text_tokens: int | Unset | None = UNSET
    audio_tokens: int | Unset | None = UNSET
    image_tokens: int | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeResponseUsageInputTokenDetails(WireObject):
    """Input tokens of a response, by kind (cached tokens are a subset)."""

    text_tokens: int | Unset | None = UNSET
    audio_tokens: int | Unset | None = UNSET
    image_tokens: int | Unset | None = UNSET
    cached_tokens: int | Unset | None = UNSET
    cached_tokens_details: CachedTokensDetails | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeResponseUsageOutputTokenDetails(WireObject):
    """Output tokens of a response, by kind."""

    text_tokens: int | Unset | None = UNSET
    audio_tokens: int | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeResponseUsage(WireObject):
    """Token usage of one response, as billed."""

    total_tokens: int | Unset | None = UNSET
    input_tokens: int | Unset | None = UNSET
    output_tokens: int | Unset | None = UNSET
    input_token_details: RealtimeResponseUsageInputTokenDetails | Unset | None = UNSET
    output_token_details: RealtimeResponseUsageOutputTokenDetails | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeResponse(WireObject):
    """A response: its id, status, output items (without audio bytes) and usage."""

    id: str | Unset | None = UNSET
    object: Literal["realtime.response"] | str | Unset | None = UNSET
    status: ResponseStatus | str | Unset | None = UNSET
    status_details: RealtimeResponseStatus | Unset | None = UNSET
    output: Sequence[ConversationItem] | Unset | None = UNSET
    conversation_id: str | Unset | None = UNSET
    output_modalities: Sequence[Modality | str] | Unset | None = UNSET
    max_output_tokens: int | Literal["inf"] | Unset | None = UNSET
    audio: ResponseAudio | Unset | None = UNSET
    usage: RealtimeResponseUsage | Unset | None = UNSET
    metadata: Mapping[str, str] | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponseAudioOutputParams(WireObject):
    """Output format and voice for one response, overriding the session's."""

    format: RealtimeAudioFormats | Unset | None = UNSET
    voice: Voice | str | VoiceID | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeResponseCreateAudioOutput(WireObject):
    """Audio settings of ``response.create``."""

    output: ResponseAudioOutputParams | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeResponseCreateParams(WireObject):
    """Per-response overrides of ``response.create``.

    ``conversation: "none"`` makes an out-of-band response; ``input`` replaces
    the conversation as context and may mix new items with
    :class:`ResponseItemReference` entries; ``metadata`` is echoed back in the
    response so parallel responses can be told apart.
    """

    conversation: Literal["auto", "none"] | str | Unset | None = UNSET
    input: Sequence[ResponseInputItem] | Unset | None = UNSET
    instructions: str | Unset | None = UNSET
    output_modalities: Sequence[Modality | str] | Unset | None = UNSET
    audio: RealtimeResponseCreateAudioOutput | Unset | None = UNSET
    tools: Sequence[RealtimeToolsConfigUnion] | Unset | None = UNSET
    tool_choice: RealtimeToolChoiceConfig | Unset | None = UNSET
    parallel_tool_calls: bool | Unset | None = UNSET
    max_output_tokens: int | Literal["inf"] | Unset | None = UNSET
    metadata: Mapping[str, str] | Unset | None = UNSET
    prompt: ResponsePrompt | Unset | None = UNSET
    reasoning: RealtimeReasoning | Unset | None = UNSET
