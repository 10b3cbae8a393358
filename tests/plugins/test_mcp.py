"""The MCP plugin against real servers: in process, stdio from PyPI, streamable HTTP.

Every test does real I/O (threads, processes or sockets), so none uses the
autojump clock and each is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, EmbeddedResource, TextContent, TextResourceContents
from mcp_types import ToolAnnotations as Hints

from framework import Agent, open_session
from framework.plugin import installed_plugins
from framework.runtime import ApprovalRequested
from framework.testing import engine_wire, run_engine
from framework.tools import FunctionTool, ToolOutcome
from plugins.mcp import (
    McpPlugin,
    McpServer,
    McpServerError,
    McpToolAnnotations,
    McpToolError,
    parse_config,
    render_result,
)

from .mcp_servers import serve_asgi

SLOW_SERVER = str(Path(__file__).with_name("slow_mcp_server.py"))
TIME_SERVER = (sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC")

RULES = r"""
fallback = "Sorry."

[[rule]]
when = "what time"
call = "get_current_time"
args = { timezone = "UTC" }

[[rule]]
after = "get_current_time"
say = "Here it is: {output}"

[[rule]]
when = "wipe the (?P<what>\\w+)"
call = "wipe"
args = { what = "{what}" }

[[rule]]
after = "wipe"
say = "Wipe result: {output}"
"""


def demo_server(name: str = "demo") -> MCPServer:
    """An MCP server with a read-only tool, a failing one, and one that adds a tool."""
    server = MCPServer(name)

    @server.tool(annotations=Hints(read_only_hint=True))
    def add(a: int, b: int) -> int:
        """Adds two integers."""
        return a + b

    @server.tool(annotations=Hints(read_only_hint=True))
    def fetch(path: str) -> str:
        """Reads a file that is not there."""
        raise ToolError(f"no such file: {path}")

    @server.tool(annotations=Hints(destructive_hint=False))
    async def grow(ctx: Context) -> str:
        """Adds a tool, and says so."""

        def double(x: int) -> int:
            """Doubles a number."""
            return 2 * x

        server.add_tool(double, annotations=Hints(read_only_hint=True))
        await ctx.notify_tools_changed()
        return "grown"

    @server.tool(annotations=Hints(destructive_hint=True))
    def wipe(what: str) -> str:
        """Erases something for good."""
        return f"{what} wiped"

    return server


@asynccontextmanager
async def opened(
    server: McpServer, changed: Callable[[], None] = lambda: None
) -> AsyncIterator[dict[str, FunctionTool]]:
    """The plugin opened as a session would; yields its tools by name, kept current."""

    class Tools(dict[str, FunctionTool]):
        pass

    async with server.open(changed) as contribution:
        tools = Tools()

        def refresh() -> None:
            tools.clear()
            tools.update({t.name: t for t in contribution.tools()})

        refresh()
        tools.refresh = refresh  # type: ignore[attr-defined]
        yield tools


async def call(tools: dict[str, FunctionTool], name: str, **arguments: Any) -> ToolOutcome:
    return await tools[name].invoke(json.dumps(arguments))


# --- in process ---------------------------------------------------------------------------


async def test_in_process_lists_and_calls() -> None:
    with trio.fail_after(10):
        async with opened(McpServer.in_process(demo_server())) as tools:
            assert sorted(tools) == ["add", "fetch", "grow", "wipe"]
            add = tools["add"]
            assert add.description == "Adds two integers."
            assert add.parameters["required"] == ["a", "b"]
            assert add.definition().name == "add"
            outcome = await call(tools, "add", a=2, b=40)
            missing = await call(tools, "add", a=2)
    assert (outcome.status, outcome.output) == ("ok", "42")
    # Checked here, not sent: a required key is missing.
    assert missing.status == "bad_arguments"
    assert "missing required argument @ $.b" in missing.output


async def test_a_tool_error_reaches_the_model_with_its_cause() -> None:
    with trio.fail_after(10):
        async with opened(McpServer.in_process(demo_server())) as tools:
            failed = await call(tools, "fetch", path="/etc/motd")
            invalid = await call(tools, "add", a="two", b=2)
    assert failed.status == "error"
    assert "no such file: /etc/motd" in failed.output
    assert isinstance(failed.exception, McpToolError)
    # The server's own validation message, not a generic failure.
    assert invalid.status == "error" and "valid integer" in invalid.output


async def test_tools_list_changed_refreshes_the_tools() -> None:
    changed = trio.Event()
    with trio.fail_after(10):
        async with opened(McpServer.in_process(demo_server()), changed.set) as tools:
            assert "double" not in tools
            assert (await call(tools, "grow")).output == "grown"
            await changed.wait()
            tools.refresh()  # type: ignore[attr-defined]
            doubled = await call(tools, "double", x=21)
    assert doubled.output == "42"


async def test_allowed_tools_and_names_the_model_accepts() -> None:
    server = demo_server()

    @server.tool(name="files.read", annotations=Hints(read_only_hint=True))
    def read(path: str) -> str:
        """Reads a file."""
        return f"contents of {path}"

    with trio.fail_after(10):
        async with opened(
            McpServer.in_process(server, allowed_tools=["add", "files.read"])
        ) as tools:
            assert sorted(tools) == ["add", "files_read"]
            outcome = await call(tools, "files_read", path="a.txt")
    assert outcome.output == "contents of a.txt"  # called by its MCP name


async def test_schema_tools_check_the_shape_and_leave_the_values_to_the_server() -> None:
    seen: list[dict[str, Any]] = []

    async def record(arguments: dict[str, Any]) -> dict[str, Any]:
        seen.append(arguments)
        return {"ok": True}

    schema = {"properties": {"city": {"type": "string"}}, "required": ["city"]}
    strict = FunctionTool.from_schema(
        "lookup", "Looks up.", {**schema, "additionalProperties": False}, record
    )
    assert strict.definition().parameters == {**schema, "additionalProperties": False}
    assert (await strict.invoke('{"city": 7}')).output == '{"ok":true}'  # the server's to check
    assert (await strict.invoke("[1]")).status == "bad_arguments"
    extra = await strict.invoke('{"city": "Oslo", "when": "now"}')
    assert "unknown argument (expected one of: city) @ $.when" in extra.output
    assert seen == [{"city": 7}]
    with pytest.raises(TypeError, match="must describe an object"):
        FunctionTool.from_schema("bad", "", {"type": "array"}, record)
    with pytest.raises(ValueError, match="invalid"):
        FunctionTool.from_schema("files.read", "", schema, record)


def test_results_become_text() -> None:
    structured = CallToolResult(content=[], structured_content={"temperature": 21})
    assert render_result(structured) == '{"temperature":21}'
    mixed = CallToolResult(
        content=[
            TextContent(text="first"),
            EmbeddedResource(resource=TextResourceContents(uri="file:///a", text="second")),
        ]
    )
    assert render_result(mixed) == "first\nsecond"
    with pytest.raises(McpToolError, match="quota exceeded"):
        render_result(CallToolResult(content=[TextContent(text="quota exceeded")], is_error=True))


# --- approval by annotation ------------------------------------------------------------


async def test_approval_follows_annotations_and_can_be_overridden() -> None:
    server = demo_server()

    @server.tool()
    def mystery() -> str:
        """Says nothing about itself."""
        return "?"

    def approvals(**options: Any) -> dict[str, bool]:
        plugin = McpServer.in_process(server, **options)
        return {
            name: plugin.annotations_need_approval(name, hints)
            for name, hints in {
                "add": McpToolAnnotations(read_only=True),
                "grow": McpToolAnnotations(destructive=False),
                "wipe": McpToolAnnotations(destructive=True),
                "mystery": McpToolAnnotations(),
            }.items()
        }

    assert approvals() == {"add": False, "grow": False, "wipe": True, "mystery": True}
    assert set(approvals(approval="never").values()) == {False}
    assert set(approvals(approval="always").values()) == {True}
    assert approvals(tool_approval={"wipe": False, "add": True}) == {
        "add": True,
        "grow": False,
        "wipe": False,
        "mystery": True,
    }
    only_declared = approvals(approval=lambda name, hints: hints.destructive is True)
    assert only_declared == {"add": False, "grow": False, "wipe": True, "mystery": False}
    with trio.fail_after(10):
        async with opened(McpServer.in_process(server)) as tools:
            needs = {name: await t.needs_approval_for("{}") for name, t in tools.items()}
    assert needs == {"add": False, "fetch": False, "grow": False, "wipe": True, "mystery": True}


async def test_a_destructive_tool_waits_for_approval_in_a_session() -> None:
    bot = Agent(plugins=[McpServer.in_process(demo_server())], output_modalities=["text"])
    asked: list[str] = []

    async def approve(session: Any) -> None:
        async for event in session:
            if isinstance(event, ApprovalRequested):
                asked.append(event.request.tool)
                session.approve(event.request)
                return

    with trio.fail_after(10):
        async with (
            engine_wire(rules=RULES) as wire,
            open_session(bot, connection=wire) as session,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(approve, session)
            result = await session.run("please wipe the disk")
    assert asked == ["wipe"]
    assert result.text == "Wipe result: disk wiped"


# --- streamable HTTP -------------------------------------------------------------------


@asynccontextmanager
async def serve_http(server: MCPServer) -> AsyncIterator[str]:
    """Serves the server's streamable-HTTP app on a loopback port; yields its endpoint."""
    async with serve_asgi(server.streamable_http_app()) as base:
        yield base + "/mcp"


async def test_streamable_http_lists_calls_and_hears_changes() -> None:
    changed = trio.Event()
    with trio.fail_after(15):
        async with serve_http(demo_server("remote")) as url:
            plugin = McpServer.http(url, headers={"X-Trace": "test"})
            port = urlsplit(url).port
            assert plugin.name == f"localhost-{port}"
            async with opened(plugin, changed.set) as tools:
                assert sorted(tools) == ["add", "fetch", "grow", "wipe"]
                added = await call(tools, "add", a=1, b=2)
                failed = await call(tools, "fetch", path="x")
                await call(tools, "grow")
                await changed.wait()
                tools.refresh()  # type: ignore[attr-defined]
                assert "double" in tools
    assert added.output == "3"
    assert failed.status == "error" and "no such file: x" in failed.output


# --- stdio ----------------------------------------------------------------------------


async def test_the_time_server_from_pypi() -> None:
    plugin = McpServer.stdio(*TIME_SERVER)
    assert plugin.name == "mcp_server_time"
    with trio.fail_after(20):
        async with opened(plugin) as tools:
            assert sorted(tools) == ["convert_time", "get_current_time"]
            # Both are annotated read-only: no approval by default.
            assert not any([await t.needs_approval_for("{}") for t in tools.values()])
            now = await call(tools, "get_current_time", timezone="UTC")
            bad = await call(tools, "get_current_time", timezone="Mars/Olympus_Mons")
    assert now.status == "ok"
    assert json.loads(now.output)["timezone"] == "UTC"
    assert bad.status == "error" and "Mars/Olympus_Mons" in bad.output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_server_killed_mid_call_is_reported_then_restarted() -> None:
    plugin = McpServer.stdio(sys.executable, SLOW_SERVER, max_restarts=1)
    with trio.fail_after(20):
        async with opened(plugin) as tools:
            first = int((await call(tools, "pid")).output)

            async def kill_soon() -> None:
                await trio.sleep(0.3)
                os.kill(first, signal.SIGKILL)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_soon)
                start = trio.current_time()
                killed = await call(tools, "slow", seconds=30)
                took = trio.current_time() - start
            second = int((await call(tools, "pid")).output)
            died = await call(tools, "die", code=3)
            down = await call(tools, "pid")
        assert not _alive(second)
    assert killed.status == "error" and took < 5
    assert "was killed by SIGKILL during the call" in killed.output
    assert "will be restarted on the next call" in killed.output
    assert second != first
    assert "exited with code 3" in died.output
    assert "out of cheese (exiting with 3)" in died.output  # the server's stderr
    assert isinstance(down.exception, McpServerError)
    assert "is down (exited with code 3)" in down.output
    assert "not restarted again after 1 time(s)" in down.output


async def test_a_cancelled_call_and_a_stubborn_server_s_bounded_teardown() -> None:
    plugin = McpServer.stdio(sys.executable, SLOW_SERVER, "--stubborn")
    with trio.fail_after(20):
        async with opened(plugin) as tools:
            pid = int((await call(tools, "pid")).output)
            with trio.move_on_after(0.3) as barged_in:
                await call(tools, "slow", seconds=30)
            again = await call(tools, "pid")
            start = trio.current_time()
        took = trio.current_time() - start
    assert barged_in.cancelled_caught
    assert again.output == str(pid)  # the call was cancelled, not the server
    assert not _alive(pid)
    assert took < 4.0  # stdin closed, SIGTERM ignored, SIGKILL


async def test_a_server_that_cannot_start_fails_fast_with_its_cause() -> None:
    with trio.fail_after(20):
        with pytest.raises(McpServerError) as crashed:
            async with opened(McpServer.stdio(sys.executable, SLOW_SERVER, "--fail-at-start")):
                pass
        with pytest.raises(McpServerError) as missing:
            async with opened(McpServer.stdio("/nonexistent/mcp-server")):
                pass
    assert "did not start" in str(crashed.value)
    assert "exited with code 2" in str(crashed.value)
    assert "permission denied" in str(crashed.value)
    assert "FileNotFoundError" in str(missing.value)


# --- sessions -------------------------------------------------------------------------


async def test_a_session_calls_a_stdio_server_and_says_the_output() -> None:
    bot = Agent(plugins=[McpServer.stdio(*TIME_SERVER)], output_modalities=["text"])
    with trio.fail_after(20):
        async with run_engine(rules=RULES) as url, open_session(bot, url=url) as session:
            result = await session.run("what time is it?")
    (tool_call,) = result.tool_calls
    assert (tool_call.name, tool_call.status) == ("get_current_time", "ok")
    assert json.loads(tool_call.output)["timezone"] == "UTC"
    assert result.text.startswith("Here it is: {")
    assert '"timezone": "UTC"' in result.text


async def test_colliding_tool_names_are_namespaced() -> None:
    books, films = (
        McpServer.in_process(demo_server(), name="books"),
        McpServer.in_process(demo_server(), name="films"),
    )
    with trio.fail_after(10):
        async with engine_wire(rules=RULES) as wire:
            bot = Agent(plugins=[books, films], output_modalities=["text"])
            async with open_session(bot, connection=wire) as session:
                separate = sorted(session.tools)
        async with engine_wire(rules=RULES) as wire:
            group = McpPlugin([books, films])
            bot = Agent(plugins=[group], output_modalities=["text"])
            async with open_session(bot, connection=wire) as session:
                grouped = session.tools
                added = await grouped["films_add"].invoke('{"a": 1, "b": 1}')
                # Each server's resources and prompts, by its name in the group.
                assert group.client(session, "films").name == "films"
                with pytest.raises(LookupError, match="open: books, films"):
                    group.client(session, "music")
                with pytest.raises(LookupError, match="ask the plugin"):
                    books.client(session)  # it is open inside the group, not on its own
    # Separate plugins: the session prefixes every clashing tool, on both sides.
    assert set(separate) == {
        f"{server}_{tool}"
        for server in ("books", "films")
        for tool in ("add", "fetch", "grow", "wipe")
    }
    # One McpPlugin: every clashing tool is prefixed, neither server wins the bare name.
    assert sorted(grouped) == sorted(
        f"{server}_{tool}"
        for server in ("books", "films")
        for tool in ("add", "fetch", "grow", "wipe")
    )
    assert added.output == "2"


# --- the installed plugin and its config ----------------------------------------------


def test_the_config_file_format(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {"command": "uvx", "args": ["mcp-server-time"], "approval": "never"},
                    "docs": {"url": "https://example.com/mcp", "headers": {"A": "b"}, "timeout": 5},
                    "old": {"command": "x", "disabled": True},
                }
            }
        )
    )
    time, docs = parse_config(config.read_text(), config)
    assert (time.name, time.target.describe(), time.approval) == (
        "time",
        "stdio: uvx mcp-server-time",
        "never",
    )
    assert (docs.name, docs.call_timeout) == ("docs", 5.0)
    assert McpPlugin(config=config).describe() == {
        "mcp servers": [
            "time (stdio: uvx mcp-server-time)",
            "docs (http: https://example.com/mcp)",
        ],
        "engine": ["mcp_client (hosted MCP over streamable HTTP)"],
    }
    with pytest.raises(ValueError, match=r"mcpServers\.bad: expected a command"):
        parse_config('{"mcpServers": {"bad": {"args": []}}}')


def test_the_mcp_plugin_is_installed() -> None:
    # The built-in plugin registers through the same entry point as third-party ones.
    found = {p.name: p for p in installed_plugins()}
    assert "mcp" in found, "the package's entry points are not installed (pip install -e .)"
    assert isinstance(found["mcp"].plugin, McpPlugin)


async def test_a_cancelled_call_is_cancelled_on_the_server() -> None:
    server = MCPServer("slow")
    started, stopped = trio.Event(), trio.Event()

    @server.tool(annotations=Hints(read_only_hint=True))
    async def wait_forever() -> str:
        """Waits until it is cancelled."""
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            stopped.set()
        return "never"

    with trio.fail_after(10):
        async with opened(McpServer.in_process(server)) as tools:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, tools, "wait_forever")
                await started.wait()
                nursery.cancel_scope.cancel()  # a barge-in, say
            await stopped.wait()  # the server's handler was cancelled too
        # Over stdio: the client's notifications/cancelled stops the server's handler.
        async with opened(McpServer.stdio(sys.executable, SLOW_SERVER)) as tools:
            waiting = trio.Event()
            async with trio.open_nursery() as nursery:

                async def wait_forever() -> None:
                    await tools["wait_forever"].run({}, on_progress=lambda _: waiting.set())

                nursery.start_soon(wait_forever)
                await waiting.wait()  # the server's handler runs
                nursery.cancel_scope.cancel()
            told = await call(tools, "was_cancelled")
    assert told.output == "yes"
