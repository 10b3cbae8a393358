"""How a server is reached: a child process, streamable HTTP, legacy SSE, or an object.

Each target describes itself for messages; the transports are async context
managers yielding the SDK's stream pair: stdio through our own
:class:`~plugins.mcp._stdio.StdioProcess`, which keeps the exit status and
stderr; HTTP and SSE through the SDK's clients on an ``httpx`` client that
carries the headers, OAuth when configured, and an :class:`HttpWatch` that
keeps the HTTP status an SDK error would hide.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
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
    """A server behind an HTTP endpoint: streamable HTTP, or the legacy HTTP+SSE
    transport of MCP 2024-11-05 (``sse``)."""

    url: str
    headers: Mapping[str, str] | None = None
    auth: McpOAuth | None = None
    sse: bool = False

    def describe(self) -> str:
        kind = "sse" if self.sse else "http"
        return f"{kind}: {self.url}" + (" (OAuth)" if self.auth is not None else "")

    @asynccontextmanager
    async def streams(self, watch: HttpWatch) -> AsyncIterator[Any]:
        """The transport: the SDK's client, with our headers, auth and ``watch``."""
        if self.sse:
            # A held GET for the server's messages, a POST for each of ours.
            def factory(
                headers: dict[str, str] | None = None,
                timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None,
            ) -> httpx2.AsyncClient:
                return _client(self, watch, headers)

            async with sse_client(self.url, httpx_client_factory=factory) as streams:
                yield streams
            return
        async with (
            _client(self, watch) as http,
            streamable_http_client(self.url, http_client=http) as streams,
        ):
            yield streams


@attrs.frozen(kw_only=True)
class InProcessTarget:
    """An ``mcp`` server object in this process, through the SDK's in-memory transport."""

    server: MCPServer | Server[Any]

    def describe(self) -> str:
        return f"in process: {self.server.name}"


Target: TypeAlias = StdioTarget | HttpTarget | InProcessTarget


@attrs.define
class HttpWatch:
    """Notes the HTTP failure behind an SDK error, which keeps only a JSON-RPC stand-in.

    Attributes:
        status: The first error status a response had (400 or more), if any.
        reason: Its reason phrase.
    """

    status: int | None = None
    reason: str = ""

    async def on_response(self, response: httpx2.Response) -> None:
        """An ``httpx`` response hook."""
        if response.status_code < 400 or self.status is not None:
            return
        # A JSON-RPC error may come with a 4xx status; it is the server's
        # answer, not an HTTP failure, and the SDK reports it as such.
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                body = json.loads(await response.aread())
            except (ValueError, httpx2.HTTPError):
                body = None
            if isinstance(body, dict) and "jsonrpc" in body and "error" in body:
                return
        status = response.status_code
        try:
            phrase = response.reason_phrase or HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        self.status, self.reason = status, phrase

    def describe(self, target: HttpTarget) -> str | None:
        """The failure as a phrase ("answered HTTP 401 (Unauthorized)"), with what to do."""
        if self.status is None:
            return None
        said = f"answered HTTP {self.status}" + (f" ({self.reason})" if self.reason else "")
        if self.status == HTTPStatus.UNAUTHORIZED and target.auth is None:
            return f"{said}: it asks for a login; pass auth=McpOAuth(...)"
        return said


def _client(
    target: HttpTarget, watch: HttpWatch, headers: dict[str, str] | None = None
) -> httpx2.AsyncClient:
    """An ``httpx`` client with the SDK's timeouts, the target's headers and auth, and ``watch``."""
    return httpx2.AsyncClient(
        headers=headers if headers is not None else dict(target.headers or {}),
        auth=target.auth.provider(target.url) if target.auth is not None else None,
        timeout=httpx2.Timeout(CONNECT_TIMEOUT_S, read=HELD_STREAM_TIMEOUT_S),
        event_hooks={"response": [watch.on_response]},
    )
