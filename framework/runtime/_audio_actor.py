"""The AudioInputActor: the audio source, appends, and manual commits.

Inbox: :data:`AudioInbox` (``SendAudio``, ``CommitAudio``) from the
application. When the session has an ``audio_in`` source (an async iterable of
audio chunks in the session's input format), a task of this actor reads it and
appends each chunk; the source sets the pace (a file read as fast as possible,
a microphone in real time). Audio is never queued without bound: the inbox is
small (:data:`AUDIO_INBOX`) and ``send_audio`` waits when it is full, which is
the backpressure a paced source expects.

It ends when its inbox does (the session is closing): the source stops being
read, and it closes its send ends.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterable

import trio

from framework.protocol import ClientEvent, InputAudioBufferAppendEvent, InputAudioBufferCommitEvent

from ._messages import AudioInbox, CommitAudio, CreateResponse, EventIds, ResponseInbox, SendAudio

AUDIO_INBOX = 16
"""Chunks of audio waiting to be appended (with 20 ms chunks, 320 ms)."""


class AudioInputActor:
    """Turns audio chunks into ``input_audio_buffer`` events.

    Args:
        inbox: its inbox.
        outbox: a send end of the outbox.
        to_responses: the ResponseActor's inbox (a commit may ask for a response).
        source: the session's ``audio_in``, if any.
    """

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[AudioInbox],
        *,
        outbox: trio.MemorySendChannel[ClientEvent],
        to_responses: trio.MemorySendChannel[ResponseInbox],
        source: AsyncIterable[bytes] | None = None,
    ) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._to_responses = to_responses
        self._source = source
        self._ids = EventIds()
        self.appended_bytes = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._outbox, self._to_responses:
            async with trio.open_nursery() as nursery:
                if self._source is not None:
                    nursery.start_soon(self._read_source, self._source)
                task_status.started()
                with self._inbox:
                    async for message in self._inbox:
                        if isinstance(message, SendAudio):
                            await self._append(message.audio)
                        else:
                            await self._commit(message)
                nursery.cancel_scope.cancel()

    async def _read_source(self, source: AsyncIterable[bytes]) -> None:
        async for chunk in source:
            if chunk:
                await self._append(chunk)

    async def _append(self, audio: bytes) -> None:
        self.appended_bytes += len(audio)
        await self._outbox.send(
            InputAudioBufferAppendEvent(audio=base64.b64encode(audio).decode("ascii"))
        )

    async def _commit(self, command: CommitAudio) -> None:
        await self._outbox.send(InputAudioBufferCommitEvent(event_id=self._ids("commit")))
        if command.respond:
            await self._to_responses.send(CreateResponse(reason="commit"))
        command.queued.set()
