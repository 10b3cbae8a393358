"""Transcription sessions: audio in, captions out, no assistant.

``open_transcription_session`` runs the same actors as an agent session (the
SessionActor owns the connection and routes; the AudioInputActor streams the
audio) with a transcription-only configuration, and turns the session's
events into :class:`TranscriptSegment` values: one per user turn, growing
while it is transcribed, with its start and end in the session's audio.

Times come from server VAD. The protocol's ``audio_start_ms`` includes the
prefix padding and ``audio_end_ms`` the closing silence; a segment reports
the speech itself, so the padding is 0 by default and the silence is taken
off the end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from framework.protocol import (
    UNSET,
    AudioTranscription,
    McpTool,
    RealtimeAudioFormats,
    RealtimeError,
    RealtimeResponse,
    RealtimeSessionCreateRequest,
    RealtimeToolsConfigUnion,
    RealtimeTranscriptionSessionAudio,
    RealtimeTranscriptionSessionAudioInput,
    RealtimeTranscriptionSessionCreateRequest,
    ServerVad,
    TranscriptionUsage,
)
from framework.tools import FunctionTool
from framework.transport import HOSTED_URL

from ._approvals import ApprovalRequest, Decision
from ._contracts import AgentLike, SessionPlugin, Wire
from ._elicitation import ElicitationAnswer, ElicitationRequest
from ._events import Interrupted, UserSpeechStarted, UserSpeechStopped, UserTranscript
from ._handle import Session
from ._supervisor import open_session

DEFAULT_MODEL = "gpt-4o-mini-transcribe"


@attrs.frozen(kw_only=True)
class TranscriptSegment:
    """One user turn's transcript, as it grows and once it is final.

    Attributes:
        item_id: the conversation item of the turn.
        text: the transcript so far (the whole of it when ``final``).
        final: whether the transcription of this turn is complete.
        start_ms, end_ms: where the speech lies in the session's audio
            (``None`` until server VAD has said).
        usage: the transcription's usage, with the final text.
    """

    item_id: str
    text: str
    final: bool
    start_ms: int | None
    end_ms: int | None
    usage: TranscriptionUsage | None = None


class _Listener:
    """The "agent" of a transcription session: only its configuration."""

    name = "transcription"
    model: str | None = None
    tool_timeout = 0.0
    approval_timeout = 0.0
    hosted_tools: tuple[McpTool, ...] = ()

    def __init__(self, config: RealtimeTranscriptionSessionCreateRequest) -> None:
        self._config = config

    def all_tools(self) -> Sequence[FunctionTool]:
        return ()

    def session_plugins(self) -> Sequence[SessionPlugin]:
        return ()

    def session_config(
        self,
        *,
        keep_audio_from: RealtimeSessionCreateRequest | None = None,
        session: Session | None = None,
        tools: Sequence[RealtimeToolsConfigUnion] | None = None,
    ) -> RealtimeTranscriptionSessionCreateRequest:
        return self._config

    def handoff_target(self, value: object) -> AgentLike | None:
        return None

    async def approve_tool_call(self, request: ApprovalRequest) -> bool | Decision | None:
        return False

    answers_elicitations = False

    async def answer_elicitation(self, request: ElicitationRequest) -> ElicitationAnswer | None:
        return ElicitationAnswer("decline")

    async def on_session_started(self, session: Session) -> None:
        pass

    async def on_user_transcript(self, session: Session, text: str) -> None:
        pass

    async def on_response_done(self, session: Session, response: RealtimeResponse) -> None:
        pass

    async def on_tool_call(self, session: Session, name: str, arguments: str) -> None:
        pass

    async def on_interrupted(self, session: Session, event: Interrupted) -> None:
        pass

    async def on_error(self, session: Session, error: RealtimeError) -> None:
        pass


class TranscriptionSession:
    """A running transcription session (from :func:`open_transcription_session`)."""

    def __init__(self, session: Session, silence_ms: int) -> None:
        self.session = session
        self.segments: list[TranscriptSegment] = []
        self._silence_ms = silence_ms
        self._times: dict[str, list[int | None]] = {}

    async def send_audio(self, audio: bytes) -> None:
        """Appends audio in the session's input format."""
        await self.session.send_audio(audio)

    async def commit(self) -> None:
        """Ends a turn by hand (for sessions without turn detection)."""
        await self.session.commit(respond=False)

    def __aiter__(self) -> TranscriptionSession:
        return self

    async def __anext__(self) -> TranscriptSegment:
        # A plain iterator, not an async generator: leaving the loop early then
        # leaves nothing half-run behind.
        while True:
            event = await self.session.__anext__()
            if isinstance(event, UserSpeechStarted):
                self._times[event.item_id] = [event.audio_start_ms, None]
            elif isinstance(event, UserSpeechStopped):
                times = self._times.setdefault(event.item_id, [None, None])
                times[1] = max(0, event.audio_end_ms - self._silence_ms)
            elif isinstance(event, UserTranscript):
                start, end = self._times.get(event.item_id, [None, None])
                segment = TranscriptSegment(
                    item_id=event.item_id,
                    text=event.text,
                    final=event.final,
                    start_ms=start,
                    end_ms=end,
                    usage=event.usage,
                )
                if segment.final:
                    self.segments.append(segment)
                return segment


def _with_intent(url: str | None) -> str:
    parts = urlsplit(url or HOSTED_URL)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["intent"] = "transcription"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


@asynccontextmanager
async def open_transcription_session(
    *,
    url: str | None = None,
    api_key: str | None = None,
    audio_in: AsyncIterable[bytes] | None = None,
    language: str | None = None,
    model: str = DEFAULT_MODEL,
    prompt: str | None = None,
    input_format: RealtimeAudioFormats | None = None,
    silence_duration_ms: int = 500,
    include: Sequence[str] = (),
    connection: Wire | None = None,
) -> AsyncIterator[TranscriptionSession]:
    """Opens a transcription-only session for the block.

    Args:
        url: ``None`` for the hosted API, or a Realtime URL (the local
            engine's); ``?intent=transcription`` is added.
        api_key: as for :func:`~framework.runtime.open_session`.
        audio_in: the audio to transcribe, in the input format, paced by the
            source (a :class:`~framework.audio.WavSource`, a microphone).
        language, model, prompt: the transcription settings.
        input_format: the input audio format (default PCM16 24 kHz).
        silence_duration_ms: how long a pause ends a turn (server VAD).
        include: extra outputs, e.g. ``["item.input_audio_transcription.logprobs"]``.
        connection: an open wire instead of ``url`` (for example in memory).

    Raises:
        ConnectionClosed: the connection could not be opened, or it ended.
        HandshakeRefused: the server refused the connection (a bad key, ...).
        SessionRefused: the server refused the transcription configuration.
        ValueError: no key for the hosted API, or a bad URL.
    """
    transcription = AudioTranscription(
        model=model,
        language=language if language else UNSET,
        prompt=prompt if prompt else UNSET,
    )
    audio_input = RealtimeTranscriptionSessionAudioInput(
        transcription=transcription,
        turn_detection=ServerVad(
            type="server_vad", prefix_padding_ms=0, silence_duration_ms=silence_duration_ms
        ),
        format=input_format if input_format is not None else UNSET,
    )
    config = RealtimeTranscriptionSessionCreateRequest(
        audio=RealtimeTranscriptionSessionAudio(input=audio_input),
        include=list(include) if include else UNSET,
    )
    if url is None and api_key is None:
        api_key = os.environ.get("OPENAI_API_KEY")
    async with open_session(
        _Listener(config),
        url=None if connection is not None else _with_intent(url),
        api_key=api_key,
        audio_in=audio_in,
        connection=connection,
    ) as session:
        yield TranscriptionSession(session, silence_duration_ms)
