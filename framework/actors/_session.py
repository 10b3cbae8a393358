"""The SessionActor: the connection, the session config, and routing.

Tasks (in its own nursery): the *writer*, which serializes the outbox onto
the wire in order, and the *reader* (the actor's own task), which parses
every server frame once, updates the history mirror and the bookkeeping, and
routes the event to the actor that handles it. The reader runs no user code
and never waits on the application: application events go to a queue that
drops its oldest entries, hooks to the hook runner.

Start-up: ``session.created``, then the agent's ``session.update``, then
``session.updated``; only then does ``task_status.started()`` fire, so a
refused configuration surfaces at ``open_session``. A closed or dropped
connection ends the session with :class:`ConnectionClosed`.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from framework.errors import ConnectionClosed, SessionRefused
from framework.events import (
    ErrorReported,
    McpCallFinished,
    McpToolsListed,
    SessionStarted,
    UserSpeechStarted,
    UserSpeechStopped,
    UserTranscript,
)
from framework.protocol import (
    ClientEvent,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    McpListToolsFailed,
    ProtocolError,
    RealtimeConversationItemFunctionCall,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeMcpApprovalRequest,
    RealtimeMcpListTools,
    RealtimeMcpToolCall,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ServerEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
    parse_server_event,
    to_json,
)

from ._messages import BargedIn
from ._runtime import Runtime, Wire

_log = logging.getLogger("cantata.session")

HANDSHAKE_TIMEOUT_S = 15.0

_TO_RESPONSES = (
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseTextDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioDeltaEvent,
    ResponseOutputItemDoneEvent,
    InputAudioBufferSpeechStartedEvent,
    RealtimeErrorEvent,
)


class SessionActor:
    """Owns the wire; parses, mirrors and routes (see the module docstring)."""

    def __init__(
        self,
        runtime: Runtime,
        wire: Wire,
        outbox: trio.MemoryReceiveChannel[ClientEvent],
        *,
        response_inbox: trio.MemorySendChannel[Any],
        tool_inbox: trio.MemorySendChannel[Any],
    ) -> None:
        self.rt = runtime
        self.wire = wire
        self.outbox = outbox
        self.to_responses = response_inbox
        self.to_tools = tool_inbox
        self.seen_calls: set[str] = set()
        self.frames = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                    await self._handshake()
                task_status.started()
                await self._reader()
        except BaseExceptionGroup as group:
            # The writer and the reader see the same closed connection: one error out.
            closed = [e for e in group.exceptions if isinstance(e, ConnectionClosed)]
            if closed:
                raise self._ended(closed[0]) from None
            raise
        except ConnectionClosed as e:
            raise self._ended(e) from None

    def _ended(self, error: ConnectionClosed) -> ConnectionClosed:
        self.rt.activity.fail(error)
        self.rt.events.end(error)
        return error

    async def _writer(self) -> None:
        async with self.outbox:
            async for event in self.outbox:
                await self.wire.send_text(to_json(event))

    async def _next(self) -> ServerEvent | None:
        text = await self.wire.receive_text()
        self.frames += 1
        try:
            return parse_server_event(text)
        except ProtocolError as e:
            _log.warning("malformed server event: %s", e)
            self.rt.publish(
                ErrorReported(
                    error=RealtimeError(
                        type="client_error", code="malformed_server_event", message=str(e)
                    )
                )
            )
            return None

    async def _handshake(self) -> None:
        while True:
            event = await self._next()
            if isinstance(event, SessionCreatedEvent):
                break
        session_id = event.session.extra.get("id") if hasattr(event.session, "extra") else None
        self.rt.session_id = session_id if isinstance(session_id, str) else ""
        config = self.rt.session_config()
        await self.rt.outbox.send(SessionUpdateEvent(event_id="evt_start", session=config))
        while True:
            event = await self._next()
            if isinstance(event, SessionUpdatedEvent):
                await self._route(event)
                break
            if isinstance(event, RealtimeErrorEvent) and event.error.event_id == "evt_start":
                raise SessionRefused(event.error)
            if event is not None:
                await self._route(event)
        config_now = self.rt.config
        model = config_now.model if config_now is not None else None
        self.rt.publish(
            SessionStarted(
                session_id=self.rt.session_id, model=model if isinstance(model, str) else ""
            )
        )
        self.rt.call_hook("on_session_started")

    async def _reader(self) -> None:
        while True:
            event = await self._next()
            if event is not None:
                await self._route(event)

    async def _route(self, event: ServerEvent) -> None:
        rt = self.rt
        rt.history.apply(event)
        rt.route_server_event(event)
        if isinstance(event, _TO_RESPONSES):
            await self.to_responses.send(event)
        if isinstance(event, ResponseFunctionCallArgumentsDoneEvent):
            await self._call(event)
        elif isinstance(event, ResponseOutputItemDoneEvent):
            item = event.item
            if isinstance(item, RealtimeMcpApprovalRequest):
                await self._call(event, key=item.id)
            elif isinstance(item, RealtimeMcpToolCall):
                error = item.error
                rt.publish(
                    McpCallFinished(
                        item_id=item.id,
                        server_label=item.server_label,
                        name=item.name,
                        arguments=item.arguments,
                        output=item.output if isinstance(item.output, str) else None,
                        error=getattr(error, "message", None) if error is not None else None,
                    )
                )
            elif isinstance(item, RealtimeConversationItemFunctionCall) and isinstance(
                item.call_id, str
            ):
                # Servers that skip arguments.done still get their calls run.
                await self._call(
                    ResponseFunctionCallArgumentsDoneEvent(
                        event_id="",
                        response_id=event.response_id,
                        item_id=item.id if isinstance(item.id, str) else "",
                        output_index=event.output_index,
                        call_id=item.call_id,
                        name=item.name,
                        arguments=item.arguments,
                    )
                )
        elif isinstance(event, ResponseDoneEvent):
            await self.to_tools.send(event)
        elif isinstance(event, SessionUpdatedEvent):
            if isinstance(event.session, RealtimeSessionCreateRequest):
                rt.config = event.session
        elif isinstance(event, InputAudioBufferSpeechStartedEvent):
            await self.to_tools.send(BargedIn(audio_start_ms=event.audio_start_ms))
            rt.publish(
                UserSpeechStarted(item_id=event.item_id, audio_start_ms=event.audio_start_ms)
            )
        elif isinstance(event, InputAudioBufferSpeechStoppedEvent):
            rt.publish(UserSpeechStopped(item_id=event.item_id, audio_end_ms=event.audio_end_ms))
        elif isinstance(event, ConversationItemInputAudioTranscriptionDeltaEvent):
            known = rt.history.get(event.item_id)
            delta = event.delta if isinstance(event.delta, str) else ""
            text = known.text if known is not None else delta
            rt.publish(UserTranscript(item_id=event.item_id, text=text, final=False))
        elif isinstance(event, ConversationItemInputAudioTranscriptionCompletedEvent):
            final = event.transcript if isinstance(event.transcript, str) else ""
            usage = event.usage
            rt.publish(UserTranscript(item_id=event.item_id, text=final, final=True, usage=usage))
            rt.call_hook("on_user_transcript", final)
        elif isinstance(event, ConversationItemDone) and isinstance(
            event.item, RealtimeMcpListTools
        ):
            listed = event.item
            rt.publish(
                McpToolsListed(
                    item_id=listed.id if isinstance(listed.id, str) else "",
                    server_label=listed.server_label,
                    tools=[t.name for t in listed.tools],
                    ok=True,
                )
            )
        elif isinstance(event, McpListToolsFailed):
            known = rt.history.get(event.item_id)
            label = getattr(known.item, "server_label", "") if known is not None else ""
            rt.publish(
                McpToolsListed(item_id=event.item_id, server_label=label, tools=[], ok=False)
            )
        elif isinstance(event, RealtimeErrorEvent):
            rt.publish(ErrorReported(error=event.error))
            rt.call_hook("on_error", event.error)

    async def _call(
        self,
        event: ResponseFunctionCallArgumentsDoneEvent | ResponseOutputItemDoneEvent,
        *,
        key: str | None = None,
    ) -> None:
        """Hands a function call (or an MCP approval request) to the tool actor once."""
        key = key or str(getattr(event, "call_id", ""))
        if key in self.seen_calls:
            return
        self.seen_calls.add(key)
        # Counted here, in the same step as the routing, so the session is never
        # seen quiet between the response that asked and the call starting.
        self.rt.activity.up()
        await self.to_tools.send(event)
