"""Hosted MCP as the application hears of it: one event per listing, failed or not."""

from __future__ import annotations

import trio

from framework import Agent, open_session
from framework.protocol import McpTool
from framework.runtime import ErrorReported, McpToolsListed, SessionEvent
from framework.testing import engine_wire
from plugins.mcp._hosted import StreamableHttpMcpClient


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
