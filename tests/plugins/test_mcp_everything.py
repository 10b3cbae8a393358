"""The MCP plugin against ``@modelcontextprotocol/server-everything`` from npm.

The reference server exercises every feature of the protocol: long calls
with progress, a tool that only runs as a task, elicitation (form and URL),
images, resources and their links, prompts, log messages and list changes.
It runs over stdio, streamable HTTP and the legacy SSE transport, each a real
node process. Every test does real I/O, so each is bounded by
``trio.fail_after`` and none uses the autojump clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import mcp_types
import pytest
import trio

from framework import Agent, open_session
from framework.protocol import (
    ConversationItemRetrieved,
    ConversationItemRetrieveEvent,
    RealtimeConversationItemUserMessage,
    parse_server_event,
    to_json,
)
from framework.runtime import (
    ElicitationAnswer,
    ElicitationRequest,
    ElicitationRequested,
)
from framework.testing import engine_wire
from framework.tools import ProgressReport
from plugins.mcp import McpServer

from .mcp_servers import answering, opened, run_tool, serve_everything, tools_of

ELICITING = {"trigger-elicitation-request", "trigger-url-elicitation"}


def stdio(script: Path, **options: Any) -> McpServer:
    return McpServer.stdio("node", str(script), "stdio", **options)


Make = Callable[..., McpServer]


@pytest.fixture(params=["stdio", "http"])
async def make(request: pytest.FixtureRequest, everything: Path) -> AsyncIterator[Make]:
    """Makes plugins for one server-everything: a process each (stdio), or one over HTTP."""
    if request.param == "stdio":
        yield partial(stdio, everything)
        return
    async with serve_everything(everything, "streamableHttp") as url:
        yield partial(McpServer.http, url)


# --- naming, capabilities, list changes -------------------------------------------------


def test_the_name_comes_from_the_package_not_the_script(everything: Path) -> None:
    assert stdio(everything).name == "server-everything"
    assert McpServer.stdio("npx", "-y", "@modelcontextprotocol/server-everything").name == (
        "server-everything"
    )


async def test_elicitation_is_declared_only_when_something_answers(make: Make) -> None:
    with trio.fail_after(30):
        async with opened(make()) as unanswered:
            without = set(tools_of(unanswered))
        async with opened(make(), elicit=answering()) as answered:
            with_answers = set(tools_of(answered))
        async with opened(make(elicitation=False), elicit=answering()) as off:
            switched_off = set(tools_of(off))
    # The server registers the tools that ask only for clients that can be asked.
    assert not ELICITING & without
    assert with_answers >= ELICITING
    assert not ELICITING & switched_off
    assert "simulate-research-query" in without  # a task tool; it asks only if it can


async def test_tools_that_arrive_later_are_announced(make: Make) -> None:
    # server-everything registers its capability-dependent tools after the
    # handshake and says so with notifications/tools/list_changed.
    changed = trio.Event()
    with trio.fail_after(30):
        async with opened(make(), elicit=answering(), changed=changed.set) as c:
            if "trigger-elicitation-request" not in tools_of(c):
                await changed.wait()
            assert "trigger-elicitation-request" in tools_of(c)


# --- progress --------------------------------------------------------------------------


async def test_progress_is_reported_and_keeps_a_long_call_alive(make: Make) -> None:
    progress: list[ProgressReport] = []
    with trio.fail_after(40):
        async with opened(make(call_timeout=1.5)) as c:
            start = trio.current_time()
            done = await run_tool(
                c,
                "trigger-long-running-operation",
                {"duration": 3, "steps": 6},
                progress=progress,
            )
            took = trio.current_time() - start
        async with opened(make(call_timeout=1.5, progress_resets_timeout=False)) as c:
            stopped = await run_tool(
                c, "trigger-long-running-operation", {"duration": 3, "steps": 6}
            )
    assert done.status == "ok", done.output
    assert took > 2.5  # it ran well past its 1.5 s timeout, each report restarting it
    assert "Long running operation completed" in done.output
    assert [p.progress for p in progress] == [1, 2, 3, 4, 5, 6]
    assert {p.total for p in progress} == {6}
    assert stopped.status == "timeout"


# --- tasks ------------------------------------------------------------------------------


async def test_a_task_only_tool_runs_as_a_task(make: Make) -> None:
    progress: list[ProgressReport] = []
    with trio.fail_after(40):
        async with opened(make(call_timeout=3)) as c:
            tool = tools_of(c)["simulate-research-query"]
            assert tool.parameters["required"] == ["topic"]
            outcome = await run_tool(
                c, "simulate-research-query", {"topic": "trio"}, progress=progress
            )
    assert outcome.status == "ok", outcome.output
    assert "# Research Report: trio" in outcome.output
    # Each stage's status message is a progress report; each restarted the 3 s timeout.
    messages = [p.message for p in progress]
    assert "Gathering sources..." in messages and "Generating report..." in messages
    assert [p.progress for p in progress] == list(range(1, len(progress) + 1))


async def test_a_task_asks_the_user_and_uses_the_answer(make: Make) -> None:
    asked = answering({"interpretation": "snake"})
    with trio.fail_after(40):
        async with opened(make(), elicit=asked) as c:
            outcome = await run_tool(
                c, "simulate-research-query", {"topic": "python", "ambiguous": True}
            )
    (question,) = asked.questions
    assert question.call_id == "call_simulate-research-query"  # tied to its task's call
    assert question.schema is not None and "interpretation" in question.schema["properties"]
    assert "Research Report: python (snake)" in outcome.output


async def test_an_abandoned_task_is_cancelled_on_the_server(make: Make) -> None:
    with trio.fail_after(40):
        async with opened(make()) as c:
            tool = tools_of(c)["simulate-research-query"]
            created = trio.Event()
            async with trio.open_nursery() as nursery:

                async def research() -> None:
                    await tool.run({"topic": "slow"}, on_progress=lambda _: created.set())

                nursery.start_soon(research)
                await created.wait()  # the task exists: its first status came
                nursery.cancel_scope.cancel()  # a barge-in, say
            client = c.service._connection.client  # type: ignore[union-attr]
            listed = await client.session.send_request(
                mcp_types.ListTasksRequest(), mcp_types.ListTasksResult
            )
    assert [t.status for t in listed.tasks] == ["cancelled"]


# --- in a session: elicitation, images ---------------------------------------------------

RULES = r"""
fallback = "Sorry."

[[rule]]
when = "ask me"
call = "trigger-elicitation-request"

[[rule]]
after = "trigger-elicitation-request"
say = "{output}"

[[rule]]
when = "show me the logo"
call = "get-tiny-image"

[[rule]]
when = "images get-tiny-image returned"
say = "A tiny logo."

[[rule]]
when = "add (?P<a>\\d+) and (?P<b>\\d+)"
call = "get-sum"
args = { a = "{a}", b = "{b}" }

[[rule]]
after = "get-sum"
say = "{output}"
"""


@asynccontextmanager
async def session_with(
    plugin: McpServer, agent: Agent | None = None, **options: Any
) -> AsyncIterator[Any]:
    bot = agent or Agent(output_modalities=["text"])
    bot.plugins = [plugin]
    async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire, **options) as s:
        yield s


async def answer_questions(session: Any, how: str, seen: list[ElicitationRequest]) -> None:
    async for event in session:
        if isinstance(event, ElicitationRequested):
            seen.append(event.request)
            if how == "accept":
                session.answer_elicitation(event.request, {"name": "Ada Lovelace", "check": True})
            elif how == "decline":
                session.decline_elicitation(event.request)
            # "ignore": nobody answers; the deadline declines it


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("accept", "- Name: Ada Lovelace"),
        ("decline", "User declined to provide the requested information"),
        ("ignore", "User declined to provide the requested information"),
    ],
)
async def test_the_application_answers_a_server_s_question(make: Make, how: str, said: str) -> None:
    seen: list[ElicitationRequest] = []
    # Only the unanswered question waits out its deadline; the others have time to spare.
    bot = Agent(output_modalities=["text"], approval_timeout=1.0 if how == "ignore" else 30.0)
    with trio.fail_after(40):
        async with (
            session_with(make(), bot, elicitation=True) as session,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(answer_questions, session, how, seen)
            start = trio.current_time()
            result = await session.run("ask me something")
            took = trio.current_time() - start
            nursery.cancel_scope.cancel()
    (question,) = seen
    assert question.mode == "form"
    assert question.call_id == result.tool_calls[0].call_id
    assert question.schema is not None and question.schema["properties"]["name"]["type"] == "string"
    assert said in result.text
    if how == "ignore":
        assert took >= 1.0  # it waited for the deadline (the agent's approval_timeout)
    assert not session.pending_elicitations


async def test_the_agent_s_hook_answers_first(make: Make) -> None:
    class Clerk(Agent):
        async def answer_elicitation(self, request: ElicitationRequest) -> ElicitationAnswer:
            return ElicitationAnswer("accept", {"name": "Grace Hopper"})

    with trio.fail_after(40):
        async with session_with(make(), Clerk(output_modalities=["text"])) as session:
            result = await session.run("ask me something")
    assert "- Name: Grace Hopper" in result.text


async def test_an_image_reaches_the_model(make: Make) -> None:
    with trio.fail_after(40):
        async with engine_wire(rules=RULES) as wire:
            bot = Agent(output_modalities=["text"], plugins=[make()])
            async with open_session(bot, connection=wire) as session:
                result = await session.run("show me the logo")
                image_items = [
                    i.id
                    for i in session.history.items
                    if isinstance(i.item, RealtimeConversationItemUserMessage)
                    and any(c.type == "input_image" for c in i.item.content)
                ]
            # The engine's own copy of the item, read back over the same wire.
            (item_id,) = image_items
            await wire.send_text(to_json(ConversationItemRetrieveEvent(item_id=item_id)))
            while not isinstance(
                event := parse_server_event(await wire.receive_text()), ConversationItemRetrieved
            ):
                pass
    (call,) = result.tool_calls
    assert call.status == "ok"
    assert "[image 1: image/png" in call.output and "shown after this" in call.output
    stored = event.item
    assert isinstance(stored, RealtimeConversationItemUserMessage)
    parts = [(c.type, c.image_url) for c in stored.content]
    assert parts[0][0] == "input_text"
    assert parts[1][0] == "input_image"
    assert str(parts[1][1]).startswith("data:image/png;base64,iVBORw0KGgo")
    assert result.text == "A tiny logo."


async def test_a_url_elicitation_sends_the_user_to_a_page(make: Make) -> None:
    asked = answering()
    with trio.fail_after(40):
        async with opened(make(), elicit=asked) as c:
            direct = await run_tool(
                c, "trigger-url-elicitation", {"url": "https://example.com/pay"}
            )
            # The error path (-32042): the call is refused until the user has
            # opened another page; then it is made again and goes through.
            required = await run_tool(
                c,
                "trigger-url-elicitation",
                {"url": "https://example.com/login", "errorPath": True},
            )
    assert [(q.mode, q.url) for q in asked.questions] == [
        ("url", "https://example.com/pay"),
        ("url", "https://modelcontextprotocol.io"),
        ("url", "https://example.com/login"),
    ]
    assert all(q.schema is None for q in asked.questions)
    assert "User completed the URL elicitation flow" in direct.output
    assert "URL: https://example.com/login" in required.output


async def test_a_refused_url_elicitation_fails_the_call(make: Make) -> None:
    with trio.fail_after(40):
        async with opened(make(), elicit=answering(action="decline")) as c:
            refused = await run_tool(
                c,
                "trigger-url-elicitation",
                {"url": "https://example.com/again", "errorPath": True},
            )
    assert refused.status == "error"
    assert "requires browser-based authorization" in refused.output
    assert "https://modelcontextprotocol.io and did not" in refused.output


# --- resources, prompts, logs -------------------------------------------------------------


async def test_resources_listed_and_read_by_the_application(make: Make) -> None:
    server = make()
    with trio.fail_after(40):
        async with session_with(server) as session:
            client = server.client(session)
            resources = await client.list_resources()
            templates = await client.list_resource_templates()
            text = await client.read_resource("demo://resource/dynamic/text/7")
            blob = await client.read_resource("demo://resource/dynamic/blob/7")
    uris = {r.uri for r in resources}
    assert any(uri.startswith("demo://resource/static/document/") for uri in uris)
    assert "demo://resource/dynamic/text/{resourceId}" in {t.uri_template for t in templates}
    (part,) = text
    assert part.uri == "demo://resource/dynamic/text/7" and part.text and "7" in part.text
    assert blob[0].blob is not None and blob[0].text is None


async def test_the_model_follows_a_resource_link(make: Make) -> None:
    with trio.fail_after(40):
        async with opened(make(resource_tools=True)) as c:
            assert {"list_resources", "read_resource"} <= set(tools_of(c))
            links = await run_tool(c, "get-resource-links", {"count": 2})
            listed = await run_tool(c, "list_resources")
            read = await run_tool(c, "read_resource", {"uri": "demo://resource/dynamic/text/2"})
            missing = await run_tool(c, "read_resource", {"uri": "demo://nothing/here"})
    assert "[resource link: Text Resource 2 <demo://resource/dynamic/text/2> (text/plain)" in (
        links.output
    )
    assert "demo://resource/static/document/" in listed.output
    assert read.status == "ok" and "Resource 2" in read.output
    assert missing.status == "error"


async def test_prompts_listed_read_and_added_to_the_instructions(make: Make) -> None:
    server = make(prompt_instructions=[("args-prompt", {"city": "Oslo"})])
    with trio.fail_after(40):
        async with session_with(server) as session:
            client = server.client(session)
            prompts = {p.name: p for p in await client.list_prompts()}
            simple = await client.get_prompt("simple-prompt")
            instructions = session.config.instructions
        with pytest.raises(Exception, match="no prompt 'no-such-prompt'"):
            async with session_with(make(prompt_instructions=["no-such-prompt"])):
                pass
    assert [(a.name, a.required) for a in prompts["args-prompt"].arguments] == [
        ("city", True),
        ("state", False),
    ]
    assert simple.as_instructions() == "This is a simple prompt without arguments."
    assert instructions.endswith("What's weather in Oslo?")
    assert instructions.startswith(Agent.instructions)


class _Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.arrived = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.arrived.set()


async def test_server_log_messages_go_to_python_logging(make: Make) -> None:
    server = make(log_level="debug")
    caught = _Caught()
    server.logger.addHandler(caught)
    server.logger.setLevel(logging.DEBUG)
    try:
        with trio.fail_after(40):
            async with opened(server) as c:
                await run_tool(c, "toggle-simulated-logging")
                await caught.arrived.wait()
    finally:
        server.logger.removeHandler(caught)
    assert server.logger.name == f"cantata.mcp.{server.name}"
    record = caught.records[0]
    # "Debug-level message", "Alert level-message": the server's own words for its level.
    level = record.getMessage().split("-")[0].split()[0].lower()
    python = {"notice": "INFO", "alert": "CRITICAL", "emergency": "CRITICAL"}.get(level, level)
    assert record.levelname == python.upper()


async def test_a_new_resource_is_announced(make: Make) -> None:
    server = make()
    with trio.fail_after(40):
        async with session_with(server) as session:
            client = server.client(session)
            before = {r.uri for r in await client.list_resources()}
            async with trio.open_nursery() as nursery:
                changed = trio.Event()

                async def wait() -> None:
                    await client.wait_changed("resources")
                    changed.set()

                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                tool = session.tools["gzip-file-as-resource"]
                data = "data:text/plain;base64,aGVsbG8gd29ybGQ="
                outcome = await tool.invoke(json.dumps({"name": "hello.gz", "data": data}))
                await changed.wait()
            after = {r.uri for r in await client.list_resources()}
    assert outcome.status == "ok", outcome.output
    assert after - before == {"demo://resource/session/hello.gz"}
