"""A tiny stdio MCP server for the crash tests: a slow tool, its pid, a way to die,
and a call that only ends when the client cancels it.

Run as ``python slow_mcp_server.py`` (the tests do, through ``McpServer.stdio``);
``--fail-at-start`` exits at once, ``--stubborn`` outlives its stdin and SIGTERM,
``--noisy`` prints lines that are not JSON-RPC on stdout first.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("slow")
READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(annotations=READ_ONLY)
async def slow(seconds: float) -> str:
    """Waits, then answers."""
    await anyio.sleep(seconds)
    return "done"


_cancelled: list[anyio.Event] = [anyio.Event()]


@server.tool(annotations=READ_ONLY)
async def wait_forever(ctx: Context) -> str:
    """Says it has started, then waits until the client cancels the call."""
    try:
        await ctx.report_progress(0, 1, "waiting")
        await anyio.sleep_forever()
    finally:
        _cancelled[0].set()
    return "never"


@server.tool(annotations=READ_ONLY)
async def was_cancelled() -> str:
    """Says whether a wait_forever call was cancelled (waiting up to 5 s for it)."""
    with anyio.move_on_after(5):
        await _cancelled[0].wait()
    return "yes" if _cancelled[0].is_set() else "no"


@server.tool(annotations=READ_ONLY)
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool(annotations=READ_ONLY)
def die(code: int) -> str:
    """Says why on stderr, then exits at once."""
    print(f"out of cheese (exiting with {code})", file=sys.stderr, flush=True)
    os._exit(code)


if __name__ == "__main__":
    if "--noisy" in sys.argv:
        # What a careless server prints on stdout before it speaks MCP there.
        print("starting up...\n{not json\n[1, 2]\n" + "x" * 100_000, flush=True)
    if "--fail-at-start" in sys.argv:
        print("cannot open the database: permission denied", file=sys.stderr, flush=True)
        sys.exit(2)
    if "--stubborn" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server.run()
    if "--stubborn" in sys.argv:
        time.sleep(60)  # ignores the end of its stdin too: only SIGKILL stops it
