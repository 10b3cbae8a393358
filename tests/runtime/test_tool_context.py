"""What a running tool can do besides return: report progress, show images, ask the user.

Each test scripts a server (``ScriptedServer``) that calls one tool and
checks, on ``MockClock``, what reaches the application and the wire:
progress as ``ToolProgress`` (restarting the call's timeout), images as an
``input_image`` item after the output and before the follow-up, and a
plugin's question as ``ElicitationRequested``, answered by the agent's hook,
the application, or the deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from trio.testing import MockClock

from framework import Agent, open_session, tool
from framework.plugin import Contribution, Plugin, PluginContext
from framework.protocol import (
    ConversationItemCreateEvent,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    ResponseCreateEvent,
)
from framework.runtime import (
    ElicitationAnswer,
    ElicitationRequest,
    ElicitationRequested,
    SessionEvent,
    ToolCallFinished,
    ToolProgress,
)
from framework.testing import ScriptedServer
from framework.tools import FunctionTool, ToolImage, ToolResult, current_call

PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
    "AAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Worker(Agent):
    output_modalities = ("text",)
    tool_timeout = 2.0

    @tool
    async def crunch(self, seconds: int, extend: bool = True) -> str:
        """Works for a while, saying how far it got each second."""
        call = current_call()
        assert call is not None
        for done in range(1, seconds + 1):
            await trio.sleep(1)
            call.report_progress(done, seconds, f"step {done}", extend_timeout=extend)
        return "crunched"

    @tool
    async def draw(self) -> ToolResult:
        """Draws a pixel."""
        return ToolResult(
            text="A pixel, shown below.", images=(ToolImage(data=PIXEL, mime_type="image/png"),)
        )


async def _events(session: object, until: type, into: list[SessionEvent]) -> None:
    async for event in session:  # type: ignore[attr-defined]
        into.append(event)
        if isinstance(event, until):
            return


@pytest.mark.parametrize("extend", [True, False])
async def test_progress_reaches_the_app_and_keeps_the_call_alive(
    autojump_clock: MockClock, extend: bool
) -> None:
    server = ScriptedServer()
    seen: list[SessionEvent] = []
    with trio.fail_after(60):
        async with open_session(Worker(), connection=server) as session:
            await server.send(*server.function_call("crunch", {"seconds": 5, "extend": extend}))
            await _events(session, ToolCallFinished, seen)
    finished = seen[-1]
    assert isinstance(finished, ToolCallFinished)
    progress = [e for e in seen if isinstance(e, ToolProgress)]
    if extend:
        # Five seconds of work under a 2 s timeout: each report restarted it.
        assert (finished.status, finished.output) == ("ok", "crunched")
        assert [(p.progress, p.total, p.message) for p in progress] == [
            (n, 5, f"step {n}") for n in range(1, 6)
        ]
        assert {p.call_id for p in progress} == {finished.call_id}
    else:
        assert finished.status == "timeout"
        assert len(progress) == 1  # one report at 1 s, then the 2 s timeout


async def test_images_follow_the_output_and_come_before_the_follow_up(
    autojump_clock: MockClock,
) -> None:
    server = ScriptedServer()
    with trio.fail_after(60):
        async with open_session(Worker(), connection=server) as session:
            await server.send(*server.function_call("draw", call_id="call_1"))
            await server.expect(ResponseCreateEvent)
            del session
    created = [e.item for e in server.of_type(ConversationItemCreateEvent)]
    output, shown = created
    assert isinstance(output, RealtimeConversationItemFunctionCallOutput)
    assert (output.call_id, output.output) == ("call_1", "A pixel, shown below.")
    assert isinstance(shown, RealtimeConversationItemUserMessage)
    assert [c.type for c in shown.content] == ["input_text", "input_image"]
    assert shown.content[1].image_url == f"data:image/png;base64,{PIXEL}"
    kinds = [type(e).__name__ for e in server.received]
    last_item = len(kinds) - 1 - kinds[::-1].index("ConversationItemCreateEvent")
    assert "ResponseCreateEvent" in kinds[last_item:]
    assert "ResponseCreateEvent" not in kinds[:last_item]


class Asking(Plugin):
    """A plugin whose tool asks the user a question through the session."""

    name = "asking"

    def __init__(self) -> None:
        super().__init__()
        self.could_ask: list[bool] = []

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        raise AssertionError("the session opens plugins with open_in")
        yield Contribution()  # pragma: no cover

    @asynccontextmanager
    async def open_in(self, context: PluginContext) -> AsyncIterator[Contribution]:
        self.could_ask.append(context.elicit is not None)

        async def ask(arguments: dict[str, object]) -> str:
            if context.elicit is None:
                return "nobody to ask"
            call = current_call()
            answer = await context.elicit(
                ElicitationRequest(
                    source=self.name,
                    message="Which colour?",
                    schema={"type": "object", "properties": {"colour": {"type": "string"}}},
                    call_id=call.call_id if call is not None else None,
                )
            )
            return f"{answer.action} {dict(answer.content or {})}"

        question = FunctionTool.from_schema("ask", "Asks the user.", {"type": "object"}, ask)
        yield Contribution(tools=lambda: [question])


class Deciding(Agent):
    output_modalities = ("text",)
    approval_timeout = 10.0

    async def answer_elicitation(self, request: ElicitationRequest) -> ElicitationAnswer | None:
        return (
            ElicitationAnswer("accept", {"colour": "teal"}) if request.source == "asking" else None
        )


@pytest.mark.parametrize(
    ("agent", "app", "output", "asked_app", "took"),
    [
        (Deciding, None, "accept {'colour': 'teal'}", False, 0),
        (Agent, "answer", "accept {'colour': 'red'}", True, 0),
        (Agent, "decline", "decline {}", True, 0),
        (Agent, "ignore", "decline {}", True, 10),
    ],
    ids=["the agent's hook", "the app answers", "the app declines", "nobody answers"],
)
async def test_a_plugin_s_question_takes_the_approvals_path(
    autojump_clock: MockClock,
    agent: type[Agent],
    app: str | None,
    output: str,
    asked_app: bool,
    took: float,
) -> None:
    plugin = Asking()
    bot = agent(plugins=[plugin], output_modalities=["text"], approval_timeout=10.0)
    server = ScriptedServer()
    seen: list[SessionEvent] = []
    with trio.fail_after(60):
        answers = True if app is not None else None  # None: the agent says whether it answers
        async with open_session(bot, connection=server, elicitation=answers) as session:
            start = trio.current_time()
            await server.send(*server.function_call("ask", call_id="call_1"))
            async for event in session:
                seen.append(event)
                if isinstance(event, ElicitationRequested):
                    assert session.pending_elicitations == [event.request]
                    if app == "answer":
                        session.answer_elicitation(event.request, {"colour": "red"})
                    elif app == "decline":
                        session.decline_elicitation(event.request.id)
                elif isinstance(event, ToolCallFinished):
                    break
            elapsed = trio.current_time() - start
            with pytest.raises(KeyError, match="no elicitation is waiting"):
                session.answer_elicitation("elicit_000001", {})
    asked = [e.request for e in seen if isinstance(e, ElicitationRequested)]
    assert plugin.could_ask == [True]
    assert bool(asked) == asked_app
    if asked:
        (request,) = asked
        assert (request.call_id, request.message, request.deadline) == (
            "call_1",
            "Which colour?",
            start + 10.0,
        )
    finished = seen[-1]
    assert isinstance(finished, ToolCallFinished) and finished.output == output
    assert elapsed == pytest.approx(took, abs=0.1)


async def test_nothing_to_answer_means_no_one_is_asked(autojump_clock: MockClock) -> None:
    plugin = Asking()
    server = ScriptedServer()
    with trio.fail_after(60):
        async with open_session(
            Agent(plugins=[plugin], output_modalities=["text"]), connection=server
        ) as session:
            await server.send(*server.function_call("ask", call_id="call_1"))
            seen: list[SessionEvent] = []
            await _events(session, ToolCallFinished, seen)
    assert plugin.could_ask == [False]
    assert isinstance(seen[-1], ToolCallFinished) and seen[-1].output == "nobody to ask"
