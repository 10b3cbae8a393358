"""The SessionActor against a scripted server: start-up, handoffs, tool changes, the edge.

Each test scripts the server's side (``framework.testing.ScriptedServer``) on
``MockClock`` and checks the client events the session sent, in order, and
what the application saw.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
from trio.testing import MockClock

from framework import Agent, ConnectionClosed, Session, SessionRefused, open_session
from framework.audio import ClockSink
from framework.plugin import Contribution, Plugin
from framework.protocol import (
    AudioPCMU,
    ConversationItemCreateEvent,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseCreateEvent,
    SessionUpdateEvent,
)
from framework.runtime import ErrorReported, HandedOff, SessionStarted, ToolCallFinished
from framework.testing import ScriptedServer
from framework.tools import FunctionTool

from .bots import PhoneTriage


def _updates(server: ScriptedServer) -> list[RealtimeSessionCreateRequest]:
    found = []
    for event in server.of_type(SessionUpdateEvent):
        assert isinstance(event.session, RealtimeSessionCreateRequest)
        found.append(event.session)
    return found


async def test_start_up_sends_the_agents_config_then_reports_it(
    autojump_clock: MockClock,
) -> None:
    server = ScriptedServer(session_id="sess_42")
    async with open_session(PhoneTriage(), connection=server) as session:
        event = await session.__anext__()
    assert isinstance(event, SessionStarted) and event.session_id == "sess_42"
    (config,) = _updates(server)
    assert config.instructions == "You route callers."
    assert [getattr(t, "name", None) for t in config.tools or ()] == ["transfer_to_billing"]
    assert session.config == config  # as the server confirmed it


async def test_a_refused_config_is_session_refused(autojump_clock: MockClock) -> None:
    class Refusing(ScriptedServer):
        async def send_text(self, text: str) -> None:
            self.answer_items = False
            if '"session.update"' in text:
                await self.send(self.error("bad voice", event_id="start_000001"))
                return
            await super().send_text(text)

    with pytest.raises(SessionRefused, match="bad voice"):
        async with open_session(PhoneTriage(), connection=Refusing()):
            pass


async def test_a_handoff_updates_the_session_before_the_output(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    with trio.fail_after(60):
        async with open_session(PhoneTriage(), connection=server) as session:
            await server.send(*server.function_call("transfer_to_billing", call_id="call_1"))
            await server.expect(ResponseCreateEvent)  # the follow-up
            handed = [
                e async for e in _until(session, ToolCallFinished) if isinstance(e, HandedOff)
            ]
            agent = session.agent
            tools = sorted(session.tools)
    names = [type(e).__name__ for e in server.received]
    # session.update (start), session.update (handoff), the output, then the follow-up.
    assert names[-3:] == [
        "SessionUpdateEvent",
        "ConversationItemCreateEvent",
        "ResponseCreateEvent",
    ]
    _, handoff = _updates(server)
    assert handoff.instructions == "You answer billing questions."
    # G.711 stays G.711: the new agent sets no formats, the update restates them.
    assert handoff.audio is not None
    assert handoff.audio.input.format == AudioPCMU(type="audio/pcmu")  # type: ignore[union-attr]
    assert handoff.audio.output.format == AudioPCMU(type="audio/pcmu")  # type: ignore[union-attr]
    assert handoff.tools == []  # Billing's own: none
    assert [(e.from_agent, e.to_agent) for e in handed] == [("Triage", "Billing")]
    assert agent.name == "Billing" and tools == []


async def _until(session: object, kind: type) -> AsyncIterator[object]:
    async for event in session:  # type: ignore[attr-defined]
        yield event
        if isinstance(event, kind):
            return


class Dice(Plugin):
    """A plugin whose tool list grows when told to."""

    name = "dice"

    def __init__(self) -> None:
        super().__init__()
        self.tools: list[FunctionTool] = []
        self.changed: Callable[[], None] | None = None

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        self.changed = changed
        yield Contribution(tools=lambda: tuple(self.tools))


async def roll() -> int:
    """Rolls a die."""
    return 4


async def test_a_burst_of_tool_changes_is_one_update(autojump_clock: MockClock) -> None:
    dice = Dice()
    server = ScriptedServer()
    async with open_session(Agent(plugins=[dice]), connection=server) as session:
        assert dice.changed is not None
        dice.tools.append(FunctionTool.from_function(roll))
        for _ in range(5):
            dice.changed()
        await trio.sleep(1)
        dice.changed()  # nothing new: no update
        await trio.sleep(1)
        tools = sorted(session.tools)
        await server.send(*server.function_call("roll", call_id="call_1"))
        output = await server.expect(ConversationItemCreateEvent)
    _, changed = _updates(server)
    assert [getattr(t, "name", None) for t in changed.tools or ()] == ["roll"]
    assert tools == ["roll"]
    assert isinstance(output.item, RealtimeConversationItemFunctionCallOutput)
    assert output.item.output == "4"


async def _errors_until_a_response_ends(session: Session) -> list[ErrorReported]:
    errors: list[ErrorReported] = []
    async for event in session:
        if isinstance(event, ErrorReported):
            errors.append(event)
        if type(event).__name__ == "ResponseFinished":
            break
    return errors


async def test_a_malformed_event_is_reported_and_the_session_goes_on(
    autojump_clock: MockClock,
) -> None:
    server = ScriptedServer()
    async with open_session(Agent(), connection=server) as session:
        await server._down_send.send('{"type": "response.done"}')  # no response: malformed
        await server.send(*server.text_response("still here"))
        errors = await _errors_until_a_response_ends(session)
    (error,) = errors
    assert error.error.code == "malformed_server_event"
    assert error.error.message == "event_id: missing required field"


async def test_an_audio_delta_that_is_not_base64_is_reported_and_the_reply_plays_on(
    autojump_clock: MockClock,
) -> None:
    server = ScriptedServer()
    sink = ClockSink()
    async with open_session(Agent(), connection=server, audio_out=sink) as session:
        head, tail = b"\x01\x00" * 240, b"\x02\x00" * 240
        events = server.audio_response(head + tail)
        (delta,) = [e for e in events if isinstance(e, ResponseAudioDeltaEvent)]
        first = attrs.evolve(delta, delta=base64.b64encode(head).decode())
        broken = attrs.evolve(delta, event_id="evt_broken", delta="AAE")  # padding cut
        last = attrs.evolve(delta, event_id="evt_last", delta=base64.b64encode(tail).decode())
        at = events.index(delta)
        await server.send(*events[:at], first, broken, last, *events[at + 1 :])
        errors = await _errors_until_a_response_ends(session)
    (error,) = errors
    assert error.error.code == "malformed_server_event"
    assert "evt_broken" in error.error.message
    assert bytes(sink.audio[delta.item_id]) == head + tail


async def test_a_server_close_is_one_connection_closed(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    with pytest.raises(ConnectionClosed) as closed:
        async with open_session(Agent(), connection=server) as session:
            server.close(1011, "internal error")
            await session.wait_quiet()
            await trio.sleep_forever()
    assert (closed.value.code, closed.value.reason) == (1011, "internal error")
