"""The ToolExecutionActor's matrix: every way a call can end gets exactly one output.

Each row scripts a server (``framework.testing.ScriptedServer``) that calls one
tool, does what the row says (approve, reject, let a deadline pass, barge in,
leave the session, refuse the output), and checks, on ``MockClock``: the one
output the server received for the call, the status the application saw,
and how many follow-up ``response.create`` the client asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import pytest
import trio
import trio.testing
from trio.testing import MockClock

from framework import Session, open_session, tool
from framework.protocol import (
    ConversationItemCreateEvent,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeMcpApprovalResponse,
    ResponseCreateEvent,
)
from framework.runtime import ApprovalRequested, SessionEvent, ToolCallFinished, ToolCallStarted
from framework.runtime._tool_actor import CONFIRM_OVER, MAX_RUNNING_CALLS
from framework.testing import ScriptedServer

from .bots import PolicyTools

HUGE = CONFIRM_OVER + 1000


class Bench(PolicyTools):
    """One tool per way a call can go."""

    output_modalities = ("text",)
    tool_timeout = 2.0
    approval_timeout = 30.0

    @tool
    async def weather(self, city: str) -> str:
        """The weather."""
        self.ran.append("weather")
        return f"sunny in {city}"

    @tool
    async def fails(self) -> str:
        """Raises."""
        raise RuntimeError("the station is on fire")

    @tool(timeout=0.5)
    async def slow(self) -> str:
        """Never answers."""
        await trio.sleep(3600)
        return "never"

    @tool(needs_approval=lambda args: args["amount"] > 50)
    async def pay(self, amount: int) -> str:
        """Pays."""
        self.ran.append(f"pay {amount}")
        return f"paid {amount}"

    @tool
    async def huge(self) -> str:
        """A result too large for the server."""
        return "x" * HUGE


Action = Callable[[Session, ScriptedServer], Awaitable[None]]


async def _next(session: Session, kind: type[SessionEvent]) -> SessionEvent:
    async for event in session:
        if isinstance(event, kind):
            return event
    raise AssertionError(f"the session ended before a {kind.__name__}")


async def nothing(session: Session, server: ScriptedServer) -> None:
    pass


def decide(approve: bool) -> Action:
    async def act(session: Session, server: ScriptedServer) -> None:
        event = await _next(session, ApprovalRequested)
        assert isinstance(event, ApprovalRequested)
        assert event.request.values == {"amount": 100}  # parsed once: what runs is approved
        if approve:
            session.approve(event.request)
        else:
            session.reject(event.request, "not today")

    return act


async def barge_in(session: Session, server: ScriptedServer) -> None:
    await _next(session, ToolCallStarted)
    await trio.sleep(0.3)
    await server.send(server.speech_started(300))


async def refuse(session: Session, server: ScriptedServer) -> None:
    create = await server.expect(ConversationItemCreateEvent)
    await server.send(
        server.error("The event is too large.", code="message_too_large", event_id=create.event_id)
    )


@attrs.frozen
class Row:
    tool: str
    arguments: str = "{}"
    act: Action = nothing
    status: str = "ok"
    output: str = ""
    follow_ups: int = 1
    ran: tuple[str, ...] = ()


ROWS = {
    "success": Row("weather", '{"city": "Oslo"}', output="sunny in Oslo", ran=("weather",)),
    "tool error": Row("fails", status="error", output="the station is on fire"),
    "bad arguments": Row("weather", "{}", status="bad_arguments", output="city"),
    "not JSON": Row("weather", "{city", status="bad_arguments", output="not valid JSON"),
    "unknown tool": Row("teleport", status="unknown_tool", output="no tool named 'teleport'"),
    "no approval needed": Row("pay", '{"amount": 20}', output="paid 20", ran=("pay 20",)),
    "approved": Row("pay", '{"amount": 100}', decide(True), output="paid 100", ran=("pay 100",)),
    "rejected": Row("pay", '{"amount": 100}', decide(False), "rejected", "not today"),
    "approval timeout": Row("pay", '{"amount": 100}', status="rejected", output="in time"),
    "tool timeout": Row("slow", status="timeout", output="0.5 s"),
    "barge-in, cancel": Row("stop_me", act=barge_in, status="cancelled", output="interrupted"),
    "barge-in, finish silently": Row(
        "quiet_one", act=barge_in, output="quiet_one finished", follow_ups=0, ran=("quiet_one",)
    ),
    "barge-in, finish and speak": Row(
        "chatty", act=barge_in, output="chatty finished", ran=("chatty",)
    ),
    "refused output": Row("huge", act=refuse, status="refused", output="too large"),
}


def _outputs(server: ScriptedServer, call_id: str) -> list[str]:
    return [
        e.item.output
        for e in server.of_type(ConversationItemCreateEvent)
        if isinstance(e.item, RealtimeConversationItemFunctionCallOutput)
        and e.item.call_id == call_id
    ]


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
async def test_every_call_gets_one_output(autojump_clock: MockClock, row: Row) -> None:
    bot = Bench()
    server = ScriptedServer(answer_items=row.act is not refuse)
    with trio.fail_after(120):
        async with open_session(bot, connection=server) as session:
            await server.send(*server.function_call(row.tool, row.arguments, call_id="call_1"))
            await row.act(session, server)
            finished = await _next(session, ToolCallFinished)
            await trio.sleep(5)  # whatever follows has happened by now
            follow_ups = len(server.of_type(ResponseCreateEvent))
    assert isinstance(finished, ToolCallFinished)
    outputs = _outputs(server, "call_1")
    # One output in the conversation; a refused one is followed by the one that says so.
    assert len(outputs) == (2 if row.status == "refused" else 1)
    assert (finished.status, finished.output) == (row.status, outputs[-1])
    assert row.output in outputs[-1]
    assert follow_ups == row.follow_ups
    assert tuple(bot.ran) == row.ran
    # A follow-up only once the model has the output it will speak of.
    sent = [type(e).__name__ for e in server.received]
    last_output = len(sent) - 1 - sent[::-1].index("ConversationItemCreateEvent")
    assert "ResponseCreateEvent" not in sent[:last_output]


async def test_leaving_the_session_while_a_tool_runs(autojump_clock: MockClock) -> None:
    bot = Bench()
    server = ScriptedServer()
    with trio.fail_after(60):
        async with open_session(bot, connection=server) as session:
            await server.send(*server.function_call("stop_me", call_id="call_1"))
            await _next(session, ToolCallStarted)
        # Left at once: the call was cancelled and its output still went out, in order,
        # before the writer ended; no follow-up was asked for.
    assert _outputs(server, "call_1") == ["The call was cancelled because the session ended."]
    assert server.of_type(ResponseCreateEvent) == []
    assert bot.ran == []


async def test_a_call_told_twice_runs_once(autojump_clock: MockClock) -> None:
    bot = Bench()
    server = ScriptedServer()
    with trio.fail_after(60):
        async with open_session(bot, connection=server) as session:
            events = server.function_call("weather", '{"city": "Rome"}', call_id="call_1")
            await server.send(*events)
            await server.send(*events)  # a server that repeats itself
            await _next(session, ToolCallFinished)
            await trio.sleep(5)
    assert bot.ran == ["weather"]
    assert _outputs(server, "call_1") == ["sunny in Rome"]


async def test_parallel_calls_get_one_follow_up(autojump_clock: MockClock) -> None:
    bot = Bench()
    server = ScriptedServer()
    with trio.fail_after(60):
        async with open_session(bot, connection=server):
            await server.send(
                *server.function_calls(
                    [("weather", '{"city": "Oslo"}', "call_1"), ("quiet_one", "{}", "call_2")]
                )
            )
            await server.expect(ResponseCreateEvent)
            await trio.sleep(5)
    assert (_outputs(server, "call_1"), _outputs(server, "call_2")) == (
        ["sunny in Oslo"],
        ["quiet_one finished"],
    )
    # Sent only after both outputs, and only once.
    assert len(server.of_type(ResponseCreateEvent)) == 1
    last_output = max(
        i for i, e in enumerate(server.received) if isinstance(e, ConversationItemCreateEvent)
    )
    assert isinstance(server.received[last_output + 1], ResponseCreateEvent)


@pytest.mark.parametrize("approve", [True, False])
async def test_hosted_mcp_approval_gets_one_answer(
    autojump_clock: MockClock, approve: bool
) -> None:
    server = ScriptedServer()
    with trio.fail_after(60):
        async with open_session(Bench(), connection=server) as session:
            await server.send(*server.mcp_approval_request("docs", "delete_all", {"confirm": True}))
            event = await _next(session, ApprovalRequested)
            assert isinstance(event, ApprovalRequested)
            assert (event.request.kind, event.request.tool) == ("mcp", "docs.delete_all")
            if approve:
                session.approve(event.request)
            else:
                session.reject(event.request, "not today")
            finished = await _next(session, ToolCallFinished)
            await trio.sleep(5)
    (answer,) = [
        e.item
        for e in server.of_type(ConversationItemCreateEvent)
        if isinstance(e.item, RealtimeMcpApprovalResponse)
    ]
    assert answer.approve is approve
    assert isinstance(finished, ToolCallFinished)
    assert finished.status == ("approved" if approve else "rejected")
    assert len(server.of_type(ResponseCreateEvent)) == 1


async def test_calls_past_the_limit_are_answered_at_once(autojump_clock: MockClock) -> None:
    bot = Bench()
    server = ScriptedServer()
    calls = [("stop_me", "{}", f"call_{n}") for n in range(MAX_RUNNING_CALLS + 1)]
    with trio.fail_after(60):
        async with open_session(bot, connection=server):
            await server.send(*server.function_calls(calls))
            await server.expect(ResponseCreateEvent)
    outputs = [_outputs(server, call_id) for _, _, call_id in calls]
    assert all(len(o) == 1 for o in outputs)  # every call, one output
    refused = [o[0] for o in outputs if "did not run" in o[0]]
    assert len(refused) == 1 and "64 calls are running already" in refused[0]
    assert len(bot.ran) == MAX_RUNNING_CALLS
    assert len(server.of_type(ResponseCreateEvent)) == 1
