"""A scripted Realtime server: server events in, client events recorded.

For testing an agent (or the runtime) against exactly the events a test
chooses, in the order it chooses, on trio's ``MockClock`` if it likes: no
engine, no socket. It is the ``connection=`` of ``open_session``::

    server = ScriptedServer()
    async with open_session(WeatherBot(), connection=server) as session:
        await session.send_text("What is the weather in Paris?")
        await server.expect(ResponseCreateEvent)
        await server.send(*server.function_call("get_weather", {"city": "Paris"}))
        output = await server.expect(ConversationItemCreateEvent)
        assert output.item.output == "sunny"

It does the little every server does by itself: it opens with
``session.created``, answers each ``session.update`` with ``session.updated``
(the session as sent) and each ``conversation.item.create`` with
``conversation.item.added`` (unless ``answer_items`` is false). Everything else
is the test's to send; the builders (:meth:`ScriptedServer.text_response`,
:meth:`ScriptedServer.function_call`, ...) make the usual sequences.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Mapping, Sequence
from typing import TypeVar

import attrs
import orjson
import trio

from framework.errors import ConnectionClosed
from framework.protocol import (
    AssistantMessageContent,
    ClientEvent,
    ConversationItem,
    ConversationItemAdded,
    ConversationItemCreateEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeMcpApprovalRequest,
    RealtimeResponse,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ServerEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
    UnknownItem,
    parse_client_event,
    to_json,
)

__all__ = ["ScriptedServer"]

_C = TypeVar("_C", bound=ClientEvent)

SERVER_QUEUE = 4096
"""Server events sent and not yet read by the client; ``send`` waits past it."""


class ScriptedServer:
    """A Realtime server a test scripts by hand (see the module docstring).

    Args:
        session_id: the id in ``session.created``.
        answer_items: answer each ``conversation.item.create`` with
            ``conversation.item.added``; false to answer them by hand (an
            ``error`` instead, say).

    Attributes:
        received: every client event, parsed, in the order it came.
        closed: the close code and reason once the client closed, else ``None``.
    """

    def __init__(self, *, session_id: str = "sess_scripted", answer_items: bool = True) -> None:
        self.received: list[ClientEvent] = []
        self.answer_items = answer_items
        self.closed: tuple[int, str] | None = None
        self._down_send, self._down_receive = trio.open_memory_channel[str](SERVER_QUEUE)
        self._arrived = trio.Event()
        self._read = 0  # events of `received` that expect() has looked at
        self._ids = itertools.count(1)
        self._speech_item: str | None = None
        self._ended: ConnectionClosed | None = None
        self._send_nowait(
            SessionCreatedEvent(
                event_id=self._id("event"),
                session=RealtimeSessionCreateRequest(type="realtime", extra={"id": session_id}),
            )
        )

    # --- the client's side (the wire open_session uses) --------------------------------

    async def send_text(self, text: str) -> None:
        if self._ended is not None:
            raise self._ended
        event = parse_client_event(text)
        self.received.append(event)
        self._arrived.set()
        if isinstance(event, SessionUpdateEvent):
            await self.send(SessionUpdatedEvent(event_id=self._id("event"), session=event.session))
        elif isinstance(event, ConversationItemCreateEvent) and self.answer_items:
            await self.send(self.item_added(event.item))
        await trio.lowlevel.checkpoint()

    async def receive_text(self) -> str:
        try:
            return await self._down_receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._ended or ConnectionClosed(1006, "connection dropped") from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        self._ended = ConnectionClosed(code, reason or "closed by the client")
        self._down_send.close()
        await trio.lowlevel.checkpoint()

    # --- the test's side ----------------------------------------------------------------

    async def send(self, *events: ServerEvent) -> None:
        """Sends server events to the client, in order."""
        for event in events:
            await self._down_send.send(to_json(event))

    def _send_nowait(self, event: ServerEvent) -> None:
        self._down_send.send_nowait(to_json(event))

    async def expect(self, kind: type[_C]) -> _C:
        """The next client event of type ``kind`` (waiting for it); earlier others are passed.

        Use it under a ``trio.fail_after`` (virtual time is fine on ``MockClock``).
        """
        while True:
            while self._read < len(self.received):
                event = self.received[self._read]
                self._read += 1
                if isinstance(event, kind):
                    return event
            self._arrived = trio.Event()
            await self._arrived.wait()

    def of_type(self, kind: type[_C]) -> list[_C]:
        """Every client event of type ``kind`` received so far."""
        return [e for e in self.received if isinstance(e, kind)]

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Closes the connection from the server's side (after the events already sent)."""
        self._ended = ConnectionClosed(code, reason)
        self._down_send.close()

    # --- builders -----------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    def item_added(self, item: ConversationItem) -> ConversationItemAdded:
        """``conversation.item.added`` for an item (given an id if it has none)."""
        return ConversationItemAdded(event_id=self._id("event"), item=self._with_id(item))

    def _with_id(self, item: ConversationItem) -> ConversationItem:
        if isinstance(item, UnknownItem) or isinstance(item.id, str):
            return item
        return attrs.evolve(item, id=self._id("item"))

    def error(
        self, message: str, *, code: str | None = None, event_id: str | None = None
    ) -> RealtimeErrorEvent:
        """An ``error`` event, answering the client event ``event_id`` if given."""
        return RealtimeErrorEvent(
            event_id=self._id("event"),
            error=RealtimeError(
                type="invalid_request_error", message=message, code=code, event_id=event_id
            ),
        )

    def speech_started(self, audio_start_ms: int = 0) -> InputAudioBufferSpeechStartedEvent:
        """Server VAD heard the user start speaking (in a new item)."""
        self._speech_item = self._id("item")
        return InputAudioBufferSpeechStartedEvent(
            event_id=self._id("event"), item_id=self._speech_item, audio_start_ms=audio_start_ms
        )

    def speech_stopped(self, audio_end_ms: int) -> InputAudioBufferSpeechStoppedEvent:
        """Server VAD heard the user stop: the item of the last start, as the server says."""
        item_id = self._speech_item or self._id("item")
        return InputAudioBufferSpeechStoppedEvent(
            event_id=self._id("event"), item_id=item_id, audio_end_ms=audio_end_ms
        )

    def response(
        self, *items: ConversationItem, response_id: str | None = None, status: str = "completed"
    ) -> list[ServerEvent]:
        """A whole response with these output items: created, each item, done.

        Function calls get their ``arguments.done``; messages their text deltas
        and, for ``output_audio`` parts given as ``audio``, their audio deltas.
        """
        response_id = response_id or self._id("resp")
        events: list[ServerEvent] = [
            ResponseCreatedEvent(
                event_id=self._id("event"),
                response=RealtimeResponse(id=response_id, status="in_progress"),
            )
        ]
        done: list[ConversationItem] = []
        for index, item in enumerate(items):
            item = self._with_id(item)
            item_id = item.id if not isinstance(item, UnknownItem) else None
            item_id = item_id if isinstance(item_id, str) else ""
            done.append(item)
            events.append(
                ResponseOutputItemAddedEvent(
                    event_id=self._id("event"),
                    response_id=response_id,
                    output_index=index,
                    item=item,
                )
            )
            events.extend(self._streamed(item, item_id, response_id, index))
            events.append(
                ResponseOutputItemDoneEvent(
                    event_id=self._id("event"),
                    response_id=response_id,
                    output_index=index,
                    item=item,
                )
            )
        events.append(
            ResponseDoneEvent(
                event_id=self._id("event"),
                response=RealtimeResponse(id=response_id, status=status, output=done),
            )
        )
        return events

    def _streamed(
        self, item: ConversationItem, item_id: str, response_id: str, index: int
    ) -> list[ServerEvent]:
        if isinstance(item, RealtimeConversationItemFunctionCall) and isinstance(item.call_id, str):
            return [
                ResponseFunctionCallArgumentsDoneEvent(
                    event_id=self._id("event"),
                    response_id=response_id,
                    item_id=item_id,
                    output_index=index,
                    call_id=item.call_id,
                    name=item.name,
                    arguments=item.arguments,
                )
            ]
        if not isinstance(item, RealtimeConversationItemAssistantMessage):
            return []
        streamed: list[ServerEvent] = []
        kinds: tuple[type[ResponseTextDeltaEvent] | type[ResponseAudioDeltaEvent], ...] = (
            ResponseTextDeltaEvent,
            ResponseAudioDeltaEvent,
        )
        for part, content in enumerate(item.content):
            for value, kind in zip((content.text, content.audio), kinds, strict=True):
                if isinstance(value, str):
                    streamed.append(
                        kind(
                            event_id=self._id("event"),
                            response_id=response_id,
                            item_id=item_id,
                            output_index=index,
                            content_index=part,
                            delta=value,
                        )
                    )
        return streamed

    def text_response(self, *texts: str, response_id: str | None = None) -> list[ServerEvent]:
        """A response of one assistant message per text (a preamble, then the answer)."""
        return self.response(*(_message(text=t) for t in texts), response_id=response_id)

    def audio_response(
        self, *audio: bytes, response_id: str | None = None, status: str = "completed"
    ) -> list[ServerEvent]:
        """A response of one spoken message per chunk of audio (in the output format)."""
        messages = [_message(audio=base64.b64encode(a).decode("ascii")) for a in audio]
        return self.response(*messages, response_id=response_id, status=status)

    def function_call(
        self,
        name: str,
        arguments: Mapping[str, object] | str = "{}",
        *,
        call_id: str | None = None,
        response_id: str | None = None,
    ) -> list[ServerEvent]:
        """A response that calls one function."""
        return self.function_calls([(name, arguments, call_id)], response_id=response_id)

    def function_calls(
        self,
        calls: Sequence[tuple[str, Mapping[str, object] | str, str | None]],
        *,
        response_id: str | None = None,
    ) -> list[ServerEvent]:
        """A response that calls several functions: ``(name, arguments, call_id or None)``."""
        items = [
            RealtimeConversationItemFunctionCall(
                name=name,
                arguments=args if isinstance(args, str) else orjson.dumps(args).decode(),
                call_id=call_id or self._id("call"),
            )
            for name, args, call_id in calls
        ]
        return self.response(*items, response_id=response_id)

    def mcp_approval_request(
        self, server_label: str, name: str, arguments: Mapping[str, object]
    ) -> list[ServerEvent]:
        """A response whose output asks the client to approve a hosted MCP call."""
        request = RealtimeMcpApprovalRequest(
            id=self._id("mcpr"),
            server_label=server_label,
            name=name,
            arguments=orjson.dumps(arguments).decode(),
        )
        return self.response(request)


def _message(*, text: str | None = None, audio: str | None = None) -> ConversationItem:
    content = (
        AssistantMessageContent(type="output_text", text=text)
        if text is not None
        else AssistantMessageContent(type="output_audio", audio=audio)
    )
    return RealtimeConversationItemAssistantMessage(content=[content], status="completed")
