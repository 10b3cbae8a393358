"""The time bot: an agent whose tools come from a real MCP server, offline.

What it shows: the MCP plugin starting ``mcp-server-time`` as a child process
over stdio (``McpServer.stdio(...)`` in the agent's ``plugins``), listing its
tools and handing them to the session as function tools; the local engine's
scripted brain (``time_bot.toml``) calling ``get_current_time`` and
``convert_time``; and replies built from fields of the tools' JSON output.
No key, no network, no model.

Run it from the repository root::

    .venv/bin/python examples/time_bot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from framework import Agent, open_session
from framework.testing import run_engine
from plugins.mcp import McpServer

RULES = Path(__file__).with_name("time_bot.toml")


class TimeBot(Agent):
    instructions = "You tell the time in any city and convert times between zones."
    output_modalities = ("text",)
    # A real MCP server, started with the session and stopped with it.
    plugins = (McpServer.stdio(sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"),)


async def main() -> None:
    async with (
        run_engine(rules=RULES) as url,
        open_session(TimeBot(), url=url) as session,
    ):
        print(f"local engine: {url} (a deterministic scripted model, rules {RULES.name})")
        for text in (
            "What time is it in Tokyo?",
            "Please convert 09:30 from Europe/London to America/New_York.",
        ):
            print(f"user:      {text}")
            result = await session.run(text)
            for call in result.tool_calls:
                print(f"tool:      {call.name}({call.arguments}) [{call.status}]")
            print(f"assistant: {result.text}")


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
