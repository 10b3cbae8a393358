"""Hearing user audio: one task per committed user audio item.

The hosted model understands spoken input whether or not the session asks for
transcripts; transcription only adds events. So every commit starts a task in
the session's nursery that runs the transcriber:

* when the session's input has ``transcription`` set, it streams
  ``conversation.item.input_audio_transcription.delta`` events, then
  ``.completed`` (the transcript is stored on the item) or ``.failed`` (a
  failing transcriber fails this transcription only);
* when it has not, no event is sent and the item shows no transcript; what
  was heard is kept beside the item for the brain alone (``StoredItem.heard``).

A response whose context holds an item still being heard waits for it, so the
brain reads what was said.

Bound: one task per commit, each ending with its transcriber.
"""

from __future__ import annotations

import logging

import attrs

from framework.protocol import (
    AudioTranscription,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    RealtimeConversationItemUserMessage,
    TranscriptionDurationUsage,
    TranscriptionError,
)

from ._audio import Samples
from ._conversation import Conversation
from ._outbox import Outbox
from ._speech import Transcriber, TranscriptionUnavailable
from ._stored_item import StoredItem

_log = logging.getLogger("cantata.engine")


class Transcriptions:
    """Runs the session's input transcriptions."""

    def __init__(
        self, outbox: Outbox, conversation: Conversation, transcriber: Transcriber
    ) -> None:
        self._outbox = outbox
        self._conversation = conversation
        self._transcriber = transcriber

    async def run(
        self, stored: StoredItem, samples: Samples, rate: int, config: AudioTranscription | None
    ) -> None:
        """Transcribes a committed item's audio; sets its ``transcribed`` event at the end.

        ``config`` is the session's transcription setting; ``None``: none was
        asked for, so only the brain learns what was heard.
        """
        try:
            if config is None:
                await self._hear(stored, samples, rate)
                return
            try:
                deltas = await self._transcriber.transcribe(
                    samples,
                    rate=rate,
                    language=config.language if isinstance(config.language, str) else None,
                    prompt=config.prompt if isinstance(config.prompt, str) else None,
                )
            except Exception as e:  # a failing transcriber fails this transcription only
                await self._failed(stored, e)
                return
            text = ""
            for delta in deltas:
                text += delta
                await self._outbox.emit(
                    ConversationItemInputAudioTranscriptionDeltaEvent(
                        event_id=self._outbox.new_id("event"),
                        item_id=stored.id,
                        content_index=0,
                        delta=delta,
                    )
                )
            item = stored.item
            assert isinstance(item, RealtimeConversationItemUserMessage)
            first = attrs.evolve(item.content[0], transcript=text)
            self._conversation.replace(
                stored, attrs.evolve(item, content=[first, *item.content[1:]])
            )
            await self._outbox.emit(
                ConversationItemInputAudioTranscriptionCompletedEvent(
                    event_id=self._outbox.new_id("event"),
                    item_id=stored.id,
                    content_index=0,
                    transcript=text,
                    usage=TranscriptionDurationUsage(seconds=round(len(samples) / rate, 3)),
                )
            )
        finally:
            if stored.transcribed is not None:
                stored.transcribed.set()

    async def _hear(self, stored: StoredItem, samples: Samples, rate: int) -> None:
        """What the model understands of the audio, silently: a transcriber that
        cannot hear it leaves the item unreadable to the brain, as it was."""
        try:
            deltas = await self._transcriber.transcribe(
                samples, rate=rate, language=None, prompt=None
            )
        except TranscriptionUnavailable:
            return  # no transcriber here: the brain says it cannot make out audio
        except Exception:
            _log.debug("the transcriber failed on item %s", stored.id, exc_info=True)
            return
        self._conversation.hear(stored, "".join(deltas))

    async def _failed(self, stored: StoredItem, error: Exception) -> None:
        unavailable = isinstance(error, TranscriptionUnavailable)
        reason = (
            str(error)
            if unavailable
            else f"The transcriber failed: {type(error).__name__}: {error}"
        )
        await self._outbox.emit(
            ConversationItemInputAudioTranscriptionFailedEvent(
                event_id=self._outbox.new_id("event"),
                item_id=stored.id,
                content_index=0,
                error=TranscriptionError(
                    type="transcription_error",
                    code="transcriber_unavailable" if unavailable else "transcriber_error",
                    message=reason,
                    param=None,
                ),
            )
        )
