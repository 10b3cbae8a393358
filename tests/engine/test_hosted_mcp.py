"""Hosted MCP on the local engine (§7.6), against a real streamable-HTTP MCP server.

The MCP server is an ``MCPServer`` served by hypercorn's trio worker on
loopback; the engine talks to it with the MCP plugin's client; the test
client is the raw WebSocket one, which checks every event against the SDK.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import ToolAnnotations

from framework.engine import (
    Engine,
    NoMcpClient,
    Rules,
    open_engine,
)
from framework.testing import run_engine
from plugins.mcp._hosted import StreamableHttpMcpClient

from .helpers import Client, connect, say, types

RULES = r"""
fallback = "I can look things up in the docs."

[[rule]]
when = "look up (?P<topic>\\w+)"
call = "docs.lookup"
args = { topic = "{topic}" }

[[rule]]
after = "docs.lookup"
say = "About {topic}: {output}"

[[rule]]
when = "delete everything"
say = "Deleting, once you approve."
call = "docs.delete_all"
args = { confirm = true }

[[rule]]
after = "docs.delete_all"
say = "Done: {output}."

[[rule]]
when = "explode"
call = "docs.explode"

[[rule]]
when = "reject"
call = "docs.reject"

[[rule]]
when = "take your time"
call = "docs.slow"
"""

# Read-only tools run at once; the others (delete_all) need approval.
READ_ONLY_FREE = {"never": {"read_only": True}}


def docs_server(ran: list[str]) -> MCPServer:
    """An MCP server with a read-only tool, a destructive one and two that fail."""
    server = MCPServer("docs")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def lookup(topic: str) -> str:
        """Looks a topic up in the docs."""
        ran.append(f"lookup {topic}")
        return f"{topic} is a structured-concurrency library"

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
    def delete_all(confirm: bool = False) -> str:
        """Deletes every document."""
        ran.append(f"delete_all {confirm}")
        return "12 documents deleted"

    @server.tool()
    def explode() -> str:
        """Always fails."""
        raise ToolError("the archive is on fire")

    @server.tool()
    def reject() -> str:
        """Answers with a JSON-RPC error."""
        raise MCPError(-32602, "reject takes no requests today")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def slow() -> str:
        """Takes a long time."""
        await trio.sleep(30)
        return "finally"

    return server


async def serve_mcp(server: MCPServer, task_status: trio.TaskStatus[str]) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tests.mcp")
    config.graceful_timeout = 0.5
    app = server.streamable_http_app()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, config, mode="asgi")  # type: ignore[arg-type]
        )
        task_status.started(binds[0] + "/mcp")


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
async def mcp_url(ran: list[str]) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(serve_mcp, docs_server(ran))
        yield url
        nursery.cancel_scope.cancel()


@pytest.fixture
async def url() -> AsyncIterator[str]:
    engine = Engine(rules=Rules.from_toml(RULES), mcp_client=StreamableHttpMcpClient())
    async with open_engine(engine) as running:
        yield running.url


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def mcp_tool(server_url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "docs", "server_url": server_url, **extra}


async def mcp_session(client: Client, *tools: dict[str, Any]) -> list[dict[str, Any]]:
    """Configures the tools; the events up to the end of the (first) listing."""
    session = {"type": "realtime", "output_modalities": ["text"], "tools": list(tools)}
    await client.send({"type": "session.update", "session": session})
    return await client.until("conversation.item.done")


async def turn(client: Client, text: str) -> list[dict[str, Any]]:
    await say(client, text)
    await client.send({"type": "response.create"})
    return await client.until("response.done")


def reply(events: list[dict[str, Any]]) -> str:
    """The text of the response's last assistant message."""
    output = events[-1]["response"]["output"]
    return str(output[-1]["content"][0]["text"])


MCP_CALL_EVENTS = [
    "response.output_item.added",
    "conversation.item.added",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
]


def mcp_call_events(events: list[dict[str, Any]]) -> list[str]:
    """The types of the events of the response's (first) mcp_call item."""
    kinds = types(events)
    start = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "response.output_item.added" and e["item"]["type"] == "mcp_call"
    )
    end = kinds.index("conversation.item.done", start)
    return [k for k in kinds[start : end + 1] if k != "response.mcp_call_arguments.delta"] + [
        "deltas" if "response.mcp_call_arguments.delta" in kinds[start:end] else "no deltas"
    ]


# --- listing -------------------------------------------------------------------------


async def test_tools_are_listed_on_session_update(url: str, mcp_url: str) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            events = await mcp_session(client, mcp_tool(mcp_url, require_approval="never"))
            assert types(events) == [
                "session.updated",
                "conversation.item.added",
                "mcp_list_tools.in_progress",
                "mcp_list_tools.completed",
                "conversation.item.done",
            ]
            added, done = events[1]["item"], events[-1]["item"]
            assert added == {
                "type": "mcp_list_tools",
                "id": added["id"],
                "server_label": "docs",
                "tools": [],
            }
            assert events[2]["item_id"] == events[3]["item_id"] == added["id"] == done["id"]
            tools = {t["name"]: t for t in done["tools"]}
            assert sorted(tools) == ["delete_all", "explode", "lookup", "reject", "slow"]
            assert tools["lookup"]["description"] == "Looks a topic up in the docs."
            assert tools["lookup"]["annotations"] == {"readOnlyHint": True}
            assert tools["lookup"]["input_schema"]["properties"]["topic"]["type"] == "string"
            tool = events[0]["session"]["tools"][0]
            assert tool["server_label"] == "docs" and tool["require_approval"] == "never"

            # The same server again is not listed again.
            await client.send({"type": "session.update", "session": {"type": "realtime"}})
            await client.until("session.updated")
            await client.nothing_for(0.3)


@pytest.mark.parametrize(
    ("allowed", "names"),
    [
        (["lookup", "explode", "nope"], ["explode", "lookup"]),
        ({"read_only": True}, ["lookup", "slow"]),
        ({"tool_names": ["delete_all", "reject"]}, ["delete_all", "reject"]),
    ],
)
async def test_allowed_tools_filter_the_listing(
    url: str, mcp_url: str, allowed: object, names: list[str]
) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            events = await mcp_session(client, mcp_tool(mcp_url, allowed_tools=allowed))
            assert sorted(t["name"] for t in events[-1]["item"]["tools"]) == names


# --- calls ---------------------------------------------------------------------------


async def test_call_without_approval(url: str, mcp_url: str, ran: list[str]) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            await mcp_session(client, mcp_tool(mcp_url, require_approval=READ_ONLY_FREE))
            events = await turn(client, "please look up trio")
            assert mcp_call_events(events) == [
                *MCP_CALL_EVENTS,
                "response.mcp_call.completed",
                "response.output_item.done",
                "conversation.item.done",
                "deltas",
            ]
            kinds = types(events)
            added = events[kinds.index("response.output_item.added")]["item"]
            assert added["type"] == "mcp_call" and added["arguments"] == ""
            assert added["server_label"] == "docs" and added["name"] == "lookup"
            args_done = events[kinds.index("response.mcp_call_arguments.done")]
            deltas = "".join(
                e["delta"] for e in events if e["type"] == "response.mcp_call_arguments.delta"
            )
            assert deltas == args_done["arguments"]
            assert json.loads(args_done["arguments"]) == {"topic": "trio"}
            call = events[kinds.index("response.output_item.done")]["item"]
            assert call["output"] == "trio is a structured-concurrency library"
            assert "error" not in call
            # The model goes on in the same response, with the output.
            assert kinds[-1] == "response.done"
            response = events[-1]["response"]
            assert response["status"] == "completed"
            assert [o["type"] for o in response["output"]] == ["mcp_call", "message"]
            assert reply(events) == "About trio: trio is a structured-concurrency library"
            assert ran == ["lookup trio"]


async def test_mcp_tools_of_one_response(url: str, mcp_url: str, ran: list[str]) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            session = {"type": "realtime", "output_modalities": ["text"]}
            await client.send({"type": "session.update", "session": session})
            await client.until("session.updated")
            await say(client, "look up attrs")
            tools = [mcp_tool(mcp_url, require_approval="never")]
            await client.send({"type": "response.create", "response": {"tools": tools}})
            events = await client.until("response.done")
            kinds = types(events)
            # The server is listed first, and the response waits for its tools.
            assert kinds.index("mcp_list_tools.completed") < kinds.index(
                "response.mcp_call.in_progress"
            )
            assert reply(events) == "About attrs: attrs is a structured-concurrency library"
            assert ran == ["lookup attrs"]


async def test_call_with_approval_granted(url: str, mcp_url: str, ran: list[str]) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            await mcp_session(client, mcp_tool(mcp_url, require_approval=READ_ONLY_FREE))
            events = await turn(client, "delete everything")
            kinds = types(events)
            assert kinds[-5:] == [
                "response.output_item.added",
                "conversation.item.added",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            request = events[-2]["item"]
            assert request == {
                "type": "mcp_approval_request",
                "id": request["id"],
                "server_label": "docs",
                "name": "delete_all",
                "arguments": '{"confirm": true}',
            }
            assert events[-5]["item"] == request
            assert [o["type"] for o in events[-1]["response"]["output"]] == [
                "message",
                "mcp_approval_request",
            ]
            assert ran == []  # nothing runs before the client says so

            approval = {
                "type": "mcp_approval_response",
                "id": "approval-1",
                "approval_request_id": request["id"],
                "approve": True,
            }
            await client.send({"type": "conversation.item.create", "item": approval})
            created = await client.until("conversation.item.done")
            assert types(created) == ["conversation.item.added", "conversation.item.done"]
            assert created[-1]["item"] == approval
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            assert mcp_call_events(events)[:-1] == [
                *MCP_CALL_EVENTS,
                "response.mcp_call.completed",
                "response.output_item.done",
                "conversation.item.done",
            ]
            output = events[-1]["response"]["output"]
            assert output[0]["type"] == "mcp_call"
            assert output[0]["approval_request_id"] == request["id"]
            assert output[0]["output"] == "12 documents deleted"
            assert reply(events) == "Done: 12 documents deleted."
            assert ran == ["delete_all True"]

            # Approved once, run once.
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            assert ran == ["delete_all True"]


async def test_call_with_approval_denied(url: str, mcp_url: str, ran: list[str]) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            await mcp_session(client, mcp_tool(mcp_url))  # no setting: every call asks
            events = await turn(client, "look up trio")
            request = events[-1]["response"]["output"][-1]
            assert request["type"] == "mcp_approval_request" and request["name"] == "lookup"
            approval = {
                "type": "mcp_approval_response",
                "id": "approval-2",
                "approval_request_id": request["id"],
                "approve": False,
                "reason": "not now",
            }
            await client.send({"type": "conversation.item.create", "item": approval})
            await client.until("conversation.item.done")
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            assert "response.mcp_call.in_progress" not in types(events)
            assert [o["type"] for o in events[-1]["response"]["output"]] == ["message"]
            assert reply(events) == "I did not run lookup: the call was not approved."
            assert ran == []


async def test_approval_responses_must_answer_a_request(url: str, mcp_url: str) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            await mcp_session(client, mcp_tool(mcp_url))
            item = {
                "type": "mcp_approval_response",
                "id": "approval-3",
                "approval_request_id": "mcpr_nope",
                "approve": True,
            }
            await client.send({"type": "conversation.item.create", "item": item})
            error = await client.error()
            assert error["code"] == "item_not_found"
            assert error["param"] == "item.approval_request_id"

            events = await turn(client, "delete everything")
            request_id = events[-1]["response"]["output"][-1]["id"]
            for n in (4, 5):
                answer = {**item, "id": f"approval-{n}", "approval_request_id": request_id}
                await client.send({"type": "conversation.item.create", "item": answer})
            await client.until("conversation.item.done")
            error = await client.error()
            assert error["code"] == "invalid_value" and "already has a response" in error["message"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "explode",
            {
                "type": "tool_execution_error",
                "message": "Error executing tool explode: the archive is on fire",
            },
        ),
        (
            "reject",
            {"type": "protocol_error", "code": -32602, "message": "reject takes no requests today"},
        ),
    ],
)
async def test_tool_errors(url: str, mcp_url: str, text: str, error: dict[str, Any]) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            await mcp_session(client, mcp_tool(mcp_url, require_approval="never"))
            events = await turn(client, text)
            assert mcp_call_events(events)[:-1] == [
                *MCP_CALL_EVENTS,
                "response.mcp_call.failed",
                "response.output_item.done",
                "conversation.item.done",
            ]
            call = events[-1]["response"]["output"][0]
            assert call["error"] == error and "output" not in call
            assert events[-1]["response"]["status"] == "completed"
            assert reply(events) == f"The {text} tool failed: {error['message']}"


async def test_cancel_during_a_call(url: str, mcp_url: str) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            await mcp_session(client, mcp_tool(mcp_url, require_approval="never"))
            await say(client, "take your time")
            await client.send({"type": "response.create"})
            await client.until("response.mcp_call.in_progress")
            await client.send({"type": "response.cancel"})
            events = await client.until("response.done")
            assert types(events) == [
                "response.mcp_call.failed",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            call = events[-1]["response"]["output"][0]
            assert call["error"]["type"] == "tool_execution_error"
            assert "cancelled" in call["error"]["message"]
            assert events[-1]["response"]["status"] == "cancelled"


# --- the server down -------------------------------------------------------------------


async def test_mcp_server_down_fails_the_listing(url: str) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            dead = f"http://127.0.0.1:{closed_port()}/mcp"
            events = await mcp_session(client, mcp_tool(dead, require_approval="never"))
            assert types(events) == [
                "session.updated",
                "conversation.item.added",
                "mcp_list_tools.in_progress",
                "mcp_list_tools.failed",
                "conversation.item.done",
            ]
            assert events[-1]["item"]["tools"] == []
            error = await client.error()
            assert error["code"] == "mcp_list_tools_failed"
            assert error["param"] == "session.tools[0]"
            assert error["message"].startswith(
                "Error retrieving tool list from MCP server: 'docs'. Could not reach the MCP "
                f"server at {dead}"
            )
            # Its tools are not offered: the model answers without them.
            events = await turn(client, "look up trio")
            assert reply(events) == "I can look things up in the docs."


async def test_http_status_fails_the_listing(url: str, mcp_url: str) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            wrong = mcp_url.removesuffix("/mcp") + "/nothing-here"
            events = await mcp_session(client, mcp_tool(wrong))
            assert types(events)[-2:] == ["mcp_list_tools.failed", "conversation.item.done"]
            error = await client.error()
            assert error["message"].endswith("Http status code: 404 (Not Found).")


async def test_mcp_server_down_fails_the_call_with_http_error(url: str, ran: list[str]) -> None:
    server_scope = trio.CancelScope()
    stopped = trio.Event()

    async def run_server(task_status: trio.TaskStatus[str]) -> None:
        with server_scope:
            await serve_mcp(docs_server(ran), task_status=task_status)
        stopped.set()

    with trio.fail_after(20):
        async with connect(url) as client, trio.open_nursery() as nursery:
            server_url: str = await nursery.start(run_server)
            await mcp_session(client, mcp_tool(server_url, require_approval="never"))
            server_scope.cancel()  # the server goes away after the listing
            await stopped.wait()
            events = await turn(client, "look up trio")
            call = events[-1]["response"]["output"][0]
            assert call["error"]["type"] == "http_error"
            assert call["error"]["code"] == 502
            assert call["error"]["message"].startswith(
                f"Could not reach the MCP server at {server_url}"
            )
            assert "response.mcp_call.failed" in types(events)
            assert reply(events).startswith("The lookup tool failed: Could not reach")
            assert ran == []


async def test_no_mcp_client_fails_the_listing_and_says_why() -> None:
    engine = Engine(rules=Rules.from_toml(RULES), mcp_client=NoMcpClient())
    with trio.fail_after(20):
        async with open_engine(engine) as running, connect(running.url) as client:
            events = await mcp_session(client, mcp_tool("http://127.0.0.1:9/mcp"))
            assert types(events)[-2:] == ["mcp_list_tools.failed", "conversation.item.done"]
            error = await client.error()
            assert "no hosted-MCP client" in error["message"]


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "code", "param"),
    [
        ({"type": "mcp", "server_label": "docs"}, "missing_required_parameter", "[0].server_url"),
        (
            {"type": "mcp", "server_label": "docs", "server_url": "ftp://x/mcp"},
            "invalid_value",
            "[0].server_url",
        ),
        (
            {
                "type": "mcp",
                "server_label": "docs",
                "server_url": "http://x/mcp",
                "connector_id": "connector_gmail",
            },
            "invalid_value",
            "[0].connector_id",
        ),
        (
            {"type": "mcp", "server_label": "my docs", "server_url": "http://x/mcp"},
            "invalid_value",
            "[0].server_label",
        ),
        (
            {"type": "mcp", "server_label": "docs", "connector_id": "connector_fax"},
            "invalid_value",
            "[0].connector_id",
        ),
        (
            {
                "type": "mcp",
                "server_label": "docs",
                "server_url": "http://x/mcp",
                "require_approval": "sometimes",
            },
            "invalid_value",
            "[0].require_approval",
        ),
        (
            {
                "type": "mcp",
                "server_label": "docs",
                "server_url": "http://x/mcp",
                "require_approval": {"never": {"read_only": True, "colour": "red"}},
            },
            "unknown_parameter",
            "[0].require_approval.never.colour",
        ),
    ],
)
async def test_invalid_mcp_tools_are_refused(
    url: str, tool: dict[str, Any], code: str, param: str
) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            session = {"type": "realtime", "tools": [tool]}
            await client.send({"type": "session.update", "session": session})
            error = await client.error()
            assert error["type"] == "invalid_request_error"
            assert (error["code"], error["param"]) == (code, f"session.tools{param}")
            await client.nothing_for(0.2)  # no listing starts


async def test_duplicate_labels_and_unknown_tool_choice_are_refused(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            tool = mcp_tool("http://127.0.0.1:9/mcp")
            await client.send(
                {"type": "session.update", "session": {"type": "realtime", "tools": [tool, tool]}}
            )
            error = await client.error()
            assert (error["code"], error["param"]) == (
                "invalid_value",
                "session.tools[1].server_label",
            )
            session = {
                "type": "realtime",
                "tools": [tool],
                "tool_choice": {"type": "mcp", "server_label": "wiki"},
            }
            await client.send({"type": "session.update", "session": session})
            error = await client.error()
            assert error["param"] == "session.tool_choice.server_label"


async def test_forced_mcp_tool_choice(url: str, mcp_url: str, ran: list[str]) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            session = {
                "type": "realtime",
                "output_modalities": ["text"],
                "tools": [mcp_tool(mcp_url, require_approval="never")],
                "tool_choice": {"type": "mcp", "server_label": "docs", "name": "lookup"},
            }
            await client.send({"type": "session.update", "session": session})
            await client.until("conversation.item.done")
            events = await turn(client, "hello")
            call = events[-1]["response"]["output"][0]
            assert (call["name"], call["arguments"]) == ("lookup", "{}")
            # Forced with empty arguments, which the server refuses.
            assert call["error"]["type"] == "tool_execution_error"
            assert ran == []


def _installed_mcp_plugin(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Installs a plugin offering the hosted-MCP client; returns the lookups made."""
    from framework import plugin

    class Hosted(plugin.Plugin):
        def engine_parts(self) -> dict[str, Any]:
            return {"mcp_client:streamable-http": StreamableHttpMcpClient}

    lookups: list[str] = []

    def installed() -> list[plugin.InstalledPlugin]:
        lookups.append("installed_plugins")
        return [plugin.InstalledPlugin(name="hosted", source="tests", plugin=Hosted())]

    monkeypatch.setattr(plugin, "installed_plugins", installed)
    return lookups


async def test_run_engine_uses_the_installed_plugins_client(
    mcp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = _installed_mcp_plugin(monkeypatch)
    with trio.fail_after(20):
        async with run_engine() as url:
            assert lookups == []  # looked up when a hosted MCP tool first needs it
            async with connect(url) as client:
                events = await mcp_session(client, mcp_tool(mcp_url))
                assert types(events)[-2:] == ["mcp_list_tools.completed", "conversation.item.done"]
    assert lookups == ["installed_plugins"]


async def test_the_engine_itself_never_scans_plugins(
    mcp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = _installed_mcp_plugin(monkeypatch)
    with trio.fail_after(20):
        async with open_engine(Engine()) as running, connect(running.url) as client:
            events = await mcp_session(client, mcp_tool(mcp_url))
            assert types(events)[-2:] == ["mcp_list_tools.failed", "conversation.item.done"]
            assert "Engine(mcp_client=...)" in (await client.error())["message"]
    assert lookups == []
