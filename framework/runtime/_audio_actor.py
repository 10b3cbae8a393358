"""The AudioInputActor: the audio source, appends, and manual commits.

Inbox: :data:`AudioInbox` (``SendAudio``, ``CommitAudio``) from the
application, ``ConnectionLost`` and ``ConnectionRestored`` from the
SessionActor. When the session has an ``audio_in`` source (an async iterable
of audio chunks in the session's input format), a task of this actor reads it
and appends each chunk; the source sets the pace (a file read as fast as
possible, a microphone in real time). Audio is never queued without bound: the
inbox is small (:data:`AUDIO_INBOX`) and ``send_audio`` waits when it is full,
which is the backpressure a paced source expects. ``send_audio`` skips the
inbox when nothing is queued ahead of its chunk (:meth:`AudioInputActor.offer`),
and the outbox too when the session's writer is idle: the chunk is then written
in the caller's task, with no task switch at all.

While the connection is down (between ``ConnectionLost`` and
``ConnectionRestored``) the user goes on speaking: their audio is held, the
newest ``keep_bytes`` of it (the older is dropped and counted in
``dropped_bytes``), with any commit in its place, and sent in order once the
session is on its new connection. The source keeps its pace meanwhile.

It ends when its inbox does (the session is closing): the source stops being
read, and it closes its send ends.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterable, Sequence

import pybase64
import trio

from framework.protocol import (
    UNSET,
    ClientEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferCommitEvent,
    to_json,
)

from ._contracts import AudioTap, DirectWriter
from ._edge import post
from ._messages import (
    AudioInbox,
    CommitAudio,
    ConnectionLost,
    ConnectionRestored,
    CreateResponse,
    EventIds,
    ResponseInbox,
    SendAudio,
)

_log = logging.getLogger("cantata.audio")

AUDIO_INBOX = 16
"""Chunks of audio waiting to be appended (with 20 ms chunks, 320 ms)."""

_CLOSED = (trio.BrokenResourceError, trio.ClosedResourceError)

_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


def _append_text(encoded: str) -> str:
    """An append's JSON text for base64 ``encoded`` (which needs no escaping)."""
    return _APPEND_HEAD + encoded + '"}'


def frame_text(event: ClientEvent) -> str:
    """The JSON text of a client event; an append is written from a template.

    Appends are nearly every frame a voice session sends (fifty a second with
    20 ms chunks), and their base64 needs no JSON escaping: the template costs a
    string concatenation where the converter walks the object. Any other event,
    or an append with an id, extra fields or text that would need escaping, goes
    through :func:`~framework.protocol.to_json`.
    """
    if type(event) is InputAudioBufferAppendEvent and event.event_id is UNSET and not event.extra:
        audio = event.audio
        if '"' not in audio and "\\" not in audio and audio.isprintable():
            return _append_text(audio)
    return to_json(event)


def _append_event(audio: bytes) -> InputAudioBufferAppendEvent:
    return InputAudioBufferAppendEvent(audio=pybase64.b64encode_as_string(audio))


class AudioInputActor:
    """Turns audio chunks into ``input_audio_buffer`` events.

    Args:
        inbox: its inbox.
        outbox: a send end of the outbox.
        to_responses: the ResponseActor's inbox (a commit may ask for a response).
        source: the session's ``audio_in``, if any.
        taps: see each chunk of the user's audio as it is taken.
    """

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[AudioInbox],
        *,
        outbox: trio.MemorySendChannel[ClientEvent],
        to_responses: trio.MemorySendChannel[ResponseInbox],
        source: AsyncIterable[bytes] | None = None,
        taps: Sequence[AudioTap] = (),
        writer: DirectWriter | None = None,
    ) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._to_responses = to_responses
        self._source = source
        self._taps = tuple(taps)
        self._writer = writer
        self._ids = EventIds()
        self.appended_bytes = 0
        self.dropped_bytes = 0
        self._dropped_before = 0  # dropped_bytes when the line last went down
        # While the connection is down: numbered chunks, and commits by the
        # number of chunks taken before them; None when it is up.
        self._held: deque[tuple[int, bytes]] | None = None
        self._held_commits: list[tuple[int, CommitAudio]] = []
        self._held_bytes = 0
        self._keep = 0
        self._taken = 0
        self._busy = 0  # chunks and commits in progress (see offer)
        self._open = True  # the inbox is still read

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._outbox, self._to_responses:
            async with trio.open_nursery() as nursery:
                if self._source is not None:
                    nursery.start_soon(self._read_source, self._source)
                task_status.started()
                with self._inbox:
                    async for message in self._inbox:
                        self._busy += 1
                        try:
                            if isinstance(message, SendAudio):
                                await self._take(message.audio)
                            elif isinstance(message, CommitAudio):
                                await self._commit(message)
                            elif isinstance(message, ConnectionLost):
                                self._hold(message.keep_bytes)
                            else:
                                await self._release(message)
                        finally:
                            self._busy -= 1
                self._open = False
                nursery.cancel_scope.cancel()

    async def _read_source(self, source: AsyncIterable[bytes]) -> None:
        async for chunk in source:
            if chunk:
                self._busy += 1
                try:
                    await self._take(chunk)
                finally:
                    self._busy -= 1

    async def offer(self, audio: bytes) -> bool:
        """Appends ``audio`` in the caller's task, when that keeps the order.

        The application's chunks otherwise cross the inbox and the outbox, a task
        switch at each. This takes a chunk directly only when nothing of the
        actor's is queued or half done (its reader waits on an empty inbox, so
        no message is queued there or handed to it and not yet acted on; no chunk
        or commit in progress) and the line is up. When the session's writer waits
        on an empty outbox, the chunk is written on the wire here and now;
        otherwise it joins the outbox behind what is there. False: send it
        through the inbox.
        """
        if self._busy or not self._open or self._held is not None or not audio:
            return False
        if not self._inbox.statistics().tasks_waiting_receive:
            # A message handed to the waiting reader (a commit, a lost line) has left
            # the buffer but is not acted on yet: the chunk goes behind it.
            return False
        writer = self._writer
        if writer is None or not writer.can_write_now():
            try:
                self._outbox.send_nowait(_append_event(audio))
            except (trio.WouldBlock, *_CLOSED):
                return False
            self._taken_now(audio)
            await trio.lowlevel.checkpoint()
            return True
        self._taken_now(audio)
        encoded = pybase64.b64encode_as_string(audio)
        # Chunks that come meanwhile go through the inbox, behind this one.
        self._busy += 1
        try:
            if not await writer.write_now(_append_text(encoded)):
                # The line dropped under it: the writer sends it on the next line.
                try:
                    self._outbox.send_nowait(InputAudioBufferAppendEvent(audio=encoded))
                except (trio.WouldBlock, *_CLOSED):
                    self.appended_bytes -= len(audio)
                    self.dropped_bytes += len(audio)
        finally:
            self._busy -= 1
        return True

    def _taken_now(self, audio: bytes) -> None:
        self._tap(audio)
        self.appended_bytes += len(audio)

    def _tap(self, audio: bytes) -> None:
        """A chunk is taken: the taps see it, and it is counted."""
        for tap in self._taps:
            tap.user_audio(audio)
        self._taken += 1

    async def _take(self, audio: bytes) -> None:
        self._tap(audio)
        held = self._held
        if held is None:
            await self._append(audio)
            return
        held.append((self._taken - 1, audio))
        self._held_bytes += len(audio)
        while self._held_bytes > self._keep and held:
            _, oldest = held.popleft()
            self._held_bytes -= len(oldest)
            self.dropped_bytes += len(oldest)

    async def _append(self, audio: bytes) -> None:
        self.appended_bytes += len(audio)
        await post(self._outbox, _append_event(audio))

    async def _commit(self, command: CommitAudio) -> None:
        if self._held is not None:
            self._held_commits.append((self._taken, command))
            return
        await self._outbox.send(InputAudioBufferCommitEvent(event_id=self._ids("commit")))
        if command.respond:
            await self._to_responses.send(CreateResponse(reason="commit"))
        command.queued.set()

    # --- across a reconnect ---------------------------------------------------------

    def _hold(self, keep_bytes: int) -> None:
        self._keep = keep_bytes
        if self._held is None:
            self._held = deque()
            self._dropped_before = self.dropped_bytes

    async def _release(self, message: ConnectionRestored) -> None:
        held, commits = self._held or deque(), self._held_commits
        self._held, self._held_commits, self._held_bytes = None, [], 0
        dropped = self.dropped_bytes - self._dropped_before
        if dropped:
            _log.warning(
                "%d bytes of the user's audio were dropped while the connection was down",
                dropped,
            )
        for number, audio in held:
            while commits and commits[0][0] <= number:
                await self._commit(commits.pop(0)[1])
            await self._append(audio)
        for _, command in commits:
            await self._commit(command)
