"""Hosted MCP in a session: listing each server's tools, and calling them.

For ``type: "mcp"`` tools the engine is the MCP client, through the injected
:class:`._hosted_mcp.HostedMcpClient`. When a ``session.update`` (or a
``response.create``) brings a server that is new or changed, the session
adds an ``mcp_list_tools`` item, sends ``mcp_list_tools.in_progress`` and
lists the server in a task of its own; ``.completed`` or ``.failed`` (with an
``error`` event saying why) follow when it answers. Responses that offer its
tools wait for the listing, so the model sees them. Calls run inside their
response's task (see :mod:`._mcp_calls`), so a cancel stops them too.

Bounds: one listing task per server and change, bounded by
:data:`._hosted_mcp.LIST_TIMEOUT_S`; each call by
:data:`._hosted_mcp.CALL_TIMEOUT_S`; a server the session drops is forgotten.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import attrs
import trio

from framework.protocol import (
    ConversationItemDone,
    McpListedTool,
    McpListToolsCompleted,
    McpListToolsFailed,
    McpListToolsInProgress,
    McpTool,
    RealtimeMcpListTools,
)

from ._config import RequestError
from ._conversation import Conversation
from ._hosted_mcp import (
    CALL_TIMEOUT_S,
    LIST_TIMEOUT_S,
    TIMED_OUT,
    HostedMcpClient,
    McpCallResult,
    McpListError,
    is_allowed,
)
from ._outbox import Outbox, Spawn
from ._stored_item import StoredItem


@attrs.define(kw_only=True, eq=False)
class _Server:
    """One hosted MCP server's listing, shared by the responses that offer its tools."""

    tool: McpTool
    key: tuple[object, ...]  # what the listing depends on: a change lists again
    item_id: str
    listed: trio.Event = attrs.Factory(trio.Event)
    ok: bool = False
    tools: list[McpListedTool] = attrs.Factory(list)  # the allowed ones


def _listing_key(tool: McpTool) -> tuple[object, ...]:
    headers = tool.headers
    allowed = tool.allowed_tools
    return (
        tool.server_url,
        tool.connector_id,
        tool.tunnel_id,
        tool.authorization,
        tuple(sorted(headers.items())) if isinstance(headers, Mapping) else headers,
        tuple(allowed) if isinstance(allowed, list) else allowed,
    )


class McpServers:
    """The session's hosted MCP servers, by label."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        conversation: Conversation,
        client: HostedMcpClient,
        spawn: Spawn,
    ) -> None:
        self._outbox = outbox
        self._conversation = conversation
        self._client = client
        self._spawn = spawn
        self._servers: dict[str, _Server] = {}

    async def offer(self, tools: Sequence[object], param: str) -> None:
        """Starts listing each MCP server among ``tools`` that is new or changed."""
        for index, tool in enumerate(tools):
            if not isinstance(tool, McpTool):
                continue
            key = _listing_key(tool)
            known = self._servers.get(tool.server_label)
            if known is not None and known.key == key:
                known.tool = tool  # the approval policy may have changed; no new listing
                continue
            server = _Server(tool=tool, key=key, item_id=self._outbox.new_id("mcpl"))
            self._servers[tool.server_label] = server
            item = RealtimeMcpListTools(id=server.item_id, server_label=tool.server_label, tools=[])
            await self._conversation.add(
                StoredItem(item=item), self._conversation.last_id(), done=False
            )
            await self._outbox.emit(
                McpListToolsInProgress(
                    event_id=self._outbox.new_id("event"), item_id=server.item_id
                )
            )
            self._spawn(self._list, server, f"{param}[{index}]")

    def keep_only(self, tools: Sequence[object]) -> None:
        """Forgets the servers not among ``tools``: offered again, they are listed again."""
        labels = {t.server_label for t in tools if isinstance(t, McpTool)}
        for label in [label for label in self._servers if label not in labels]:
            del self._servers[label]

    async def wait(self, labels: Iterable[str]) -> None:
        """Waits until the listings of these servers have settled."""
        for label in labels:
            server = self._servers.get(label)
            if server is not None:
                await server.listed.wait()

    def tools(self, labels: Iterable[str]) -> dict[str, Sequence[McpListedTool]]:
        """The tools the model may call, of the servers that listed them."""
        return {
            label: server.tools
            for label in labels
            if (server := self._servers.get(label)) is not None and server.ok
        }

    def listed(self, label: str, name: str) -> McpListedTool | None:
        """A server's listed tool (its annotations decide approval)."""
        server = self._servers.get(label)
        if server is None:
            return None
        return next((t for t in server.tools if t.name == name), None)

    async def call(self, tool: McpTool, name: str, arguments: str) -> McpCallResult:
        """Calls a tool; every failure is a result (bounded by ``CALL_TIMEOUT_S``)."""
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return McpCallResult.protocol_error(
                -32602, "Invalid params: the arguments are not a JSON object."
            )
        with trio.move_on_after(CALL_TIMEOUT_S):
            try:
                return await self._client.call_tool(tool, name, parsed)
            except Exception as e:  # a failing client fails this call only
                return McpCallResult.protocol_error(
                    -32603, f"The engine's MCP client failed: {type(e).__name__}: {e}"
                )
        return McpCallResult.http_error(
            TIMED_OUT, f"The MCP server did not answer within {CALL_TIMEOUT_S:g} seconds."
        )

    async def _list(self, server: _Server, param: str) -> None:
        label = server.tool.server_label
        reason = None
        try:
            try:
                with trio.fail_after(LIST_TIMEOUT_S):
                    listed = await self._client.list_tools(server.tool)
            except McpListError as e:
                reason = str(e)
            except trio.TooSlowError:
                reason = f"The MCP server did not answer within {LIST_TIMEOUT_S:g} seconds."
            except Exception as e:  # a failing client fails this listing only
                reason = f"The engine's MCP client failed: {type(e).__name__}: {e}"
            else:
                server.tools = [t for t in listed if is_allowed(server.tool, t)]
                server.ok = True
            done_event = McpListToolsCompleted if server.ok else McpListToolsFailed
            await self._outbox.emit(
                done_event(event_id=self._outbox.new_id("event"), item_id=server.item_id)
            )
            item = RealtimeMcpListTools(id=server.item_id, server_label=label, tools=server.tools)
            stored = self._conversation.get(server.item_id)
            if stored is not None:
                await self._conversation.finish(stored, item)
            else:  # deleted meanwhile: the listing is still announced done
                await self._outbox.emit(
                    ConversationItemDone(
                        event_id=self._outbox.new_id("event"), item=item, previous_item_id=None
                    )
                )
            if reason is not None:
                # mcp_list_tools.failed carries only the item id; this says why.
                await self._outbox.error(
                    RequestError(
                        f"Error retrieving tool list from MCP server: '{label}'. {reason}",
                        code="mcp_list_tools_failed",
                        param=param,
                    )
                )
        finally:
            server.listed.set()
