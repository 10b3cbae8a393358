"""Hosted MCP through the runtime: the server calls the MCP server, the agent approves.

The engine runs the calls of a real streamable-HTTP MCP server on loopback;
the agent declares it as a hosted tool, and its approval requests go through
the same flow as local tools: the application decides, or the deadline does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from framework import Agent, open_session
from framework.engine import Engine, Rules, open_engine
from framework.protocol import McpTool, McpToolApprovalFilter, McpToolFilter
from framework.runtime import ApprovalRequested, McpCallFinished, McpToolsListed
from plugins.mcp._hosted import StreamableHttpMcpClient

from ..engine.test_hosted_mcp import RULES, docs_server, serve_mcp


@pytest.fixture
async def urls() -> AsyncIterator[tuple[str, str, list[str]]]:
    ran: list[str] = []
    engine = Engine(rules=Rules.from_toml(RULES), mcp_client=StreamableHttpMcpClient())
    async with trio.open_nursery() as nursery:
        mcp_url = await nursery.start(serve_mcp, docs_server(ran))
        async with open_engine(engine) as running:
            yield running.url, mcp_url, ran
        nursery.cancel_scope.cancel()


def docs(mcp_url: str) -> McpTool:
    # Read-only tools run at once; the rest wait for the agent's approval.
    return McpTool(
        server_label="docs",
        server_url=mcp_url,
        require_approval=McpToolApprovalFilter(never=McpToolFilter(read_only=True)),
    )


async def test_listing_and_a_call_without_approval(urls: tuple[str, str, list[str]]) -> None:
    url, mcp_url, ran = urls
    bot = Agent(hosted_tools=[docs(mcp_url)], output_modalities=["text"])
    with trio.fail_after(20):
        async with open_session(bot, url=url) as session:
            async for event in session:
                if isinstance(event, McpToolsListed):
                    listed = event
                    break
            result = await session.run("look up trio")
            calls: list[McpCallFinished] = []
            async for event in session:  # the turn's events, still queued
                if isinstance(event, McpCallFinished):
                    calls.append(event)
                elif event == result.responses[-1]:
                    break
    assert listed.ok and listed.server_label == "docs"
    assert {"lookup", "delete_all"} <= set(listed.tools)
    assert ran == ["lookup trio"]
    assert [(c.name, c.output, c.error) for c in calls] == [
        ("lookup", "trio is a structured-concurrency library", None)
    ]
    assert result.text == "About trio: trio is a structured-concurrency library"
    assert result.tool_calls == ()  # the server ran it: nothing for the client to answer


@pytest.mark.parametrize("approve", [True, False])
async def test_approval_requests_go_through_the_app(
    urls: tuple[str, str, list[str]], approve: bool
) -> None:
    url, mcp_url, ran = urls
    bot = Agent(hosted_tools=[docs(mcp_url)], output_modalities=["text"])
    with trio.fail_after(20):
        async with open_session(bot, url=url) as session, trio.open_nursery() as nursery:

            async def decide() -> None:
                async for event in session:
                    if isinstance(event, ApprovalRequested):
                        request = event.request
                        assert (request.kind, request.tool) == ("mcp", "docs.delete_all")
                        assert request.parsed_arguments == {"confirm": True}
                        if approve:
                            session.approve(request)
                        else:
                            session.reject(request, "not today")
                        return

            nursery.start_soon(decide)
            result = await session.run("please delete everything")
    (answer,) = result.tool_calls
    assert answer.status == ("approved" if approve else "rejected")
    if approve:
        assert ran == ["delete_all True"]
        assert "Done: 12 documents deleted." in result.text
    else:
        assert ran == []
    assert len(result.responses) == 2  # the request, then exactly one follow-up
