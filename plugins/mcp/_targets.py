"""How a server is reached: a child process, streamable HTTP, legacy SSE, or an object.

Each target describes itself for messages and opens its transport: an async
context manager yielding the SDK's stream pair (stdio through our own
:class:`~plugins.mcp._stdio.StdioProcess`, which keeps the exit status and
stderr; HTTP and SSE through the SDK's clients on an ``httpx`` client that
carries the headers and, when configured, OAuth).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias

import attrs
import httpx2
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.mcpserver import MCPServer

from ._auth import McpOAuth

CONNECT_TIMEOUT_S: Final = 30.0
"""The SDK's bound on connecting and on sending one HTTP request."""
HELD_STREAM_TIMEOUT_S: Final = 300.0
"""The SDK's bound on a quiet held stream (a long call's SSE response)."""


@attrs.frozen(kw_only=True)
class StdioTarget:
    """A server run as a child process, over stdin and stdout."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None

    def describe(self) -> str:
        return "stdio: " + " ".join((self.command, *self.args))


@attrs.frozen(kw_only=True)
class HttpTarget:
    """A server behind a streamable-HTTP endpoint."""

    url: str
    headers: Mapping[str, str] | None = None
    auth: McpOAuth | None = None

    def describe(self) -> str:
        return f"http: {self.url}" + (" (OAuth)" if self.auth is not None else "")


@attrs.frozen(kw_only=True)
class SseTarget:
    """A server behind the legacy HTTP+SSE transport (MCP 2024-11-05)."""

    url: str
    headers: Mapping[str, str] | None = None
    auth: McpOAuth | None = None

    def describe(self) -> str:
        return f"sse: {self.url}" + (" (OAuth)" if self.auth is not None else "")


@attrs.frozen(kw_only=True)
class InProcessTarget:
    """An ``mcp`` server object in this process, through the SDK's in-memory transport."""

    server: MCPServer | Server[Any]

    def describe(self) -> str:
        return f"in process: {self.server.name}"


Target: TypeAlias = StdioTarget | HttpTarget | SseTarget | InProcessTarget


@asynccontextmanager
async def http_streams(target: HttpTarget) -> AsyncIterator[Any]:
    """The streamable-HTTP transport: the SDK's client, with our headers and auth."""
    auth = target.auth.provider(target.url) if target.auth is not None else None
    async with (
        httpx2.AsyncClient(
            headers=dict(target.headers or {}),
            auth=auth,
            timeout=httpx2.Timeout(CONNECT_TIMEOUT_S, read=HELD_STREAM_TIMEOUT_S),
        ) as http,
        streamable_http_client(target.url, http_client=http) as streams,
    ):
        yield streams


@asynccontextmanager
async def sse_streams(target: SseTarget) -> AsyncIterator[Any]:
    """The legacy SSE transport: a held ``GET`` for the server's messages, ``POST`` for ours."""
    auth = target.auth.provider(target.url) if target.auth is not None else None
    async with sse_client(
        target.url,
        headers=dict(target.headers or {}),
        timeout=CONNECT_TIMEOUT_S,
        sse_read_timeout=HELD_STREAM_TIMEOUT_S,
        auth=auth,
    ) as streams:
        yield streams
