"""The ResponseActor: response lifecycle, output assembly, playback and barge-in.

Inbox: :class:`CreateResponse` and :class:`Interrupt` commands, and the
response, output and VAD events the SessionActor routes here. It owns:

* **sequencing**: never two ``response.create`` in flight. A request made
  while a response runs is queued; several queued requests merge into one.
  A create the server refuses because a response is active is retried after
  it ends, not dropped.
* **output assembly**: text and transcripts per item, finished messages and
  response results published as application events.
* **the sink**: audio deltas go to it as they arrive; it reports what played.
* **barge-in**: when the user speaks over playing audio, the sink stops and
  the item is truncated at the position actually *played* (clamped to what
  was received; no truncate when nothing played). ``response.cancel`` goes
  out only when the server will not cancel by itself.

It runs no user code: hooks are queued for the hook runner.
"""

from __future__ import annotations

import base64
import logging
from collections import deque
from typing import Any, Literal

import attrs
import trio

from framework.events import AssistantDelta, AssistantMessage, Interrupted, ResponseFinished
from framework.protocol import (
    ConversationItemTruncateEvent,
    InputAudioBufferSpeechStartedEvent,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeConversationItemAssistantMessage,
    RealtimeErrorEvent,
    RealtimeResponseUsage,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseCancelEvent,
    ResponseCreatedEvent,
    ResponseCreateEvent,
    ResponseDoneEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    SemanticVad,
    ServerVad,
)

from ._messages import CreateResponse, Interrupt
from ._runtime import Runtime

_log = logging.getLogger("cantata.response")


@attrs.define
class _Output:
    """What one assistant item has produced so far."""

    response_id: str
    text: str = ""
    audio_bytes: int = 0


class ResponseActor:
    """Sequences responses and plays their output (see the module docstring)."""

    def __init__(self, runtime: Runtime, inbox: trio.MemoryReceiveChannel[Any]) -> None:
        self.rt = runtime
        self.inbox = inbox
        self.active: str | None = None  # the response the server is running
        self.in_flight: str | None = None  # event_id of a response.create not yet answered
        self.queued: CreateResponse | None = None
        self.attributed: deque[str] = deque(maxlen=16)  # creates matched to a response.created
        self.outputs: dict[str, _Output] = {}
        self.last_audio_item: str | None = None
        self.stats = {"creates_sent": 0, "creates_merged": 0, "truncates": 0, "cancels": 0}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self.inbox:
            async for message in self.inbox:
                await self.handle(message)

    async def handle(self, message: Any) -> None:
        if isinstance(message, CreateResponse):
            await self._create(message)
        elif isinstance(message, ResponseCreatedEvent):
            self._created(message)
        elif isinstance(message, ResponseDoneEvent):
            await self._done(message)
        elif isinstance(message, (ResponseTextDeltaEvent, ResponseAudioTranscriptDeltaEvent)):
            self._delta(message)
        elif isinstance(message, ResponseAudioDeltaEvent):
            self._audio(message)
        elif isinstance(message, ResponseOutputItemDoneEvent):
            self._item_done(message)
        elif isinstance(message, InputAudioBufferSpeechStartedEvent):
            await self._barge_in(server_cancels=self._server_cancels())
        elif isinstance(message, Interrupt):
            await self._barge_in(server_cancels=False)
        elif isinstance(message, RealtimeErrorEvent):
            await self._error(message)

    # --- sequencing ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.active is not None or self.in_flight is not None

    async def _create(self, command: CreateResponse) -> None:
        # The sender counted this request in Activity; it is uncounted when the
        # response it becomes (or merges into) is done.
        if self.busy:
            if self.queued is None:
                self.queued = command
            else:
                self.queued = _merge(self.queued, command)
                self.stats["creates_merged"] += 1
                self.rt.activity.down()
            return
        await self._send_create(command)

    async def _send_create(self, command: CreateResponse) -> None:
        event_id = self.rt.outbox.next_id("create")
        self.in_flight = event_id
        self.stats["creates_sent"] += 1
        event = (
            ResponseCreateEvent(event_id=event_id, response=command.params)
            if command.params is not None
            else ResponseCreateEvent(event_id=event_id)
        )
        await self.rt.outbox.send(event)

    def _created(self, event: ResponseCreatedEvent) -> None:
        response_id = event.response.id
        if not isinstance(response_id, str):
            return
        if self.in_flight is not None:
            # Taken as ours (already counted by whoever asked). If the server
            # refuses our create after all, this was its own VAD response.
            self.attributed.append(self.in_flight)
            self.in_flight = None
        else:
            self.rt.activity.up()  # the server's own (VAD turn): counted here
        self.active = response_id

    async def _done(self, event: ResponseDoneEvent) -> None:
        response = event.response
        response_id = response.id if isinstance(response.id, str) else ""
        usage = response.usage if isinstance(response.usage, RealtimeResponseUsage) else None
        self.rt.usage.add(usage)
        status = response.status if isinstance(response.status, str) else "completed"
        self.rt.publish(ResponseFinished(response_id=response_id, status=status, usage=usage))
        self.rt.call_hook("on_response_done", event.response)
        if response_id == self.active:
            self.active = None
            self.rt.activity.down()
        if self.queued is not None and not self.busy:
            command, self.queued = self.queued, None
            await self._send_create(command)

    async def _error(self, event: RealtimeErrorEvent) -> None:
        event_id = event.error.event_id
        if not isinstance(event_id, str):
            return
        if event_id == self.in_flight:
            self.in_flight = None
        elif event_id in self.attributed:
            # The response we credited to this request was the server's own (a
            # VAD turn), and it carries this request's count; count it anew.
            self.attributed.remove(event_id)
            self.rt.activity.up()
        else:
            return
        if event.error.code == "conversation_already_has_active_response":
            # Not dropped: asked again once the active response is done.
            if self.queued is None:
                self.queued = CreateResponse(reason="retry")
            else:
                self.rt.activity.down()  # merged into the one already queued
        else:
            _log.warning("response.create refused: %s", event.error.message)
            self.rt.activity.down()
        if self.queued is not None and not self.busy:
            command, self.queued = self.queued, None
            await self._send_create(command)

    # --- output ------------------------------------------------------------------

    def _output(self, item_id: str, response_id: str) -> _Output:
        output = self.outputs.get(item_id)
        if output is None:
            output = self.outputs[item_id] = _Output(response_id)
        return output

    def _delta(self, event: ResponseTextDeltaEvent | ResponseAudioTranscriptDeltaEvent) -> None:
        self._output(event.item_id, event.response_id).text += event.delta
        kind: Literal["text", "transcript"] = (
            "text" if isinstance(event, ResponseTextDeltaEvent) else "transcript"
        )
        self.rt.publish(
            AssistantDelta(
                response_id=event.response_id, item_id=event.item_id, delta=event.delta, kind=kind
            )
        )

    def _audio(self, event: ResponseAudioDeltaEvent) -> None:
        audio = base64.b64decode(event.delta)
        self._output(event.item_id, event.response_id).audio_bytes += len(audio)
        self.last_audio_item = event.item_id
        if self.rt.sink is not None:
            self.rt.sink.write(event.item_id, audio)

    def _item_done(self, event: ResponseOutputItemDoneEvent) -> None:
        item = event.item
        if not isinstance(item, RealtimeConversationItemAssistantMessage):
            return
        item_id = item.id if isinstance(item.id, str) else ""
        output = self.outputs.get(item_id) or _Output(event.response_id)
        text = output.text
        if not text:
            for part in item.content:
                for name in ("text", "transcript"):
                    value = getattr(part, name, None)
                    if isinstance(value, str) and value:
                        text = value
        per_ms = self.rt.sink.bytes_per_ms if self.rt.sink is not None else 48
        self.rt.publish(
            AssistantMessage(
                response_id=event.response_id,
                item_id=item_id,
                text=text,
                audio_ms=output.audio_bytes // per_ms,
            )
        )

    # --- barge-in ------------------------------------------------------------------

    def _server_cancels(self) -> bool:
        """Whether server VAD cancels the active response itself on speech."""
        config = self.rt.config
        audio = config.audio if config is not None else None
        if isinstance(audio, RealtimeAudioConfig) and isinstance(
            audio.input, RealtimeAudioConfigInput
        ):
            td = audio.input.turn_detection
            if isinstance(td, (ServerVad, SemanticVad)):
                return td.interrupt_response is not False
        return False

    async def _barge_in(self, *, server_cancels: bool) -> None:
        sink = self.rt.sink
        item_id = self.last_audio_item
        played = 0
        truncated = False
        if sink is not None and item_id is not None and sink.playing:
            output = self.outputs.get(item_id)
            received = output.audio_bytes // sink.bytes_per_ms if output is not None else 0
            played = min(sink.played_ms(item_id), received)
            sink.clear()
            if 0 < played < received:
                # Only what was heard stays in the model's context.
                await self.rt.outbox.send(
                    ConversationItemTruncateEvent(
                        event_id=self.rt.outbox.next_id("truncate"),
                        item_id=item_id,
                        content_index=0,
                        audio_end_ms=played,
                    )
                )
                self.stats["truncates"] += 1
                truncated = True
        if self.active is not None and not server_cancels:
            await self.rt.outbox.send(
                ResponseCancelEvent(event_id=self.rt.outbox.next_id("cancel"))
            )
            self.stats["cancels"] += 1
        if truncated or self.active is not None:
            interrupted = Interrupted(item_id=item_id, played_ms=played, truncated=truncated)
            self.rt.publish(interrupted)
            self.rt.call_hook("on_interrupted", interrupted)


def _merge(first: CreateResponse, second: CreateResponse) -> CreateResponse:
    """Two queued requests become one: the later one's parameters win."""
    return second if second.params is not None else first
