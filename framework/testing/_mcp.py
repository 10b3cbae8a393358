"""The installed hosted-MCP client, for engines started by the testing helpers.

The engine never looks up plugins itself: its MCP client is injected. The
helpers here inject the one the installed MCP plugin provides, found lazily,
so an engine whose sessions never meet a hosted MCP tool never pays for
loading the plugins and the MCP SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import trio

from framework.engine import HostedMcpClient, McpCallResult, NoMcpClient
from framework.protocol import McpListedTool, McpTool

MCP_CLIENT = "streamable-http"
"""The installed hosted-MCP client an engine started here uses (the MCP plugin's)."""


def installed_mcp_client(name: str = MCP_CLIENT) -> HostedMcpClient | None:
    """The hosted-MCP client ``mcp_client:NAME`` an installed plugin provides, if any.

    Blocking: it loads the installed plugins (and so the MCP SDK).
    """
    from framework.plugin import engine_part

    try:
        part = engine_part("mcp_client", name)
    except LookupError:
        return None
    client = part() if isinstance(part, type) else part
    return client if isinstance(client, HostedMcpClient) else None


class InstalledMcpClient:
    """The installed plugins' hosted-MCP client, looked up when first needed.

    The lookup runs in a thread, off the event loop. Without an installed
    client every listing fails, saying how to get one.
    """

    def __init__(self, name: str = MCP_CLIENT) -> None:
        self._name = name
        self._client: HostedMcpClient | None = None

    async def _found(self) -> HostedMcpClient:
        if self._client is None:
            found = await trio.to_thread.run_sync(installed_mcp_client, self._name)
            self._client = found or NoMcpClient()
        return self._client

    async def list_tools(self, server: McpTool) -> Sequence[McpListedTool]:
        return await (await self._found()).list_tools(server)

    async def call_tool(
        self, server: McpTool, name: str, arguments: Mapping[str, Any]
    ) -> McpCallResult:
        return await (await self._found()).call_tool(server, name, arguments)
