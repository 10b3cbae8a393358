"""The AudioInputActor: the audio source, appends, and manual commits.

Inbox: :class:`SendAudio` and :class:`CommitAudio` from the application.
When the session has an ``audio_in`` source (an async iterable of audio
chunks in the session's input format), a task of this actor reads it and
appends each chunk; the source sets the pace (a file read as fast as
possible, a microphone in real time). Audio is never queued without bound:
the inbox is small and ``send_audio`` waits when it is full, which is the
backpressure a paced source expects.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterable
from typing import Any

import trio

from framework.protocol import InputAudioBufferAppendEvent, InputAudioBufferCommitEvent

from ._messages import CommitAudio, CreateResponse, SendAudio
from ._runtime import Runtime

AUDIO_INBOX = 16
"""Chunks of audio waiting to be appended (with 20 ms chunks, 320 ms)."""


class AudioInputActor:
    """Turns audio chunks into ``input_audio_buffer`` events."""

    def __init__(
        self,
        runtime: Runtime,
        inbox: trio.MemoryReceiveChannel[Any],
        source: AsyncIterable[bytes] | None = None,
    ) -> None:
        self.rt = runtime
        self.inbox = inbox
        self.source = source
        self.appended_bytes = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if self.source is not None:
                nursery.start_soon(self._read_source, self.source)
            task_status.started()
            async with self.inbox:
                async for message in self.inbox:
                    if isinstance(message, SendAudio):
                        await self._append(message.audio)
                    elif isinstance(message, CommitAudio):
                        await self._commit(message.respond)
            nursery.cancel_scope.cancel()

    async def _read_source(self, source: AsyncIterable[bytes]) -> None:
        async for chunk in source:
            if chunk:
                await self._append(chunk)

    async def _append(self, audio: bytes) -> None:
        self.appended_bytes += len(audio)
        await self.rt.outbox.send(
            InputAudioBufferAppendEvent(audio=base64.b64encode(audio).decode("ascii"))
        )

    async def _commit(self, respond: bool) -> None:
        await self.rt.outbox.send(
            InputAudioBufferCommitEvent(event_id=self.rt.outbox.next_id("commit"))
        )
        if respond:
            self.rt.activity.up()
            await self.rt.response_inbox.send(CreateResponse(reason="commit"))
