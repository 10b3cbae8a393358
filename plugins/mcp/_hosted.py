"""The local engine's hosted-MCP client: ``type: "mcp"`` tools over streamable HTTP.

The engine owns the flows, the approval policy and the events
(``framework.engine``); this module only talks MCP. Each
listing and each call is one short connection in the caller's task (connect,
one request, close), so nothing outlives it and cancelling the response
cancels its call. A tool the server runs only as a task (MCP 2025-11-25) is
called as one and polled to its end (:mod:`._tasks`), on the same connection.
Every wait is bounded: the HTTP client's timeouts, the SDK's read timeout,
and a deadline around the whole connection, teardown included.

pydantic types stop here: tools become :class:`McpListedTool`, results
:class:`McpCallResult`. Failures map as the hosted API reports them: a
JSON-RPC error is a ``protocol_error``, an ``isError`` result a
``tool_execution_error``, an HTTP status of 400 or more (that is not a JSON-RPC
error) or a server that cannot be reached an ``http_error``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx2
import mcp_types
import trio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from framework.engine import TIMED_OUT, UNREACHABLE, McpCallResult, McpListError
from framework.errors import leaves
from framework.protocol import (
    UNSET,
    McpCallError,
    McpListedTool,
    McpTool,
    RealtimeMcphttpError,
    RealtimeMcpProtocolError,
)

from ._connection import list_all
from ._errors import McpToolError
from ._results import convert_result
from ._targets import HttpWatch
from ._tasks import OneClient, call_as_task, task_only

REMEMBERED_SERVERS: Final = 256
"""Servers whose task-only tools are remembered between their listing and their calls."""
_CLIENT_INFO: Final = mcp_types.Implementation(name="cantata-engine", version="0.1.0")


class StreamableHttpMcpClient:
    """Lists and calls the tools of remote MCP servers for the local engine.

    Args:
        connect_timeout_s: bound on connecting and on sending a request.
        list_timeout_s: bound on one listing, connection included.
        call_timeout_s: bound on one call, connection included.
    """

    def __init__(
        self,
        *,
        connect_timeout_s: float = 10.0,
        list_timeout_s: float = 30.0,
        call_timeout_s: float = 60.0,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.list_timeout_s = list_timeout_s
        self.call_timeout_s = call_timeout_s
        # The tools each server runs only as tasks, from its last listing (the
        # engine lists a server before it calls it).
        self._task_only: OrderedDict[str, frozenset[str]] = OrderedDict()

    async def list_tools(self, server: McpTool) -> Sequence[McpListedTool]:
        """Every tool of the server, with MCP's annotations as plain data.

        Raises:
            McpListError: the server could not be listed; the text says why.
        """
        url = _url(server)
        watch = HttpWatch()
        try:
            with trio.fail_after(self.list_timeout_s):
                async with self._connect(url, server, watch, self.list_timeout_s) as client:
                    watch.status = None  # a refused version probe is not the listing's
                    tools: list[mcp_types.Tool] = await list_all(client, "tools")
        except trio.TooSlowError:
            raise McpListError(
                f"The MCP server did not answer within {self.list_timeout_s:g} seconds."
            ) from None
        except Exception as e:
            raise McpListError(_reason(_failure(e, watch, url))) from None
        self._remember(url, frozenset(t.name for t in tools if task_only(t)))
        return [_listed(t) for t in tools]

    def _remember(self, url: str, names: frozenset[str]) -> None:
        self._task_only[url] = names
        self._task_only.move_to_end(url)
        while len(self._task_only) > REMEMBERED_SERVERS:
            self._task_only.popitem(last=False)

    async def call_tool(
        self, server: McpTool, name: str, arguments: Mapping[str, Any]
    ) -> McpCallResult:
        """Calls one tool; every failure is a result."""
        try:
            url = _url(server)
        except McpListError as e:
            return McpCallResult.http_error(UNREACHABLE, str(e))
        watch = HttpWatch()
        result: mcp_types.CallToolResult | None = None
        try:
            with trio.fail_after(self.call_timeout_s):
                async with self._connect(url, server, watch, self.call_timeout_s) as client:
                    watch.status = None
                    if name in self._task_only.get(url, ()):
                        result = await call_as_task(
                            OneClient(url, client), name, dict(arguments), None, on_status=_quiet
                        )
                    else:
                        result = await client.call_tool(name, dict(arguments))
        except trio.TooSlowError:
            if result is None:  # else only the teardown was slow
                return McpCallResult.http_error(
                    TIMED_OUT,
                    f"The MCP server did not answer within {self.call_timeout_s:g} seconds.",
                )
        except McpToolError as e:  # a task that failed or was cancelled
            return McpCallResult.tool_error(str(e))
        except Exception as e:
            return McpCallResult(error=_failure(e, watch, url))
        assert result is not None
        try:
            # Text only: an mcp_call item's output is a string.
            return McpCallResult(output=convert_result(result).text)
        except McpToolError as e:
            return McpCallResult.tool_error(str(e))

    @asynccontextmanager
    async def _connect(
        self, url: str, server: McpTool, watch: HttpWatch, read_timeout_s: float
    ) -> AsyncIterator[Client]:
        headers = dict(server.headers) if isinstance(server.headers, Mapping) else {}
        if isinstance(server.authorization, str) and not any(
            k.lower() == "authorization" for k in headers
        ):
            headers["Authorization"] = f"Bearer {server.authorization}"
        timeout = httpx2.Timeout(self.connect_timeout_s, read=read_timeout_s)
        http = httpx2.AsyncClient(
            headers=headers, timeout=timeout, event_hooks={"response": [watch.on_response]}
        )
        async with (
            http,
            Client(
                streamable_http_client(url, http_client=http),
                read_timeout_seconds=read_timeout_s,
                client_info=_CLIENT_INFO,
                cache=None,
            ) as client,
        ):
            yield client


def _quiet(task: mcp_types.Task) -> None:
    """A task's status, which a hosted call has nobody to tell."""


def _url(server: McpTool) -> str:
    if isinstance(server.server_url, str):
        return server.server_url
    what = (
        f"the service connector '{server.connector_id}'"
        if isinstance(server.connector_id, str)
        else f"the Secure MCP Tunnel '{server.tunnel_id}'"
    )
    raise McpListError(f"The local engine cannot reach {what}; give the tool a server_url.")


def _listed(tool: mcp_types.Tool) -> McpListedTool:
    annotations = (
        tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
        if tool.annotations is not None
        else UNSET
    )
    return McpListedTool(
        name=tool.name,
        input_schema=tool.input_schema,
        description=tool.description if tool.description is not None else UNSET,
        annotations=annotations,
    )


def _failure(error: Exception, watch: HttpWatch, url: str) -> McpCallError:
    """The hosted API's error for what the SDK raised (often nested in groups)."""
    if watch.status is not None:
        return RealtimeMcphttpError(
            code=watch.status, message=f"Http status code: {watch.status} ({watch.reason})."
        )
    found = [e for e in leaves(error) if not isinstance(e, trio.Cancelled)] or [error]
    for leaf in found:
        if isinstance(leaf, httpx2.TimeoutException):
            return RealtimeMcphttpError(
                code=TIMED_OUT, message=f"The MCP server at {url} timed out: {leaf}."
            )
        if isinstance(leaf, (httpx2.HTTPError, OSError)) or (
            isinstance(leaf, MCPError) and leaf.code == mcp_types.CONNECTION_CLOSED
        ):
            return RealtimeMcphttpError(
                code=UNREACHABLE, message=f"Could not reach the MCP server at {url}: {leaf}."
            )
    for leaf in found:
        if isinstance(leaf, MCPError):
            return RealtimeMcpProtocolError(code=leaf.code, message=leaf.message)
    leaf = found[0]
    return RealtimeMcpProtocolError(
        code=mcp_types.INTERNAL_ERROR, message=f"{type(leaf).__name__}: {leaf}"
    )


def _reason(error: McpCallError) -> str:
    if isinstance(error, RealtimeMcpProtocolError):
        return f"The MCP server answered with error {error.code}: {error.message}"
    return error.message
