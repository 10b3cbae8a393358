"""The SessionActor: the connection and its lifecycle, the session config, handoffs.

It owns the wire, the configuration the server confirmed, the agent in charge,
the :class:`Toolset` and the history mirror. Its tasks, in its own nursery:

* the **writer** serializes the outbox onto the wire in order; it ends when
  every sender has closed its end (``EndOfChannel``), after the last event;
* the **reader** (the actor's own task) parses every server frame once,
  updates the history and translates the event into the other actors'
  messages (:mod:`._edge`); it runs no user code and never waits on the
  application;
* the **inbox** loop takes :class:`HandOff`, :class:`ToolsChanged` and
  :class:`CloseSession`; a short **retool** task batches tool changes.

Start-up: ``session.created``, the agent's ``session.update``, then
``session.updated``; only then does ``task_status.started()`` fire, so a
refused configuration surfaces at ``open_session`` as :class:`SessionRefused`.

Shutdown (:class:`CloseSession`): the reader stops, so nothing new comes in;
the reader's send ends to the ResponseActor and the ToolExecutionActor close,
so they end their work in order; the writer drains the outbox and ends. A
closed or dropped connection ends the session with :class:`ConnectionClosed`
instead.

A later reconnect lives here too: the other actors only ever see messages.
"""

from __future__ import annotations

import logging

import attrs
import trio

from framework.errors import SessionRefused, single_errors
from framework.protocol import (
    ClientEvent,
    ProtocolError,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeSessionCreateRequest,
    ServerEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
    parse_server_event,
    to_dict,
    to_json,
)
from framework.tools import FunctionTool

from ._contracts import AgentLike, Contribution, SessionConfigRequest, SessionPlugin, Wire
from ._edge import Edge
from ._events import (
    ErrorReported,
    EventHub,
    HandedOff,
    ServerEventReceived,
    SessionStarted,
)
from ._handle import Session
from ._history import History
from ._messages import (
    CloseSession,
    EventIds,
    HandOff,
    ResponseInbox,
    SessionInbox,
    ToolInbox,
    ToolsChanged,
)
from ._toolset import Toolset

_log = logging.getLogger("cantata.session")

HANDSHAKE_TIMEOUT_S = 15.0
"""From the connection to the server's ``session.updated`` for the agent's configuration."""
RETOOL_DELAY_S = 0.05
"""Tool changes closer together than this become one ``session.update``."""


class SessionActor:
    """Owns the wire and the session's configuration (see the module docstring).

    Args:
        wire: the open connection.
        agent: the agent in charge at the start.
        plugins: the session's open plugins and what each contributes.
        inbox: its inbox.
        outbox: the receive end of the outbox (the writer's).
        updates: a send end of the outbox, for its own ``session.update`` events.
        to_responses: the ResponseActor's inbox.
        to_tools: the ToolExecutionActor's inbox.
        events: where application events go.
        raw_events: also publish every server event.
    """

    def __init__(
        self,
        *,
        wire: Wire,
        agent: AgentLike,
        plugins: list[tuple[SessionPlugin, Contribution]],
        inbox: trio.MemoryReceiveChannel[SessionInbox],
        outbox: trio.MemoryReceiveChannel[ClientEvent],
        updates: trio.MemorySendChannel[ClientEvent],
        to_responses: trio.MemorySendChannel[ResponseInbox],
        to_tools: trio.MemorySendChannel[ToolInbox],
        events: EventHub,
        raw_events: bool = False,
    ) -> None:
        self._wire = wire
        self._inbox = inbox
        self._outbox = outbox
        self._updates = updates
        self._events = events
        self._raw = raw_events
        self._plugins = plugins
        self.agent = agent
        self.toolset = Toolset.build(agent, plugins, strict=True)
        self.config: SessionConfigRequest | None = None
        self.session_id = ""
        self.history = History()
        self.handle: Session | None = None
        self._edge = Edge(self, to_responses=to_responses, to_tools=to_tools, events=events)
        self._reading = trio.CancelScope()
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

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with single_errors():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write)
                    with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                        await self._handshake()
                    nursery.start_soon(self._serve_inbox)
                    nursery.start_soon(self._retool)
                    task_status.started()
                    with self._reading:
                        await self._read()
                    self._edge.close()  # intake stopped: the others finish their work
        except Exception as error:
            self._events.end(error)  # wakes whoever waits on the session, wherever they are
            raise
        finally:
            self.finished.set()

    # --- the wire ----------------------------------------------------------------------

    async def _write(self) -> None:
        with self._outbox:
            async for event in self._outbox:
                await self._wire.send_text(to_json(event))

    async def _next(self) -> ServerEvent | None:
        text = await self._wire.receive_text()
        self.frames += 1
        try:
            return parse_server_event(text)
        except ProtocolError as e:
            _log.warning("malformed server event: %s", e)
            self._events.publish(
                ErrorReported(
                    error=RealtimeError(
                        type="client_error", code="malformed_server_event", message=str(e)
                    )
                )
            )
            return None

    async def _read(self) -> None:
        while True:
            event = await self._next()
            if event is not None:
                await self._route(event)

    async def _route(self, event: ServerEvent) -> None:
        self.history.apply(event)
        if self._raw:
            self._events.publish(ServerEventReceived(event=event))
        if isinstance(event, SessionUpdatedEvent) and isinstance(
            event.session, SessionConfigRequest
        ):
            self.config = event.session
        await self._edge.translate(event)

    # --- start-up ----------------------------------------------------------------------

    async def _handshake(self) -> None:
        while True:
            event = await self._next()
            if isinstance(event, SessionCreatedEvent):
                break
        session_id = event.session.extra.get("id") if hasattr(event.session, "extra") else None
        self.session_id = session_id if isinstance(session_id, str) else ""
        start = self._next_id("start")
        await self._updates.send(SessionUpdateEvent(event_id=start, session=self._config_now()))
        while True:
            event = await self._next()
            if event is None:
                continue
            if isinstance(event, RealtimeErrorEvent) and event.error.event_id == start:
                raise SessionRefused(event.error)
            await self._route(event)
            if isinstance(event, SessionUpdatedEvent):
                break
        model = self.config.model if isinstance(self.config, RealtimeSessionCreateRequest) else None
        self._events.publish(
            SessionStarted(
                session_id=self.session_id, model=model if isinstance(model, str) else ""
            )
        )

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
        self._reading.cancel()
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
