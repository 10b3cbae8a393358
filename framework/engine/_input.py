"""The input audio buffer: appends, commits, turn detection and the idle timeout.

Handlers here: ``input_audio_buffer.append``, ``.commit`` and ``.clear``.
Appended audio is decoded once and fed to the VAD (when turn detection is
on); its verdicts become ``speech_started`` (which barges in on the response
in progress, unless ``interrupt_response`` is false) and ``speech_stopped``
followed by a commit (answered unless ``create_response`` is false). Each
commit becomes a user audio item, heard by the transcriber (with transcription
events when the session asks for them).
The idle timeout (``server_vad.idle_timeout_ms``) commits the silence that
followed the last reply's playback and asks for a response.

Bounds, and what happens when one is reached:

* one append carries at most 15 MiB of audio (the hosted API's limit); a
  larger one is refused with ``invalid_value``.
* pre-speech audio: under turn detection, audio before speech is kept only as
  long as it can still be committed: ``prefix_padding_ms`` (what the hosted
  API prepends to a turn), or the idle window (``idle_timeout_ms``) when
  there is one, and never more than 30 seconds (plus up to a second of
  slack: it is trimmed in whole seconds). Older audio is forgotten as it ages.
* the buffer holds at most 5 minutes of audio (the hosted API states no
  bound): under turn detection a turn that long ends there, as if the speaker
  had paused (``speech_stopped``, committed; speech that goes on starts the
  next turn); without turn detection the append that would overflow is
  refused with ``input_audio_buffer_full``, and nothing buffered is lost.
"""

from __future__ import annotations

import binascii
import math
from typing import Protocol

import attrs
import pybase64
import trio

from framework.protocol import (
    InputAudioBufferAppendEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    InputAudioBufferTimeoutTriggered,
    RealtimeConversationItemUserMessage,
    SemanticVad,
    ServerVad,
    UserMessageContent,
)

from ._audio import InputBuffer, wire_format
from ._config import RequestError
from ._conversation import Conversation
from ._outbox import Outbox, Spawn
from ._session_config import SessionConfig
from ._stored_item import StoredItem
from ._timers import Deadline
from ._transcription import Transcriptions
from ._vad import (
    SEMANTIC_SILENCE_MS,
    ClassifierFactory,
    FrameClassifier,
    SpeechStarted,
    VoiceActivityDetector,
)

MAX_APPEND_BYTES = 15 * 1024 * 1024
MIN_COMMIT_MS = 100
MAX_BUFFER_MS = 5 * 60 * 1000
MAX_PRE_SPEECH_MS = 30_000
_TRIM_SLACK_MS = 1000


class Turns(Protocol):
    """What the input needs from the responses."""

    @property
    def busy(self) -> bool:
        """A response is in progress in the default conversation."""
        ...

    def barge_in(self) -> None:
        """Speech started: cancel the response in progress, if the session says so."""
        ...

    async def answer_turn(self) -> bool:
        """A VAD turn ended: answer it (now, or once a cancelled reply is done).

        Returns:
            False when no answer is coming (one is still in progress).
        """
        ...

    async def prompt(self) -> None:
        """Asks for a response after an idle timeout (none if one began meanwhile)."""
        ...


@attrs.frozen(kw_only=True)
class InputStatistics:
    """What the input buffer holds now."""

    buffered_bytes: int
    buffered_ms: int
    received_ms: int
    """All the audio appended in the session, in the buffer's current format (it never shrinks)."""


class InputAudio:
    """The session's input audio buffer and its turn detection."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        config: SessionConfig,
        conversation: Conversation,
        transcriptions: Transcriptions,
        turns: Turns,
        vad: ClassifierFactory,
        spawn: Spawn,
    ) -> None:
        self._outbox = outbox
        self._config = config
        self._conversation = conversation
        self._transcriptions = transcriptions
        self._turns = turns
        self._factory = vad
        self._made: tuple[int, FrameClassifier] | None = None  # the classifier, by its rate
        self._spawn = spawn
        self.buffer = InputBuffer()
        self.vad: VoiceActivityDetector | None = None
        self._turn_item_id: str | None = None  # named at speech_started, committed at the stop
        self.idle = Deadline()
        self._idle_from = 0  # buffer offset where the idle segment starts
        self._idle_playing = False  # the deadline is the end of a reply's playback
        self.configure()

    def statistics(self) -> InputStatistics:
        fmt = self.buffer.fmt
        return InputStatistics(
            buffered_bytes=len(self.buffer.raw),
            buffered_ms=fmt.ms(self.buffer.length),
            received_ms=fmt.ms(self.buffer.end),
        )

    def _classifier(self, rate: int) -> FrameClassifier:
        """The session's classifier at ``rate``, built once per input rate.

        Not once per ``session.update``: a model-backed classifier holds
        megabytes of native memory (Silero's about 3 MiB), and a client may send
        update after update. The detector resets it whenever it is reused.
        """
        if self._made is None or self._made[0] != rate:
            self.vad = None
            self._made = None  # the old one is released before the next is built
            self._made = (rate, self._factory(rate))
        return self._made[1]

    def release(self) -> None:
        """Lets go of what the input holds (the classifier, buffered audio): the session ended."""
        self.vad = None
        self._made = None
        self.buffer = InputBuffer(fmt=self.buffer.fmt, start=self.buffer.end)

    def configure(self) -> None:
        """Follows the session's input format and turn detection (at start, after updates)."""
        audio_in = self._config.audio_input
        fmt = wire_format(audio_in.format)
        if fmt != self.buffer.fmt:
            # Audio already buffered in the old format cannot be read in the new one.
            self.buffer = InputBuffer(
                fmt=fmt, start=self.buffer.end * fmt.rate // self.buffer.fmt.rate
            )
        td = audio_in.turn_detection
        if isinstance(td, ServerVad):
            assert isinstance(td.threshold, float | int)
            self.vad = VoiceActivityDetector(
                samples_per_ms=fmt.samples_per_ms,
                classifier=self._classifier(fmt.rate),
                threshold=float(td.threshold),
                prefix_padding_ms=(
                    td.prefix_padding_ms if isinstance(td.prefix_padding_ms, int) else 300
                ),
                silence_duration_ms=(
                    td.silence_duration_ms if isinstance(td.silence_duration_ms, int) else 500
                ),
            )
        elif isinstance(td, SemanticVad):
            self.vad = VoiceActivityDetector(
                samples_per_ms=fmt.samples_per_ms,
                classifier=self._classifier(fmt.rate),
                silence_duration_ms=SEMANTIC_SILENCE_MS.get(str(td.eagerness), 700),
            )
        else:
            self.vad = None
        if self.vad is not None:
            self.vad.reset(self.buffer.end)
        self._turn_item_id = None

    # --- handlers -------------------------------------------------------------------

    async def append(self, event: InputAudioBufferAppendEvent) -> None:
        """``input_audio_buffer.append``: buffers the audio and runs turn detection on it."""
        try:
            data = pybase64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(
                "Invalid 'audio': the value is not valid base64.",
                code="invalid_value",
                param="audio",
            ) from None
        if len(data) > MAX_APPEND_BYTES:
            raise RequestError(
                f"Invalid 'audio': {len(data)} bytes is more than the 15 MiB allowed per event.",
                code="invalid_value",
                param="audio",
            )
        fmt = self.buffer.fmt
        if self.vad is None and len(self.buffer.raw) + len(data) > fmt.byte_count(MAX_BUFFER_MS):
            raise RequestError(
                f"The input audio buffer is full: it holds at most {MAX_BUFFER_MS // 60000} "
                "minutes of audio. Commit or clear it before appending more.",
                code="input_audio_buffer_full",
                param="audio",
            )
        samples = self.buffer.append(data)
        if self.vad is None:
            return
        for verdict in self.vad.feed(samples, self.buffer.start):
            if isinstance(verdict, SpeechStarted):
                await self._speech_started(verdict.start_sample)
            else:
                await self._speech_stopped(verdict.end_sample)
        if self.vad.speaking and self.buffer.length >= fmt.samples_per_ms * MAX_BUFFER_MS:
            # A turn this long ends here, as if the speaker had paused.
            end = self.buffer.end
            self.vad.reset(end)
            await self._speech_stopped(end)
        elif not self.vad.speaking:
            self._forget_old_audio()

    async def commit(self, event: InputAudioBufferCommitEvent) -> None:
        """``input_audio_buffer.commit``: the buffer becomes a user audio item (at least 100 ms)."""
        fmt = self.buffer.fmt
        have_ms = self.buffer.length / fmt.samples_per_ms
        if have_ms < MIN_COMMIT_MS:
            raise RequestError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {have_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        if self.vad is not None:
            self.vad.reset(self.buffer.end)
        self._turn_item_id = None
        await self._commit(self._outbox.new_id("item"), until=self.buffer.end)

    async def clear(self, event: InputAudioBufferClearEvent) -> None:
        """``input_audio_buffer.clear``: forgets the buffered audio (offsets keep counting)."""
        self.buffer.clear()
        if self.vad is not None:
            self.vad.reset(self.buffer.end)
        self._turn_item_id = None
        await self._outbox.emit(InputAudioBufferClearedEvent(event_id=self._outbox.new_id("event")))

    # --- turns ----------------------------------------------------------------------

    async def _speech_started(self, start: int) -> None:
        self.buffer.drop_before(start)
        self._turn_item_id = self._outbox.new_id("item")
        self.disarm_idle()
        await self._outbox.emit(
            InputAudioBufferSpeechStartedEvent(
                event_id=self._outbox.new_id("event"),
                audio_start_ms=self.buffer.fmt.ms(start),
                item_id=self._turn_item_id,
            )
        )
        self._turns.barge_in()

    async def _speech_stopped(self, end: int) -> None:
        item_id = self._turn_item_id or self._outbox.new_id("item")
        self._turn_item_id = None
        await self._outbox.emit(
            InputAudioBufferSpeechStoppedEvent(
                event_id=self._outbox.new_id("event"),
                audio_end_ms=self.buffer.fmt.ms(end),
                item_id=item_id,
            )
        )
        await self._commit(item_id, until=end)
        if not (self._config.answers_turns and await self._turns.answer_turn()):
            # No reply is coming (or one is still running): the user's silence
            # counts from here, or from the end of that reply.
            self.rearm_idle()

    async def _commit(self, item_id: str, *, until: int) -> None:
        """Turns buffered audio into a user message and starts its transcription."""
        fmt = self.buffer.fmt
        samples, raw = self.buffer.take(until)
        previous = self._conversation.last_id()
        await self._outbox.emit(
            InputAudioBufferCommittedEvent(
                event_id=self._outbox.new_id("event"), item_id=item_id, previous_item_id=previous
            )
        )
        item = RealtimeConversationItemUserMessage(
            id=item_id,
            object="realtime.item",
            status="completed",
            content=[UserMessageContent(type="input_audio", transcript=None)],
        )
        stored = StoredItem(item=item, audio={0: bytearray(raw)}, audio_format=fmt)
        # Marked before it is announced: a response reading it waits for what was heard.
        stored.transcribed = trio.Event()
        await self._conversation.add(stored, previous)
        self._spawn(
            self._transcriptions.run, stored, samples, fmt.rate, self._config.input_transcription
        )

    def _forget_old_audio(self) -> None:
        """Drops pre-speech audio that can no longer be committed (see the bounds)."""
        td = self._config.turn_detection
        padding = td.prefix_padding_ms if isinstance(td, ServerVad) else None
        keep_ms = max(
            padding if isinstance(padding, int) else 300, self._config.idle_timeout_ms or 0
        )
        keep_ms = min(keep_ms, MAX_PRE_SPEECH_MS)
        spms = self.buffer.fmt.samples_per_ms
        if self.buffer.length > (keep_ms + _TRIM_SLACK_MS) * spms:
            self.buffer.drop_before(self.buffer.end - keep_ms * spms)

    # --- the idle timeout -------------------------------------------------------------

    def rearm_idle(self, playback_ms: int = 0) -> None:
        """Starts the idle timeout, after ``playback_ms`` of a reply's playback.

        Disarmed when the session has no idle timeout or a response is running.
        """
        timeout_ms = self._config.idle_timeout_ms
        if timeout_ms is None or self._turns.busy:
            self.idle.set(math.inf)
            return
        # The timer starts once the reply's audio has played (response.done +
        # its duration); the idle segment is the audio written after that.
        self._idle_playing = playback_ms > 0
        if self._idle_playing:
            self.idle.set_in(playback_ms / 1000)
        else:
            self._idle_from = self.buffer.end
            self.idle.set_in(timeout_ms / 1000)

    def disarm_idle(self) -> None:
        self.idle.set(math.inf)

    async def idle_passed(self) -> None:
        """The idle deadline passed: playback ended, or the user stayed silent."""
        if self._idle_playing:
            # Playback is over: the idle segment starts here.
            self.rearm_idle()
            return
        if self._turns.busy or (self.vad is not None and self.vad.speaking):
            return
        item_id = self._outbox.new_id("item")
        fmt = self.buffer.fmt
        start = max(self._idle_from, self.buffer.start)
        end = self.buffer.end
        await self._outbox.emit(
            InputAudioBufferTimeoutTriggered(
                event_id=self._outbox.new_id("event"),
                item_id=item_id,
                audio_start_ms=fmt.ms(start),
                audio_end_ms=fmt.ms(end),
            )
        )
        self.buffer.drop_before(start)
        if self.vad is not None:
            self.vad.reset(end)
        await self._commit(item_id, until=end)
        await self._turns.prompt()
