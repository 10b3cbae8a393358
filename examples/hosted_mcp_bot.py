"""The hosted MCP bot: the Realtime server calls an MCP server for the agent. Offline.

What it shows: hosted MCP, where the agent only declares the server
(``hosted_tools = [McpTool(...)]``) and the Realtime server lists its tools
and runs the calls. The example starts, all in one process on loopback:

- a small MCP server (the ``mcp`` SDK's ``MCPServer``, served over streamable
  HTTP by hypercorn's trio worker) with a read-only ``lookup`` tool and a
  destructive ``delete_note`` tool;
- the local engine with the MCP plugin's hosted-MCP client, its scripted
  brain following ``hosted_mcp_bot.toml``;
- a session whose agent says read-only tools never need approval, so the
  lookup runs at once and the deletion waits for the application, which
  approves it.

It prints the ``McpToolsListed`` and ``McpCallFinished`` events and the
approval. No key, no network beyond 127.0.0.1, no model.

Run it from the repository root::

    .venv/bin/python examples/hosted_mcp_bot.py
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from framework import (
    Agent,
    ApprovalRequested,
    McpCallFinished,
    McpToolsListed,
    Session,
    open_session,
)
from framework.protocol import McpTool, McpToolApprovalFilter, McpToolFilter
from framework.testing import run_engine
from plugins.mcp._hosted import StreamableHttpMcpClient

RULES = Path(__file__).with_name("hosted_mcp_bot.toml")


def notes_server() -> MCPServer:
    """An MCP server keeping a few notes: one tool reads, one deletes."""
    notes = {"groceries": "milk, eggs and bread", "trip": "the train leaves at 9"}
    server = MCPServer("notes", log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def lookup(title: str) -> str:
        """Reads a note."""
        return notes.get(title.lower(), "there is no such note")

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
    def delete_note(title: str) -> str:
        """Deletes a note for good."""
        if notes.pop(title.lower(), None) is None:
            return f"there was no note {title}"
        return f"note {title} is deleted"

    return server


async def serve_mcp(server: MCPServer, task_status: trio.TaskStatus[str]) -> None:
    """Serves ``server`` over streamable HTTP on a free loopback port; starts with its URL."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("examples.mcp")
    config.graceful_timeout = 0.5
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, server.streamable_http_app(), config, mode="asgi")  # type: ignore[arg-type]
        )
        task_status.started(binds[0] + "/mcp")


class NotesBot(Agent):
    instructions = "You read the user's notes and delete them when asked. Be brief."
    output_modalities = ("text",)
    approval_timeout = 10.0


async def watch(session: Session, listed: trio.Event) -> None:
    """Prints the hosted-MCP events; approves what asks for approval."""
    async for event in session:
        if isinstance(event, McpToolsListed):
            state = "ok" if event.ok else "failed"
            print(f"mcp:       {event.server_label} lists {', '.join(event.tools)} [{state}]")
            listed.set()
        elif isinstance(event, McpCallFinished):
            result = event.output if event.error is None else f"error: {event.error}"
            print(f"mcp call:  {event.server_label}.{event.name}({event.arguments}) -> {result!r}")
        elif isinstance(event, ApprovalRequested):
            request = event.request
            print(f"approval:  {request.tool}({request.arguments}) [{request.kind}] -> approved")
            session.approve(request)


async def main() -> None:
    async with trio.open_nursery() as servers:
        mcp_url = await servers.start(serve_mcp, notes_server())
        print(f"mcp server: {mcp_url} (streamable HTTP)")
        notes = McpTool(
            server_label="notes",
            server_url=mcp_url,
            # Read-only tools run at once; every other tool asks first.
            require_approval=McpToolApprovalFilter(never=McpToolFilter(read_only=True)),
        )
        async with (
            run_engine(rules=RULES, mcp_client=StreamableHttpMcpClient()) as url,
            open_session(NotesBot(hosted_tools=[notes]), url=url) as session,
            trio.open_nursery() as nursery,
        ):
            print(f"local engine: {url} (a deterministic scripted model, rules {RULES.name})")
            listed = trio.Event()
            nursery.start_soon(watch, session, listed)
            with trio.fail_after(10):
                await listed.wait()
            for text in (
                "What does note groceries say?",
                "Please delete note groceries.",
                "What does note groceries say?",
            ):
                print(f"user:      {text}")
                result = await session.run(text)
                for call in result.tool_calls:
                    print(f"answered:  {call.name} [{call.status}]")
                print(f"assistant: {result.text}")
            nursery.cancel_scope.cancel()
        servers.cancel_scope.cancel()


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
