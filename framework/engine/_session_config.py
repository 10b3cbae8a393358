"""The session's effective configuration, and what ``session.update`` does to it.

A session starts from the engine's defaults, or from a client secret's or an
accepted call's configuration, which fix the model. Each ``session.update``
is checked and merged by :func:`._config.merge_session`; this module keeps the
result and answers what the other parts ask of it (the input format, turn
detection, the output voice and format, the tools).

A URL without ``?model=`` leaves the model to the first ``session.update``
that names one: both Agents SDKs name their model only there. After that, or
when the URL named one, another model is refused, as the hosted API does.

A transcription session (``?intent=transcription``) keeps the same internal
shape; only its input and ``include`` matter, and events show it as a
transcription session object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from framework.protocol import (
    AudioTranscription,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeSessionCreateRequest,
    SemanticVad,
    ServerVad,
)
from framework.protocol import (
    RealtimeTranscriptionSessionCreateRequest as TranscriptionRequest,
)

from ._config import (
    MergeContext,
    RequestError,
    default_session,
    default_transcription_session,
    invalid_value,
    merge_session,
    transcription_update,
    transcription_view,
)


class SessionConfig:
    """One session's configuration as ``session.created``/``updated`` report it."""

    def __init__(
        self,
        *,
        model: str | None,
        default_model: str,
        session_id: str,
        expires_at: int | None,
        initial: RealtimeSessionCreateRequest | None = None,
        transcription: bool = False,
    ) -> None:
        """Args:
        model: the model the URL named (None: none).
        default_model: the model reported until one is chosen.
        session_id: the id events report.
        expires_at: when the session ends, in epoch seconds (None: never).
        initial: a client secret's or a call's configuration, model included.
        transcription: a transcription session (committed audio is only transcribed).
        """
        self.transcription = transcription
        make_default = default_transcription_session if transcription else default_session
        self.current: RealtimeSessionCreateRequest = make_default(
            model or default_model, session_id=session_id, expires_at=expires_at
        )
        if initial is not None:
            self.current = attrs.evolve(initial, extra=self.current.extra)
        self._model_chosen = model is not None or initial is not None

    def shown(self) -> Any:
        """The session object events show (a transcription session shows its own kind)."""
        return transcription_view(self.current) if self.transcription else self.current

    def update(self, session: object, *, audio_produced: bool, response_active: bool) -> bool:
        """Merges a ``session.update``'s session; True when the audio config changed.

        Raises:
            RequestError: the update is refused; nothing changed.
        """
        if self.transcription:
            if isinstance(session, RealtimeSessionCreateRequest):
                raise RequestError(
                    "Cannot change a transcription session into a realtime session; open a "
                    "new session without ?intent=transcription for a realtime session.",
                    code="invalid_value",
                    param="session.type",
                )
            if isinstance(session, TranscriptionRequest):
                session = transcription_update(session)
        if isinstance(session, TranscriptionRequest):
            raise RequestError(
                "Cannot change a realtime session into a transcription session; connect with "
                "?intent=transcription for a transcription session.",
                code="invalid_value",
                param="session.type",
            )
        if not isinstance(session, RealtimeSessionCreateRequest):
            raise invalid_value(
                "session.type", getattr(session, "type", None), ["realtime", "transcription"]
            )
        context = MergeContext(
            audio_produced=audio_produced,
            response_active=response_active,
            model_chosen=self._model_chosen,
        )
        before = self.current
        self.current = merge_session(before, session, context)
        if isinstance(session.model, str):
            self._model_chosen = True
        return self.current.audio != before.audio

    # --- what the other parts read ------------------------------------------------------

    @property
    def audio_input(self) -> RealtimeAudioConfigInput:
        audio = self.current.audio
        assert isinstance(audio, RealtimeAudioConfig)
        assert isinstance(audio.input, RealtimeAudioConfigInput)
        return audio.input

    @property
    def output(self) -> RealtimeAudioConfigOutput:
        audio = self.current.audio
        assert isinstance(audio, RealtimeAudioConfig)
        assert isinstance(audio.output, RealtimeAudioConfigOutput)
        return audio.output

    @property
    def turn_detection(self) -> ServerVad | SemanticVad | None:
        td = self.audio_input.turn_detection
        return td if isinstance(td, (ServerVad, SemanticVad)) else None

    @property
    def idle_timeout_ms(self) -> int | None:
        td = self.turn_detection
        if isinstance(td, ServerVad) and isinstance(td.idle_timeout_ms, int):
            return td.idle_timeout_ms
        return None

    @property
    def input_transcription(self) -> AudioTranscription | None:
        tr = self.audio_input.transcription
        return tr if isinstance(tr, AudioTranscription) else None

    @property
    def tools(self) -> Sequence[object]:
        tools = self.current.tools
        return tools if isinstance(tools, (list, tuple)) else []

    @property
    def answers_turns(self) -> bool:
        """Whether a turn that VAD ends gets a response by itself."""
        td = self.turn_detection
        return td is not None and td.create_response is not False and not self.transcription

    @property
    def barge_in(self) -> bool:
        """Whether speech starting cancels the response in progress."""
        td = self.turn_detection
        return td is not None and td.interrupt_response is not False
