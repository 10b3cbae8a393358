"""The ResponseActor: response lifecycle, output assembly, playback, barge-in, turns.

Inbox: :data:`ResponseInbox`. It owns:

* **sequencing**: never two ``response.create`` in flight. A request made
  while a response runs is queued; several queued requests merge into one.
  A create the server refuses because a response is active is retried after
  it ends, not dropped. When every call of a response has its output, exactly
  one follow-up is asked for (none if every call was told to finish silently).
* **whether the session is quiet**: no response running, asked for or owed,
  and no call outstanding. It is derived from this state, which only messages
  change; ``NotifyWhenQuiet`` waiters are told as soon as it holds. A waiter's
  message follows, in this inbox, everything its sender asked for before.
* **output assembly**: text and transcripts per item; each finished message
  and each response published as an application event; usage summed.
* **the sink**: audio deltas go to it as they arrive, for every message of a
  response, in order; it reports what played.
* **barge-in**: when the user speaks over playing audio, the sink stops and
  the item *playing* is truncated at the position actually played (clamped to
  what was received; no truncate when nothing played). ``response.cancel``
  goes out only when the server will not cancel by itself.
* **a lost connection** (``ConnectionLost``; the responses it cut arrive as
  ``ResponseEnded`` with ``cut``): a ``response.create`` still unanswered is
  asked again, and so is a cut response that had neither calls nor a finished
  message, so the user's turn still gets its answer on the new connection.

Bounds: per-item output records for the last :data:`KEPT_OUTPUTS` items; call
results that come before their response's end, :data:`EARLY_RESULTS`.

It runs no user code. It ends when every sender has closed its end.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias, cast

import attrs
import trio

from framework.audio import AudioFormat, AudioSink, bytes_per_ms
from framework.protocol import (
    ClientEvent,
    ConversationItemTruncateEvent,
    RealtimeResponse,
    ResponseCancelEvent,
    ResponseCreateEvent,
)

from ._contracts import AudioTap
from ._events import (
    AssistantDelta,
    AssistantMessage,
    EventHub,
    Interrupted,
    ResponseFinished,
    Usage,
)
from ._messages import (
    AudioDelta,
    BargedIn,
    CallFinished,
    ConnectionLost,
    CreateRefused,
    CreateResponse,
    EventIds,
    Interrupt,
    MessageDone,
    NotifyWhenQuiet,
    ResponseEnded,
    ResponseInbox,
    ResponseStarted,
    SessionConfigured,
)

_log = logging.getLogger("cantata.response")

KEPT_OUTPUTS = 64
"""Assistant items whose text and audio length are kept (for messages and truncation)."""
EARLY_RESULTS = 256
"""Call results kept while their response has not ended yet."""


@attrs.define
class _Output:
    """What one assistant item has produced so far."""

    response_id: str
    text: str = ""
    audio_bytes: int = 0
    done: bool = False


@attrs.define
class _Batch:
    """The calls of one ended response that have no output yet."""

    waiting: set[str]
    speak: bool = False


class ResponseActor:
    """Sequences responses and plays their output (see the module docstring).

    Args:
        inbox: its inbox.
        outbox: a send end of the outbox.
        events: where application events go.
        sink: where assistant audio plays, if anywhere.
        on_done: told each whole response, as ``response.done`` carried it (the
            hook runner's; the application's event keeps only id, status and
            usage, so a queue of events holds no responses' items).
        on_quiet: told each time the session becomes quiet (the metrics' turn end).
        taps: see the assistant's audio as it goes to the sink, and where a
            barge-in stopped it.
    """

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[ResponseInbox],
        *,
        outbox: trio.MemorySendChannel[ClientEvent],
        events: EventHub,
        sink: AudioSink | None = None,
        on_done: Callable[[RealtimeResponse], None] | None = None,
        on_quiet: Callable[[], None] | None = None,
        taps: Sequence[AudioTap] = (),
    ) -> None:
        self._inbox = inbox
        self._on_done = on_done
        self._on_quiet = on_quiet
        self._taps = tuple(taps)
        self._outbox = outbox
        self._events = events
        self._sink = sink
        self._server_interrupts = False
        self._format: AudioFormat = None  # the assistant's audio, as the server confirmed it
        self.active: str | None = None  # the response the server is running
        self.in_flight: str | None = None  # event_id of a response.create not yet answered
        self.queued: CreateResponse | None = None
        self.attributed: deque[str] = deque(maxlen=16)  # creates matched to a response.created
        self.batches: dict[str, _Batch] = {}
        self.early: OrderedDict[str, bool] = OrderedDict()  # call results before their response
        self.outputs: OrderedDict[str, _Output] = OrderedDict()
        self.last_audio_item: str | None = None
        self.usage = Usage()
        self.stats = {"creates_sent": 0, "creates_merged": 0, "truncates": 0, "cancels": 0}
        self._waiters: list[trio.Event] = []
        self._ids = EventIds()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            with self._inbox, self._outbox:
                async for message in self._inbox:
                    was_busy = self.busy
                    await _HANDLERS[type(message)](self, message)
                    if not self.busy:
                        if was_busy and self._on_quiet is not None:
                            self._on_quiet()
                        if self._waiters:
                            self._wake()
        finally:
            self._wake()  # the session is over: nobody waits for quiet any more

    @property
    def busy(self) -> bool:
        """Whether a response runs, is asked for or owed, or a call is outstanding."""
        return bool(self.active or self.in_flight or self.queued or self.batches)

    @property
    def outstanding(self) -> int:
        """How many of those things there are (0 when quiet)."""
        return sum(map(bool, (self.active, self.in_flight, self.queued))) + len(self.batches)

    def _wake(self) -> None:
        for waiter in self._waiters:
            waiter.set()
        self._waiters.clear()

    async def _notify_when_quiet(self, message: NotifyWhenQuiet) -> None:
        self._waiters.append(message.quiet)

    async def _configured(self, message: SessionConfigured) -> None:
        self._server_interrupts = message.server_interrupts
        self._format = message.output_format
        # The sink times what it plays by the bytes it gets: it must read them in
        # the session's format (G.711 is 8 bytes a millisecond, PCM16 48).
        follow = getattr(self._sink, "set_format", None)
        if follow is not None:
            follow(message.output_format)
        for tap in self._taps:
            tap.formats(message.input_format, message.output_format)

    async def _connection_lost(self, message: ConnectionLost) -> None:
        self.attributed.clear()
        if self.in_flight is not None and self.in_flight == message.lost_create:
            # It went out on the connection that is gone and was never answered
            # there: asked again on the new one. (One still in the outbox goes
            # out on the new connection by itself.)
            self.in_flight = None
            self.queued = _merge(CreateResponse(reason="reconnect"), self.queued)
        await self._send_queued()

    # --- sequencing --------------------------------------------------------------------

    async def _create(self, command: CreateResponse) -> None:
        if self.active or self.in_flight:
            if self.queued is not None:
                self.stats["creates_merged"] += 1
            self.queued = _merge(self.queued, command)
            return
        await self._send_create(command)

    async def _send_create(self, command: CreateResponse) -> None:
        event_id = self.in_flight = self._ids("create")
        self.stats["creates_sent"] += 1
        event = (
            ResponseCreateEvent(event_id=event_id, response=command.params)
            if command.params is not None
            else ResponseCreateEvent(event_id=event_id)
        )
        await self._outbox.send(event)

    async def _send_queued(self) -> None:
        if self.queued is not None and not (self.active or self.in_flight):
            command, self.queued = self.queued, None
            await self._send_create(command)

    async def _started(self, message: ResponseStarted) -> None:
        if self.in_flight is not None:
            # Taken as ours; if the server refuses our create after all, this
            # was its own response (a VAD turn) and ours is still owed.
            self.attributed.append(self.in_flight)
            self.in_flight = None
        self.active = message.response_id

    async def _ended(self, message: ResponseEnded) -> None:
        self.usage.add(message.usage)
        self._events.publish(
            ResponseFinished(
                response_id=message.response_id,
                status=message.status,
                usage=message.usage,
            )
        )
        if self._on_done is not None:
            self._on_done(message.response)
        if message.response_id == self.active:
            self.active = None
        if message.cut and not message.call_ids and not self._finished_a_message(message):
            self.queued = _merge(CreateResponse(reason="reconnect"), self.queued)
        if message.call_ids:
            batch = _Batch(waiting=set(message.call_ids))
            for call_id in message.call_ids:
                if call_id in self.early:
                    batch.speak |= self.early.pop(call_id)
                    batch.waiting.discard(call_id)
            self.batches[message.response_id] = batch
            await self._settle(message.response_id)
        await self._send_queued()

    def _finished_a_message(self, message: ResponseEnded) -> bool:
        return any(o.done and o.response_id == message.response_id for o in self.outputs.values())

    async def _refused(self, message: CreateRefused) -> None:
        if message.event_id == self.in_flight:
            self.in_flight = None
        elif message.event_id in self.attributed:
            self.attributed.remove(message.event_id)
        else:
            return
        if message.code == "conversation_already_has_active_response":
            # Not dropped: asked again once the active response is done.
            self.queued = _merge(CreateResponse(reason="retry"), self.queued)
        else:
            _log.warning("response.create refused: %s", message.message)
        await self._send_queued()

    # --- calls ---------------------------------------------------------------------------

    async def _call_finished(self, message: CallFinished) -> None:
        for response_id, batch in self.batches.items():
            if message.call_id in batch.waiting:
                batch.waiting.discard(message.call_id)
                batch.speak |= message.speak
                await self._settle(response_id)
                return
        # Its response has not ended yet: remembered until it does.
        self.early[message.call_id] = message.speak
        if len(self.early) > EARLY_RESULTS:
            self.early.popitem(last=False)

    async def _settle(self, response_id: str) -> None:
        """Once a response's calls all have outputs: one follow-up, if any wants a reply."""
        batch = self.batches[response_id]
        if batch.waiting:
            return
        del self.batches[response_id]
        if batch.speak:
            await self._create(CreateResponse(reason="tool outputs"))

    # --- output --------------------------------------------------------------------------

    def _output(self, item_id: str, response_id: str) -> _Output:
        output = self.outputs.get(item_id)
        if output is None:
            output = self.outputs[item_id] = _Output(response_id)
            if len(self.outputs) > KEPT_OUTPUTS:
                self.outputs.popitem(last=False)
        return output

    async def _delta(self, message: AssistantDelta) -> None:
        self._output(message.item_id, message.response_id).text += message.delta
        self._events.publish(message)

    async def _audio(self, message: AudioDelta) -> None:
        self._output(message.item_id, message.response_id).audio_bytes += len(message.audio)
        self.last_audio_item = message.item_id
        if self._sink is not None:
            self._sink.write(message.item_id, message.audio)
        for tap in self._taps:
            tap.assistant_audio(message.item_id, message.audio)

    async def _message_done(self, message: MessageDone) -> None:
        output = self._output(message.item_id, message.response_id)
        output.done = True
        self._events.publish(
            AssistantMessage(
                response_id=message.response_id,
                item_id=message.item_id,
                text=output.text or message.text,
                audio_ms=output.audio_bytes // bytes_per_ms(self._format),
            )
        )

    # --- barge-in ------------------------------------------------------------------------

    def _playing_item(self) -> str | None:
        """The item the sink is playing now (sinks that cannot say: the last one received)."""
        item: str | None = getattr(self._sink, "playing_item", self.last_audio_item)
        return item

    async def _barged_in(self, message: BargedIn) -> None:
        await self._barge_in(server_cancels=self._server_interrupts)

    async def _interrupt(self, message: Interrupt) -> None:
        await self._barge_in(server_cancels=False)

    async def _barge_in(self, *, server_cancels: bool) -> None:
        sink = self._sink
        item_id = self._playing_item() if sink is not None else self.last_audio_item
        played = 0
        truncated = False
        if sink is not None and item_id is not None and sink.playing:
            output = self.outputs.get(item_id)
            received = output.audio_bytes // bytes_per_ms(self._format) if output is not None else 0
            played = min(sink.played_ms(item_id), received)
            sink.clear()
            for tap in self._taps:
                tap.playback_stopped(item_id, played)
            if 0 < played < received:
                # Only what was heard stays in the model's context.
                await self._outbox.send(
                    ConversationItemTruncateEvent(
                        event_id=self._ids("truncate"),
                        item_id=item_id,
                        content_index=0,
                        audio_end_ms=played,
                    )
                )
                self.stats["truncates"] += 1
                truncated = True
        if self.active is not None and not server_cancels:
            await self._outbox.send(ResponseCancelEvent(event_id=self._ids("cancel")))
            self.stats["cancels"] += 1
        if truncated or self.active is not None:
            self._events.publish(
                Interrupted(item_id=item_id, played_ms=played, truncated=truncated)
            )


def _merge(first: CreateResponse | None, second: CreateResponse | None) -> CreateResponse | None:
    """Two queued requests become one: the later one's parameters win."""
    if first is None or (second is not None and second.params is not None):
        return second
    return first


_Handler: TypeAlias = Callable[[ResponseActor, ResponseInbox], Awaitable[None]]
_HANDLERS: dict[type[ResponseInbox], _Handler] = {
    kind: cast(_Handler, handler)
    for kind, handler in (
        (CreateResponse, ResponseActor._create),
        (Interrupt, ResponseActor._interrupt),
        (NotifyWhenQuiet, ResponseActor._notify_when_quiet),
        (SessionConfigured, ResponseActor._configured),
        (ResponseStarted, ResponseActor._started),
        (AssistantDelta, ResponseActor._delta),
        (AudioDelta, ResponseActor._audio),
        (MessageDone, ResponseActor._message_done),
        (ResponseEnded, ResponseActor._ended),
        (BargedIn, ResponseActor._barged_in),
        (CreateRefused, ResponseActor._refused),
        (CallFinished, ResponseActor._call_finished),
        (ConnectionLost, ResponseActor._connection_lost),
    )
}
"""What each message does (every message type of the inbox has one)."""
