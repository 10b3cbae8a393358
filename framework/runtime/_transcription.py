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

Order: a server may finish transcribing a later turn first (the hosted API
does not promise the order of ``input_audio_transcription.completed``), so
final segments are held back until every earlier turn is final: they come,
and ``segments`` holds them, in the order of the turns.

The end: when the ``audio_in`` source is exhausted, the session sends a
stretch of silence (so that server VAD closes a turn still open) and then
``input_audio_buffer.clear``. The server answers events in order, so once
it has answered the clear, every turn of the audio has been committed; the
iteration ends when each of those turns has its final transcript (or its
failure).
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import numpy as np
import trio

from framework.audio import encode, sample_rate
from framework.errors import ConnectionClosed
from framework.protocol import (
    UNSET,
    AudioTranscription,
    InputAudioBufferClearEvent,
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
from ._events import (
    AudioCleared,
    AudioCommitted,
    Interrupted,
    SessionEvent,
    TranscriptionFailed,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from ._handle import Session
from ._supervisor import open_session

DEFAULT_MODEL = "gpt-4o-mini-transcribe"
END_SILENCE_MARGIN_MS = 300
"""Silence sent after the source beyond ``silence_duration_ms``, so that VAD surely ends a turn."""
PARTIALS_KEPT = 1024
"""Partial segments waiting to be read; past it the oldest go (finals are never dropped)."""


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
        error: why the transcription failed (then ``final``, with no text).
    """

    item_id: str
    text: str
    final: bool
    start_ms: int | None
    end_ms: int | None
    usage: TranscriptionUsage | None = None
    error: str | None = None


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
    """A running transcription session (from :func:`open_transcription_session`).

    Iterate it for segments: partials as they grow, and the final ones in the
    order of the turns. With an ``audio_in`` source the iteration ends once
    the whole source is transcribed (see the module docstring); ``segments``
    holds the final ones.
    """

    def __init__(self, session: Session, silence_ms: int) -> None:
        self.session = session
        self.segments: list[TranscriptSegment] = []
        """The final segments, in the order of the turns."""
        self._silence_ms = silence_ms
        self._times: dict[str, list[int | None]] = {}
        self._turns: list[str] = []  # item ids, in the order they were committed
        self._finals: dict[str, TranscriptSegment] = {}  # final, not yet handed out in order
        self._ready: deque[TranscriptSegment] = deque()
        self._drained = False  # the end-of-audio clear was answered: no turn comes after

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
        while not self._ready:
            if self._drained and len(self.segments) == len(self._turns):
                raise StopAsyncIteration
            self._see(await self.session.__anext__())
        return self._ready.popleft()

    def _see(self, event: SessionEvent) -> None:
        if isinstance(event, UserSpeechStarted):
            self._times[event.item_id] = [event.audio_start_ms, None]
        elif isinstance(event, UserSpeechStopped):
            times = self._times.setdefault(event.item_id, [None, None])
            times[1] = max(0, event.audio_end_ms - self._silence_ms)
        elif isinstance(event, AudioCommitted):
            self._turn(event.item_id)
        elif isinstance(event, AudioCleared):
            self._drained = True
        elif isinstance(event, UserTranscript):
            segment = self._segment(event.item_id, event.text, final=event.final)
            if event.final:
                self._finished(attrs.evolve(segment, usage=event.usage))
            else:
                if len(self._ready) >= PARTIALS_KEPT:
                    self._ready.popleft()
                self._ready.append(segment)
        elif isinstance(event, TranscriptionFailed):
            self._finished(self._segment(event.item_id, "", final=True, error=event.message))

    def _turn(self, item_id: str) -> None:
        if item_id not in self._finals and item_id not in self._turns:
            self._turns.append(item_id)

    def _segment(
        self, item_id: str, text: str, *, final: bool, error: str | None = None
    ) -> TranscriptSegment:
        start, end = self._times.get(item_id, [None, None])
        return TranscriptSegment(
            item_id=item_id, text=text, final=final, start_ms=start, end_ms=end, error=error
        )

    def _finished(self, segment: TranscriptSegment) -> None:
        """A turn is final: it, and the final turns after it, are handed out in turn order."""
        self._turn(segment.item_id)  # a server that announced no commit for it
        self._finals[segment.item_id] = segment
        while len(self.segments) < len(self._turns):
            ready = self._finals.pop(self._turns[len(self.segments)], None)
            if ready is None:
                return  # an earlier turn is still being transcribed
            self.segments.append(ready)
            self._ready.append(ready)


async def _then_end(
    source: AsyncIterable[bytes], silence: bytes, handle: list[Session], opened: trio.Event
) -> AsyncIterator[bytes]:
    """The source, then silence, then ``input_audio_buffer.clear`` in order after it."""
    async for chunk in source:
        yield chunk
    yield silence
    await opened.wait()
    with contextlib.suppress(ConnectionClosed):  # the session is over anyway
        await handle[0].send(InputAudioBufferClearEvent(event_id="transcription_end"))


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
    handle: list[Session] = []
    opened = trio.Event()
    if audio_in is not None:
        tail_ms = silence_duration_ms + END_SILENCE_MARGIN_MS
        rate = sample_rate(input_format)
        silence = encode(np.zeros(rate * tail_ms // 1000, dtype=np.int16), input_format, rate=rate)
        audio_in = _then_end(audio_in, silence, handle, opened)
    async with open_session(
        _Listener(config),
        url=None if connection is not None else _with_intent(url),
        api_key=api_key,
        audio_in=audio_in,
        connection=connection,
    ) as session:
        handle.append(session)
        opened.set()
        yield TranscriptionSession(session, silence_duration_ms)
