"""Several MCP servers in one session: names, clashes, and the legacy SSE transport.

``mcp-server-git`` (PyPI) runs twice, one per repository: two instances of
one server must keep their tools apart, and a clash that would hide tools
stops the session at its start. ``server-everything`` (npm) runs over the
older HTTP+SSE transport. Every test does real I/O and is bounded by
``trio.fail_after``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from framework import Agent, open_session
from framework.plugin import PluginError
from framework.runtime import ToolProgress
from framework.testing import engine_wire
from framework.tools import ProgressReport
from plugins.mcp import McpPlugin, McpServer, parse_config

from .mcp_servers import answering, opened, run_tool, serve_everything, tools_of

RULES = r"""
fallback = "Sorry."

[[rule]]
when = 'what changed in (?P<repo>/\S+) \?'
call = "mcp_server_git-alpha_git_log"
args = { repo_path = "{repo}", max_count = 1 }

[[rule]]
after = "mcp_server_git-alpha_git_log"
say = "{output}"

[[rule]]
when = "take your time"
call = "trigger-long-running-operation"
args = { duration = 2, steps = 4 }

[[rule]]
after = "trigger-long-running-operation"
say = "{output}"
"""


def repository(root: Path, name: str) -> Path:
    """A git repository with one commit whose message names it."""
    path = root / name
    path.mkdir()
    env = {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "HOME": str(root),
    }
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "commit", "-q", "--allow-empty", "-m", f"the first commit of {name}"],
    ):
        subprocess.run(command, cwd=path, env=env, check=True, timeout=30)
    return path


def git(repo: Path, **options: object) -> McpServer:
    return McpServer.stdio(
        sys.executable, "-m", "mcp_server_git", "--repository", str(repo), **options
    )


async def test_two_git_servers_keep_their_tools_apart(tmp_path: Path) -> None:
    alpha, beta = repository(tmp_path, "alpha"), repository(tmp_path, "beta")
    servers = git(alpha), git(beta)
    assert [s.name for s in servers] == ["mcp_server_git-alpha", "mcp_server_git-beta"]
    bot = Agent(output_modalities=["text"], plugins=list(servers))
    with trio.fail_after(60):
        async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire) as session:
            names = set(session.tools)
            result = await session.run(f"what changed in {alpha} ?")
            beta_log = await session.tools["mcp_server_git-beta_git_log"].invoke(
                json.dumps({"repo_path": str(beta), "max_count": 1})
            )
    # Every tool of both servers is offered, under each server's prefix.
    assert {"mcp_server_git-alpha_git_status", "mcp_server_git-beta_git_status"} <= names
    assert not {n for n in names if n.startswith("git_")}
    assert "the first commit of alpha" in result.text
    assert "the first commit of beta" in beta_log.output


async def test_a_clash_that_would_hide_tools_stops_the_session(tmp_path: Path) -> None:
    alpha = repository(tmp_path, "alpha")
    same = git(alpha), git(alpha)
    with trio.fail_after(60):
        with pytest.raises(PluginError, match="two plugins are named 'mcp_server_git-alpha'"):
            bot = Agent(output_modalities=["text"], plugins=list(same))
            async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire):
                pass
        with pytest.raises(PluginError, match="two MCP servers are named 'mcp_server_git-alpha'"):
            async with opened(McpPlugin(same)):
                pass
        # Named apart, they serve side by side.
        apart = McpPlugin([git(alpha, name="left"), git(alpha, name="right")])
        async with opened(apart) as both:
            assert {"left_git_status", "right_git_status"} <= set(tools_of(both))


async def test_progress_reaches_the_application(everything: Path) -> None:
    server = McpServer.stdio("node", str(everything), "stdio", call_timeout=1.5)
    bot = Agent(output_modalities=["text"], plugins=[server])
    with trio.fail_after(40):
        async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire) as session:
            result = await session.run("take your time")
            progress = []
            while True:
                with trio.move_on_after(0) as empty:
                    event = await session.__anext__()
                if empty.cancelled_caught:
                    break
                if isinstance(event, ToolProgress):
                    progress.append(event)
    (call,) = result.tool_calls
    assert call.status == "ok", call.output
    assert [(p.name, p.call_id, p.progress, p.total) for p in progress] == [
        ("trigger-long-running-operation", call.call_id, float(n), 4.0) for n in (1, 2, 3, 4)
    ]


async def test_the_legacy_sse_transport(everything: Path) -> None:
    progress: list[ProgressReport] = []
    asked = answering({"name": "Ada"})
    with trio.fail_after(40):
        async with serve_everything(everything, "sse") as url:
            server = McpServer.sse(url)
            async with opened(server, elicit=asked) as c:
                summed = await run_tool(c, "get-sum", {"a": 2, "b": 40})
                long = await run_tool(
                    c,
                    "trigger-long-running-operation",
                    {"duration": 1, "steps": 2},
                    progress=progress,
                )
                answered = await run_tool(c, "trigger-elicitation-request")
            (from_file,) = parse_config(
                json.dumps({"mcpServers": {"e": {"url": url, "type": "sse"}}})
            )
    assert server.target.describe() == f"sse: {url}"
    assert "42" in summed.output
    assert long.status == "ok" and [p.progress for p in progress] == [1, 2]
    assert "- Name: Ada" in answered.output
    assert from_file.target.describe() == f"sse: {url}"
