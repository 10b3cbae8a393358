"""The four seed names that were never GA wire types, in their last known shapes.

They come from the beta protocol and pre-GA SDK releases. A GA server neither
needs nor sends them; they exist so that old payloads can still be read and so
that the engine can answer (or refuse) a legacy ``transcription_session.update``
with a clear message. New code should use the GA types named in each docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from ._base import UNSET, Unset, WireObject
from ._session import (
    AudioTranscription,
    NoiseReduction,
    RealtimeFunctionTool,
    RealtimeTranscriptionSessionCreateResponse,
    ResponsePrompt,
    TracingConfiguration,
)

LegacyAudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]


@attrs.frozen(kw_only=True, repr=False)
class LegacyTurnDetection(WireObject):
    """Legacy flat turn-detection settings (both VAD kinds in one object)."""

    type: Literal["server_vad", "semantic_vad"] | str | Unset | None = UNSET
    threshold: float | Unset | None = UNSET
    prefix_padding_ms: int | Unset | None = UNSET
    silence_duration_ms: int | Unset | None = UNSET
    idle_timeout_ms: int | Unset | None = UNSET
    eagerness: str | Unset | None = UNSET
    create_response: bool | Unset | None = UNSET
    interrupt_response: bool | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeSession(WireObject):
    """Legacy: the flat pre-GA session object.

    Replaced in GA by :class:`RealtimeSessionCreateRequest`, whose audio
    settings live under ``audio.input``/``audio.output`` and whose formats are
    objects rather than the strings ``pcm16``/``g711_ulaw``/``g711_alaw``.
    """

    id: str | Unset | None = UNSET
    object: Literal["realtime.session"] | str | Unset | None = UNSET
    expires_at: int | Unset | None = UNSET
    model: str | Unset | None = UNSET
    modalities: Sequence[str] | Unset | None = UNSET
    instructions: str | Unset | None = UNSET
    voice: str | Unset | None = UNSET
    speed: float | Unset | None = UNSET
    temperature: float | Unset | None = UNSET
    input_audio_format: LegacyAudioFormat | str | Unset | None = UNSET
    output_audio_format: LegacyAudioFormat | str | Unset | None = UNSET
    input_audio_transcription: AudioTranscription | Unset | None = UNSET
    input_audio_noise_reduction: NoiseReduction | Unset | None = UNSET
    turn_detection: LegacyTurnDetection | Unset | None = UNSET
    tools: Sequence[RealtimeFunctionTool] | Unset | None = UNSET
    tool_choice: str | Unset | None = UNSET
    max_response_output_tokens: int | Literal["inf"] | Unset | None = UNSET
    tracing: Literal["auto"] | str | TracingConfiguration | Unset | None = UNSET
    include: Sequence[str] | Unset | None = UNSET
    prompt: ResponsePrompt | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class LegacyItemContent(WireObject):
    """Content of a legacy flat item."""

    type: str | Unset | None = UNSET
    id: str | Unset | None = UNSET
    text: str | Unset | None = UNSET
    audio: str | Unset | None = UNSET
    transcript: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemWithReference(WireObject):
    """Legacy: the beta flat item that could also be an ``item_reference``.

    Replaced in GA by the typed conversation items and, inside
    ``response.create`` input, by :class:`ResponseItemReference`.
    """

    type: str | Unset | None = UNSET
    id: str | Unset | None = UNSET
    object: str | Unset | None = UNSET
    status: str | Unset | None = UNSET
    role: str | Unset | None = UNSET
    content: Sequence[LegacyItemContent] | Unset | None = UNSET
    call_id: str | Unset | None = UNSET
    name: str | Unset | None = UNSET
    arguments: str | Unset | None = UNSET
    output: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class LegacyTranscriptionSession(WireObject):
    """The flat transcription-session settings of ``transcription_session.update``."""

    include: Sequence[str] | Unset | None = UNSET
    input_audio_format: LegacyAudioFormat | str | Unset | None = UNSET
    input_audio_noise_reduction: NoiseReduction | Unset | None = UNSET
    input_audio_transcription: AudioTranscription | Unset | None = UNSET
    turn_detection: LegacyTurnDetection | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionSessionUpdate(WireObject):
    """Legacy client event ``transcription_session.update``.

    Replaced in GA by ``session.update`` with ``session.type = "transcription"``
    (:class:`SessionUpdateEvent` carrying a
    :class:`RealtimeTranscriptionSessionCreateRequest`).
    """

    type: Literal["transcription_session.update"] = "transcription_session.update"
    session: LegacyTranscriptionSession
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionSessionUpdatedEvent(WireObject):
    """Legacy server event ``transcription_session.updated``.

    Replaced in GA by ``session.updated`` (:class:`SessionUpdatedEvent`).
    """

    type: Literal["transcription_session.updated"] = "transcription_session.updated"
    event_id: str
    session: RealtimeTranscriptionSessionCreateResponse
