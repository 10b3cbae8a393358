"""The SessionActor: the connection and its lifecycle, the session config, handoffs.

It owns the connection (a :class:`~._continuity.Line`, replaced when it
drops, expires or fails), the configuration the server confirmed, the agent
in charge, the :class:`Toolset` and the history mirror. Its tasks, in its own
nursery:

* the **writer** serializes the outbox onto the current line in order; it
  ends when every sender has closed its end (``EndOfChannel``), after the
  last event;
* the **reader** (the actor's own task) parses every server frame once,
  updates the history and translates the event into the other actors'
  messages (:mod:`._edge`); it runs no user code and never waits on the
  application;
* the **inbox** loop takes :class:`HandOff`, :class:`ToolsChanged` and
  :class:`CloseSession`; a short **retool** task batches tool changes;
* one task per open line holds it open (:func:`~._continuity.hold_line`), and
  a **rollover** watcher per line waits for its expiry.

Start-up: ``session.created``, the agent's ``session.update``, then
``session.updated``; only then does ``task_status.started()`` fire, so a
refused configuration surfaces at ``open_session`` as :class:`SessionRefused`.

**Continuity** (policy: :class:`~._continuity.Continuity`). The other actors
see only messages: ``ResponseEnded`` (``cut``) for responses the line took
with it, ``ConnectionLost`` and ``ConnectionRestored``.

* *A drop* (a close that is not orderly, or the server's ``session_expired``):
  the line's open responses end as cut, the audio is held, and the session
  dials again with jittered exponential back-off (:class:`Reconnecting` per
  attempt), the endpoints in order from the one that dropped, each for a few
  attempts (failover), within a time bound; then the handshake with the
  configuration in force, the **replay** (the history mirror, and the items
  sent that the server never confirmed, re-created with their own ids) and
  only then the outbox again, so a tool's output sent across the drop lands
  after its call (:class:`Reconnected`). Past the bounds, the session ends
  with the drop's :class:`ConnectionClosed`.
* *A rollover*: ahead of ``expires_at`` the next line is opened, configured
  and replayed while the old one serves on; at a quiet moment (no response
  running or owed, no call outstanding, the user silent), or at the margin
  before the expiry, the writer stops between two events, what changed since
  the replay is caught up, and the new line takes over; the old one closes
  normally (:class:`RolledOver`). Every event of the outbox goes to exactly
  one line, so no audio is lost or sent twice.

Items the client creates are given ids (when they have none), so that the
server's ``conversation.item.added`` confirms each one; those not confirmed
when a line is lost are replayed.

Shutdown (:class:`CloseSession`): the reader stops, so nothing new comes in;
the edge's send ends close, so the other actors end their work in order; the
writer drains the outbox and ends. A close by the server, or a drop with no
way back, ends the session with :class:`ConnectionClosed` instead.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
from collections import OrderedDict
from collections.abc import Sequence

import attrs
import trio

from framework.audio import bytes_per_ms
from framework.errors import ConnectionClosed, SessionRefused, single_errors
from framework.protocol import (
    UNSET,
    ClientEvent,
    ConversationItem,
    ConversationItemAdded,
    ConversationItemCreatedEvent,
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    ProtocolError,
    RealtimeAudioConfig,
    RealtimeAudioConfigOutput,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeSessionCreateRequest,
    ResponseCreateEvent,
    ServerEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
    VoiceID,
    parse_server_event,
    to_dict,
    to_json,
)
from framework.tools import FunctionTool

from ._audio_actor import frame_text
from ._continuity import (
    FAILURES,
    Checkpoint,
    Continuity,
    Endpoint,
    Line,
    backoff,
    expiry_on_clock,
    given_line,
    hold_line,
    replay_item,
    replay_items,
    retryable,
)
from ._contracts import AgentLike, Contribution, SessionConfigRequest, SessionPlugin, Wire
from ._edge import Edge, malformed
from ._events import (
    ErrorReported,
    EventHub,
    HandedOff,
    Reconnected,
    Reconnecting,
    RolledOver,
    ServerEventReceived,
    SessionStarted,
)
from ._handle import Session
from ._history import History
from ._messages import (
    AudioInbox,
    CloseSession,
    CreateResponse,
    EventIds,
    HandOff,
    ResponseInbox,
    SessionInbox,
    ToolInbox,
    ToolsChanged,
)
from ._metrics import MetricsCollector
from ._toolset import Toolset

_log = logging.getLogger("cantata.session")

HANDSHAKE_TIMEOUT_S = 15.0
"""From the connection to the server's ``session.updated`` for the agent's configuration."""
RETOOL_DELAY_S = 0.05
"""Tool changes closer together than this become one ``session.update``."""
UNCONFIRMED = 256
"""Items created and not yet confirmed that are remembered for a replay; past it the oldest go."""

MOVED = (
    "The call was interrupted: the conversation moved to another server before its "
    "result arrived, and it {what}. Call it again if it is still needed."
)


_KEPT_ACROSS = (
    InputAudioBufferAppendEvent,
    InputAudioBufferCommitEvent,
    InputAudioBufferClearEvent,
)
"""Events in hand when a line drops that are sent on the next one (the user's audio)."""


_NAMEABLE = (
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
)
"""The items a client creates whose id it may leave to the server (or name itself)."""


def _named(
    item: RealtimeConversationItemSystemMessage
    | RealtimeConversationItemUserMessage
    | RealtimeConversationItemAssistantMessage
    | RealtimeConversationItemFunctionCall
    | RealtimeConversationItemFunctionCallOutput,
    item_id: str,
) -> ConversationItem:
    named: ConversationItem = attrs.evolve(item, id=item_id)
    return named


def _voice(config: RealtimeSessionCreateRequest | None) -> str | VoiceID | None:
    """The voice a confirmed configuration names, if it names one."""
    audio = config.audio if config is not None else None
    output = audio.output if isinstance(audio, RealtimeAudioConfig) else None
    voice = output.voice if isinstance(output, RealtimeAudioConfigOutput) else None
    return voice if isinstance(voice, str | VoiceID) else None


def _id(item: ConversationItem) -> str:
    return str(getattr(item, "id", ""))


@attrs.frozen
class _Drained:
    """The outbox ended: the session is over."""


@attrs.frozen
class _Switch:
    """The rollover watcher has the next line ready."""


class SessionActor:
    """Owns the connection and the session's configuration (see the module docstring).

    Args:
        agent: the agent in charge at the start.
        plugins: the session's open plugins and what each contributes.
        inbox: its inbox.
        outbox: the receive end of the outbox (the writer's).
        updates: a send end of the outbox, for its own ``session.update`` events.
        to_responses: the ResponseActor's inbox.
        to_tools: the ToolExecutionActor's inbox.
        to_audio: the AudioInputActor's inbox.
        events: where application events go.
        connection: an open wire to start on (then ``endpoints`` are only for
            reconnecting); ``None``: dial ``endpoints[0]``.
        endpoints: where to connect, in order of preference.
        continuity: the reconnect, failover and rollover policy.
        metrics: sees what is sent and translated.
        resume: a checkpoint to rebuild the conversation from.
        raw_events: also publish every server event.
    """

    def __init__(
        self,
        *,
        agent: AgentLike,
        plugins: list[tuple[SessionPlugin, Contribution]],
        inbox: trio.MemoryReceiveChannel[SessionInbox],
        outbox: trio.MemoryReceiveChannel[ClientEvent],
        updates: trio.MemorySendChannel[ClientEvent],
        to_responses: trio.MemorySendChannel[ResponseInbox],
        to_tools: trio.MemorySendChannel[ToolInbox],
        to_audio: trio.MemorySendChannel[AudioInbox] | None = None,
        events: EventHub,
        connection: Wire | None = None,
        endpoints: Sequence[Endpoint] = (),
        continuity: Continuity | None = None,
        metrics: MetricsCollector | None = None,
        resume: Checkpoint | None = None,
        raw_events: bool = False,
    ) -> None:
        if connection is None and not endpoints:
            raise ValueError("a session needs a connection or an endpoint to dial")
        self._connection = connection
        self._endpoints = tuple(endpoints)
        self._policy = continuity or Continuity()
        self._inbox = inbox
        self._outbox = outbox
        self._updates = updates
        self._events = events
        self._raw = raw_events
        self._plugins = plugins
        self._metrics = metrics
        self._resume = resume
        self.agent = agent
        self.toolset = Toolset.build(agent, plugins, strict=True)
        self.config: SessionConfigRequest | None = None
        self.session_id = ""
        self.history = History()
        self.handle: Session | None = None
        self._edge = Edge(
            self,
            to_responses=to_responses,
            to_tools=to_tools,
            to_audio=to_audio,
            events=events,
            observe=metrics.message if metrics is not None else None,
        )
        self._nursery: trio.Nursery | None = None
        self._line: Line | None = None
        self._standby: tuple[Line, dict[str, dict[str, object]], bool] | None = None
        self._held: ClientEvent | None = None  # taken from the outbox, not yet on a wire
        self._unconfirmed: OrderedDict[str, tuple[str | None, ConversationItem]] = OrderedDict()
        self._item_ids = (f"item_c{secrets.token_hex(4)}{n:06d}" for n in itertools.count(1))
        self._retooling = trio.CancelScope()
        self._tools_changed = trio.Event()
        self._closing = False
        self._next_id = EventIds()
        self.frames = 0
        self.finished = trio.Event()
        """Set when the actor has ended, in order or not."""

    @property
    def tools(self) -> dict[str, FunctionTool]:
        """The function tools offered now, by name."""
        return dict(self.toolset.tools)

    @property
    def endpoint(self) -> str:
        """The endpoint the session is on now."""
        line = self._line
        if line is None or line.endpoint < 0:
            return "the connection it was given"
        return self._endpoints[line.endpoint].label

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with single_errors():
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    line = await self._first_line()
                    with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                        await self._handshake(line, first=True)
                    if self._resume is not None:
                        await self._resume_from(line, self._resume)
                    self._in_service(line)
                    nursery.start_soon(self._serve_inbox)
                    nursery.start_soon(self._retool)
                    task_status.started()
                    await self._run_lines(line)
                    nursery.cancel_scope.cancel()  # rollover watchers; lines are closed
        except Exception as error:
            self._events.end(error)  # wakes whoever waits on the session, wherever they are
            raise
        finally:
            self.finished.set()

    # --- lines -------------------------------------------------------------------------

    async def _open(self, index: int) -> Line:
        """Opens the connection to endpoint ``index``, held open by a task of its own."""
        assert self._nursery is not None
        opener = self._endpoints[index].open(self.agent.model)
        line: Line = await self._nursery.start(hold_line, opener, index)
        return line

    async def _first_line(self) -> Line:
        if self._connection is not None:
            return given_line(self._connection)
        first: Exception | None = None
        for index in range(len(self._endpoints)):
            try:
                return await self._open(index)
            except FAILURES as error:
                # A failover list is tried in order at the start too; the first
                # endpoint's error is the one reported. A warning says so only
                # when another endpoint is still to be tried: the error itself
                # reaches the caller, and a second copy of it is noise.
                first = first or error
                if index + 1 < len(self._endpoints):
                    _log.warning(
                        "cannot connect to %s: %s; trying the next endpoint",
                        self._endpoints[index].label,
                        error,
                    )
        assert first is not None
        raise first

    async def _run_lines(self, line: Line) -> None:
        """Serves lines, one after the other, until the outbox is drained."""
        try:
            while True:
                ended = await self._serve(line)
                if isinstance(ended, _Drained):
                    return
                old = line
                if isinstance(ended, _Switch):
                    line = await self._switch(old)
                else:
                    line = await self._recover(old, ended)
                assert self._nursery is not None
                self._nursery.start_soon(old.close)
        finally:
            self._outbox.close()
            if self._line is not None:
                with trio.CancelScope(shield=True):
                    await self._line.close()

    async def _serve(self, line: Line) -> _Drained | _Switch | ConnectionClosed:
        """Reads and writes ``line`` until the outbox drains, a switch, or a drop."""
        ended: _Drained | _Switch | ConnectionClosed | None = None
        async with trio.open_nursery() as nursery:

            async def write() -> None:
                nonlocal ended
                try:
                    drained = await self._write(line)
                except ConnectionClosed as error:
                    ended = ended or error
                    nursery.cancel_scope.cancel()
                    return
                if drained:
                    ended = _Drained()

            nursery.start_soon(write)
            try:
                with line.reading:
                    await self._read(line)
            except ConnectionClosed as error:
                if error.normal and not line.expired:
                    raise  # the server closed the session on purpose: it is over
                if self._closing:
                    raise  # no reconnect while shutting down
                ended = error
                nursery.cancel_scope.cancel()
            else:
                if self._closing and not self._edge.closed:
                    self._edge.close()  # intake stopped: the others finish their work
        if ended is None:
            return _Switch() if line.switching else _Drained()
        return ended

    async def _write(self, line: Line) -> bool:
        """Writes the outbox to ``line``; True once it is drained, False when stopped."""
        while True:
            if self._held is None:
                if line.switching:
                    return False
                try:
                    # What is queued is taken without a cancel scope or a task switch;
                    # the wire's send checkpoints.
                    self._held = self._outbox.receive_nowait()
                except trio.WouldBlock:
                    with trio.CancelScope() as line.waiting:
                        try:
                            self._held = await self._outbox.receive()
                        except trio.EndOfChannel:
                            return True
                    line.waiting = None
                    if self._held is None:
                        return False
                except trio.EndOfChannel:
                    return True
            event = self._held = self._stamped(self._held)
            if isinstance(event, ConversationItemTruncateEvent) and event.item_id in line.replayed:
                await self._cut_replayed(line, event)
            else:
                await self._send_on(line, frame_text(event))
            self._held = None
            if isinstance(event, ResponseCreateEvent) and isinstance(event.event_id, str):
                line.last_create = event.event_id
            if self._metrics is not None:
                self._metrics.sent(event)

    def can_write_now(self) -> bool:
        """Whether a frame may be written at once, in the caller's task (:meth:`write_now`).

        Only while the writer waits on an empty outbox and nothing is being
        written: the frame then follows everything written before it and
        precedes whatever is queued after it.
        """
        line = self._line
        if line is None or line.switching or line.waiting is None or self._held is not None:
            return False
        if line.writing.locked():
            return False
        # A message handed to the waiting writer has left the queue but is not written
        # yet: the writer is then no longer among the receivers waiting.
        return self._outbox.statistics().tasks_waiting_receive > 0

    async def write_now(self, text: str) -> bool:
        """Writes ``text`` on the line, in the caller's task; False when the line dropped.

        Call it right after :meth:`can_write_now` said yes, with no checkpoint
        between. A cancel of the caller does not cut the frame: a Realtime
        connection writes whole frames, and any other wire is shielded here.
        """
        line = self._line
        assert line is not None
        try:
            if line.whole_frames:
                await self._send_on(line, text)
            else:
                with trio.CancelScope(shield=True):
                    await self._send_on(line, text)
        except ConnectionClosed:
            return False
        return True

    async def _send_on(self, line: Line, text: str) -> None:
        """The writer's write: after any frame being written at once, in order."""
        lock = line.writing
        try:
            lock.acquire_nowait()  # no checkpoint when it is free: the send has its own
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await line.wire.send_text(text)
        finally:
            lock.release()

    async def _cut_replayed(self, line: Line, event: ConversationItemTruncateEvent) -> None:
        """A barge-in into audio this line's server never had (the item was replayed as
        text): the item is re-created with the words the user heard, in its place."""
        known = self.history.get(event.item_id)
        if known is None:
            return
        known.truncated_ms = event.audio_end_ms
        heard = replay_item(known, self._output_bytes_per_ms())
        delete = ConversationItemDeleteEvent(event_id=self._next_id("cut"), item_id=event.item_id)
        await self._send_on(line, to_json(delete))
        if heard is not None:
            create = ConversationItemCreateEvent(
                event_id=self._next_id("cut"),
                previous_item_id=self.history.before(event.item_id) or "root",
                item=heard,
            )
            await self._send_on(line, to_json(create))

    def _stamped(self, event: ClientEvent) -> ClientEvent:
        """Names an item the client creates, and remembers it until the server confirms it."""
        if not isinstance(event, ConversationItemCreateEvent):
            return event
        item = event.item
        item_id = getattr(item, "id", None)
        if not isinstance(item_id, str) or not item_id:
            if not isinstance(item, _NAMEABLE):
                return event  # nothing to name (the server will say what is wrong)
            item_id = next(self._item_ids)
            event = attrs.evolve(event, item=_named(item, item_id))
        if item_id not in self._unconfirmed:
            event_id = event.event_id if isinstance(event.event_id, str) else None
            self._unconfirmed[item_id] = (event_id, event.item)
            if len(self._unconfirmed) > UNCONFIRMED:
                self._unconfirmed.popitem(last=False)
        return event

    async def _next(self, line: Line) -> ServerEvent | None:
        text = await line.wire.receive_text()
        self.frames += 1
        try:
            return parse_server_event(text)
        except ProtocolError as e:
            _log.warning("malformed server event: %s", e)
            self._events.publish(malformed(str(e)))
            return None

    async def _read(self, line: Line) -> None:
        # A switch stops the reader only while it waits for a frame, never halfway
        # through routing one: the line shows the switch this scope only while the
        # reader waits. One scope serves every frame (a scope costs a few
        # microseconds, and a voice session reads hundreds of frames a minute). A
        # frame that arrived as the switch came is dropped, as its line is.
        with trio.CancelScope() as listening:
            while not line.switching:
                line.listening = listening
                event = await self._next(line)
                line.listening = None
                if event is not None and not line.switching:
                    await self._route(event, line)

    async def _route(self, event: ServerEvent, line: Line) -> None:
        self.history.apply(event)
        if self._raw:
            self._events.publish(ServerEventReceived(event=event))
        if isinstance(event, ConversationItemAdded | ConversationItemCreatedEvent):
            item_id = getattr(event.item, "id", None)
            if isinstance(item_id, str):
                self._unconfirmed.pop(item_id, None)
        elif isinstance(event, SessionUpdatedEvent) and isinstance(
            event.session, SessionConfigRequest
        ):
            self.config = event.session
        elif isinstance(event, RealtimeErrorEvent):
            self._refused_item(event.error)
            if event.error.code == "session_expired":
                line.expired = True  # the close that follows is not the end of the session
        await self._edge.translate(event)

    def _refused_item(self, error: RealtimeError) -> None:
        if not isinstance(error.event_id, str):
            return
        for item_id, (event_id, _) in self._unconfirmed.items():
            if event_id == error.event_id:
                del self._unconfirmed[item_id]
                return

    # --- start-up and the handshake ----------------------------------------------------

    async def _handshake(self, line: Line, *, first: bool = False, route: bool = True) -> None:
        """``session.created``, the configuration in force, ``session.updated``."""
        while True:
            event = await self._next(line)
            if isinstance(event, SessionCreatedEvent):
                break
        extra = getattr(event.session, "extra", {})
        line.session_id = extra.get("id", "") if isinstance(extra.get("id"), str) else ""
        line.expires_at = expiry_on_clock(extra.get("expires_at"))
        if first:
            self.session_id = line.session_id  # the instructions may name it
        start = self._next_id("start")
        update = SessionUpdateEvent(event_id=start, session=self._config_for(line))
        await line.wire.send_text(to_json(update))
        while True:
            event = await self._next(line)
            if event is None:
                continue
            if isinstance(event, RealtimeErrorEvent) and event.error.event_id == start:
                raise SessionRefused(event.error)
            if route:
                await self._route(event, line)
            if isinstance(event, SessionUpdatedEvent):
                break
        if first:
            model = (
                self.config.model if isinstance(self.config, RealtimeSessionCreateRequest) else None
            )
            self._events.publish(
                SessionStarted(
                    session_id=self.session_id,
                    model=model if isinstance(model, str) else "",
                    agent=self.agent.name,
                )
            )

    def _in_service(self, line: Line) -> None:
        """``line`` is the session's connection now; its rollover is watched for."""
        self._line = line
        self.session_id = line.session_id or self.session_id
        if self._closing:
            line.reading.cancel()
        if self._policy.rollover and self._endpoints and line.expires_at is not None:
            assert self._nursery is not None
            self._nursery.start_soon(self._roll, line)

    def _config_now(self, *, handoff: bool = False) -> SessionConfigRequest:
        """The agent's ``session.update`` payload, with the plugins' tools and instructions."""
        current = self.config if isinstance(self.config, RealtimeSessionCreateRequest) else None
        config = self.agent.session_config(
            keep_audio_from=current if handoff else None,
            session=self.handle,
            tools=list(self.toolset.definitions),
        )
        added = self.toolset.instructions
        if added and isinstance(config, RealtimeSessionCreateRequest):
            own = config.instructions if isinstance(config.instructions, str) else ""
            config = attrs.evolve(config, instructions=f"{own}\n\n{added}" if own else added)
        return config

    def _config_for(self, line: Line) -> SessionConfigRequest:
        """The configuration for a new connection: the agent's, with the audio in force.

        The formats in force are restated (a handoff may have kept them), and
        so is the voice: a new session starts with the server's default one.
        (The model is the endpoint's, in its URL.)
        """
        current = self.config if isinstance(self.config, RealtimeSessionCreateRequest) else None
        config = self._config_now(handoff=current is not None)
        voice = _voice(current)
        if voice is None or not isinstance(config, RealtimeSessionCreateRequest):
            return config
        audio = config.audio if isinstance(config.audio, RealtimeAudioConfig) else None
        output = audio.output if audio is not None else None
        if isinstance(output, RealtimeAudioConfigOutput) and output.voice not in (UNSET, None):
            return config
        output = (
            attrs.evolve(output, voice=voice)
            if isinstance(output, RealtimeAudioConfigOutput)
            else RealtimeAudioConfigOutput(voice=voice)
        )
        audio = (
            attrs.evolve(audio, output=output)
            if audio is not None
            else RealtimeAudioConfig(output=output)
        )
        return attrs.evolve(config, audio=audio)

    # --- replay ------------------------------------------------------------------------

    def _replayed(self) -> tuple[list[ConversationItem], int]:
        unconfirmed = [item for _, item in self._unconfirmed.values()]
        return replay_items(self.history, unconfirmed, self._output_bytes_per_ms())

    def _output_bytes_per_ms(self) -> int:
        config = self.config
        audio = config.audio if isinstance(config, RealtimeSessionCreateRequest) else None
        output = audio.output if isinstance(audio, RealtimeAudioConfig) else None
        try:
            return bytes_per_ms(getattr(output, "format", None))
        except ValueError:
            return 48

    async def _create_items(self, line: Line, items: Sequence[ConversationItem]) -> None:
        line.replayed.update(_id(item) for item in items)
        for item in items:
            event = ConversationItemCreateEvent(event_id=self._next_id("replay"), item=item)
            await line.wire.send_text(to_json(event))

    def _keep_audio_bytes(self) -> int:
        config = self.config
        audio = config.audio if isinstance(config, RealtimeSessionCreateRequest) else None
        part = audio.input if isinstance(audio, RealtimeAudioConfig) else None
        fmt = getattr(part, "format", None)
        try:
            return int(self._policy.hold_audio_s * 1000) * bytes_per_ms(fmt)
        except ValueError:
            return int(self._policy.hold_audio_s * 1000) * 48

    # --- a drop: reconnect and failover ------------------------------------------------

    async def _recover(self, old: Line, error: ConnectionClosed) -> Line:
        """Dials again after ``old`` dropped; raises ``error`` when there is no way back."""
        if not self._policy.reconnect or not self._endpoints or self._closing:
            raise error
        lost_at = trio.current_time()
        await self._lose(old)
        line, attempts = await self._redial(old, error)
        items, _ = self._replayed()
        await self._create_items(line, items)
        self._in_service(line)
        await self._edge.line_restored()
        self._events.publish(
            Reconnected(
                endpoint=self._endpoints[line.endpoint].label,
                attempts=attempts,
                outage_ms=round((trio.current_time() - lost_at) * 1000, 3),
                replayed=len(items),
                failed_over=line.endpoint != old.endpoint,
            )
        )
        return line

    async def _lose(self, old: Line) -> None:
        """The actors are told ``old`` is gone; what it took with it is undone or kept."""
        old.rolling.cancel()
        held = self._held
        lost_create = old.last_create
        if isinstance(held, ResponseCreateEvent) and isinstance(held.event_id, str):
            lost_create = held.event_id
        if not isinstance(held, _KEPT_ACROSS):
            # An item create is replayed (it is unconfirmed); a response the
            # ResponseActor asks for again; a configuration is sent at the
            # handshake; a cancel or a truncate concerned what the line took.
            self._held = None
        await self._edge.line_lost(self._keep_audio_bytes(), lost_create)

    async def _redial(self, old: Line, error: ConnectionClosed) -> tuple[Line, int]:
        policy = self._policy
        count = len(self._endpoints)
        first = max(old.endpoint, 0)
        deadline = trio.current_time() + policy.give_up_after_s
        waits = backoff(policy)
        reason = str(error)
        attempt = 0
        for index in [(first + k) % count for k in range(count)]:
            for _ in range(policy.attempts):
                delay = next(waits)
                if trio.current_time() + delay > deadline:
                    raise error
                attempt += 1
                endpoint = self._endpoints[index]
                self._events.publish(
                    Reconnecting(
                        attempt=attempt, endpoint=endpoint.label, delay_s=delay, reason=reason
                    )
                )
                await trio.sleep(delay)
                try:
                    line = await self._open(index)
                except FAILURES as failure:
                    reason = str(failure)
                    if not retryable(failure):
                        break
                    continue
                try:
                    with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                        await self._handshake(line)
                except FAILURES as failure:
                    reason = str(failure)
                    await line.close()
                    if not retryable(failure):
                        break
                    continue
                return line, attempt
        _log.warning("the session could not reconnect after %d attempts: %s", attempt, reason)
        raise error

    # --- rollover ------------------------------------------------------------------------

    async def _roll(self, line: Line) -> None:
        """Opens the next line ahead of ``line``'s expiry and asks for a switch to it."""
        assert line.expires_at is not None
        policy = self._policy
        with line.rolling:
            lifetime = line.expires_at - trio.current_time()
            await trio.sleep_until(line.expires_at - min(policy.rollover_lead_s, lifetime / 2))
            try:
                standby = await self._open(max(line.endpoint, 0))
            except FAILURES as error:
                _log.warning("could not open the next connection ahead of the expiry: %s", error)
                return  # the expiry is then a drop like any other
            try:
                with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                    await self._handshake(standby, route=False)
                items, _ = self._replayed()
                await self._create_items(standby, items)
            except FAILURES as error:
                _log.warning("the next connection failed before the switch: %s", error)
                await standby.close()
                return
            replayed = {_id(i): to_dict(i) for i in items}
            failed: list[BaseException] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._discard, standby, failed, nursery.cancel_scope)
                quiet = await self._quiet_moment(line.expires_at - policy.rollover_margin_s)
                nursery.cancel_scope.cancel()
            if failed or self._closing or self._line is not line:
                if failed:
                    _log.warning("the next connection dropped before the switch: %s", failed[0])
                await standby.close()
                return
            self._standby = (standby, replayed, quiet)
            line.stop()

    async def _discard(
        self, line: Line, failed: list[BaseException], scope: trio.CancelScope
    ) -> None:
        """Reads a line that waits to take over: only the echo of its replay comes."""
        try:
            while True:
                event = await self._next(line)
                if isinstance(event, RealtimeErrorEvent):
                    self._events.publish(ErrorReported(error=event.error))
        except FAILURES as error:
            failed.append(error)
            scope.cancel()

    async def _quiet_moment(self, deadline: float) -> bool:
        """Waits for a quiet moment: True, or False when the deadline came first.

        Quiet: no response running, owed or asked for, no call outstanding
        (the ResponseActor's word), the user silent and no reply to them on its way.
        """
        edge = self._edge
        with trio.move_on_at(deadline):
            while not self._closing:
                if edge.busy:
                    await edge.changed.wait()
                    continue
                quiet = trio.Event()
                try:
                    await edge.notify_when_quiet(quiet)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return False  # the session is closing
                await quiet.wait()
                if not edge.busy:
                    return True
        return False

    async def _switch(self, old: Line) -> Line:
        """Moves to the line the rollover prepared: what changed since its replay is caught up."""
        assert self._standby is not None
        line, replayed, quiet = self._standby
        self._standby = None
        await self._lose(old)
        items, _ = self._replayed()
        now = {_id(i): to_dict(i) for i in items}
        changed = {i for i, wire in now.items() if replayed.get(i, wire) != wire}
        for item_id in [*changed, *(i for i in replayed if i not in now)]:
            delete = ConversationItemDeleteEvent(event_id=self._next_id("sync"), item_id=item_id)
            await line.wire.send_text(to_json(delete))
        await self._create_items(
            line, [i for i in items if _id(i) not in replayed or _id(i) in changed]
        )
        self._in_service(line)
        await self._edge.line_restored()
        self._events.publish(
            RolledOver(
                endpoint=self._endpoints[line.endpoint].label, replayed=len(items), quiet=quiet
            )
        )
        return line

    # --- resuming from a checkpoint ------------------------------------------------------

    async def _resume_from(self, line: Line, checkpoint: Checkpoint) -> None:
        """Replays a checkpoint's conversation and answers its open calls, once each."""
        await self._create_items(line, checkpoint.conversation())
        for call in checkpoint.calls:
            what = "may or may not have finished" if call.state == "running" else "did not run"
            output = RealtimeConversationItemFunctionCallOutput(
                call_id=call.call_id, output=MOVED.format(what=what)
            )
            await line.wire.send_text(
                to_json(ConversationItemCreateEvent(event_id=self._next_id("moved"), item=output))
            )
        if checkpoint.calls:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._edge.ask(CreateResponse(reason="resume"))

    def checkpoint_items(self) -> list[ConversationItem]:
        """The conversation as it would be replayed now."""
        return self._replayed()[0]

    # --- the inbox ---------------------------------------------------------------------

    async def _serve_inbox(self) -> None:
        with self._inbox, self._updates:
            async for message in self._inbox:
                if isinstance(message, HandOff):
                    if not self._closing:
                        await self._hand_off(message.target)
                    message.applied.set()
                elif isinstance(message, ToolsChanged):
                    self._tools_changed.set()
                elif isinstance(message, CloseSession):
                    self._close()

    def _close(self) -> None:
        """Stops intake; the inbox is served until every sender is gone."""
        self._closing = True
        if self._line is not None:
            self._line.reading.cancel()
        self._retooling.cancel()

    async def _hand_off(self, target: AgentLike) -> None:
        # The update goes out before the call's output, so the follow-up
        # response is the new agent's.
        previous, self.agent = self.agent, target
        self.toolset = Toolset.build(target, self._plugins)
        config = self._config_now(handoff=True)
        await self._updates.send(
            SessionUpdateEvent(event_id=self._next_id("handoff"), session=config)
        )
        self._events.publish(HandedOff(from_agent=previous.name, to_agent=target.name))

    async def _retool(self) -> None:
        """Sends the new tool list whenever a plugin says its tools changed."""
        sent = [to_dict(d) for d in self.toolset.definitions]
        with self._retooling:
            while True:
                await self._tools_changed.wait()
                await trio.sleep(RETOOL_DELAY_S)  # a burst of changes becomes one update
                self._tools_changed = trio.Event()
                self.toolset = Toolset.build(self.agent, self._plugins)
                definitions = list(self.toolset.definitions)
                if [to_dict(d) for d in definitions] == sent:
                    continue
                sent = [to_dict(d) for d in definitions]
                if isinstance(self.config, RealtimeSessionCreateRequest) or self.config is None:
                    await self._updates.send(
                        SessionUpdateEvent(
                            event_id=self._next_id("tools"),
                            session=RealtimeSessionCreateRequest(
                                type="realtime", tools=definitions
                            ),
                        )
                    )
