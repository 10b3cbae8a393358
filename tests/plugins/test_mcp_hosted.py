"""Hosted MCP: one event per listing, failed or not; task-only tools the engine runs as tasks."""

from __future__ import annotations

from pathlib import Path

import trio

from framework import Agent, open_session
from framework.protocol import McpTool
from framework.runtime import ErrorReported, McpCallFinished, McpToolsListed, SessionEvent
from framework.testing import engine_wire
from plugins.mcp._hosted import StreamableHttpMcpClient

from .mcp_servers import serve_everything


async def test_a_failed_listing_is_one_failure_event() -> None:
    # Port 1: nothing listens there, so the engine's listing fails at once.
    broken = McpTool(server_label="broken", server_url="http://127.0.0.1:1/mcp")
    bot = Agent(hosted_tools=[broken], output_modalities=["text"])
    client = StreamableHttpMcpClient(connect_timeout_s=5, list_timeout_s=10)
    seen: list[SessionEvent] = []
    with trio.fail_after(20):
        async with (
            engine_wire(mcp_client=client) as wire,
            open_session(bot, connection=wire) as session,
        ):
            # The engine reports why after the listing's item is done: the last word.
            async for event in session:
                seen.append(event)
                if isinstance(event, ErrorReported):
                    break
    listed = [e for e in seen if isinstance(e, McpToolsListed)]
    assert [(e.server_label, e.ok, list(e.tools)) for e in listed] == [("broken", False, [])]
    (error,) = [e for e in seen if isinstance(e, ErrorReported)]
    assert error.error.code == "mcp_list_tools_failed"


HOSTED_RULES = r"""
fallback = "Sorry."

[[rule]]
when = "research (?P<topic>\\w+)"
call = "everything.simulate-research-query"
args = { topic = "{topic}" }

[[rule]]
after = "everything.simulate-research-query"
say = "{output}"
"""


async def test_the_engine_runs_a_task_only_tool_as_a_task(everything: Path) -> None:
    client = StreamableHttpMcpClient()
    seen: list[SessionEvent] = []
    with trio.fail_after(40):
        async with serve_everything(everything, "streamableHttp") as url:
            server = McpTool(server_label="everything", server_url=url, require_approval="never")
            bot = Agent(hosted_tools=[server], output_modalities=["text"])
            async with (
                engine_wire(rules=HOSTED_RULES, mcp_client=client) as wire,
                open_session(bot, connection=wire) as session,
            ):
                async for event in session:
                    seen.append(event)
                    if isinstance(event, McpToolsListed):
                        break
                result = await session.run("research trio")
                async for event in session:
                    seen.append(event)
                    if isinstance(event, McpCallFinished):
                        break
    (listed,) = [e for e in seen if isinstance(e, McpToolsListed)]
    assert listed.ok and "simulate-research-query" in listed.tools
    (call,) = [e for e in seen if isinstance(e, McpCallFinished)]
    assert call.error is None
    assert call.output is not None and "# Research Report: trio" in call.output
    assert "# Research Report: trio" in result.text
