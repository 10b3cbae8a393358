"""One session's connection to one MCP server: its owner task, calls and restarts.

The SDK's ``Client`` must be entered and left by one task that outlives
every call, so each connection attempt (a *link*) has an owner task that
holds the client open until told to stop. The owner is a trio system task:
a plugin's ``open()`` must not hold a nursery across its ``yield`` (the
session leaves plugins from inside cancel scopes of its own), and a system
task keeps the link's failures out of the session's tasks. So the owner
never raises: every failure is recorded on its link as text the model can
read.

In the owner's nursery: the refresher (re-lists tools when the server says
they changed), the listener (holds a ``subscriptions/listen`` stream open on
2026-era connections; older ones send ``notifications/tools/list_changed``
to the message handler) and, for stdio, the watcher (a process that exits
breaks the link at once, even between calls).

Calls run in the caller's task, on the client the owner holds. A call that
finds the link broken starts a new one (a restart, at most ``max_restarts``
times), or reports why it cannot. Every wait is bounded: connecting by
``connect_timeout``, closing by :data:`CLOSE_TIMEOUT_S` and then a hard
cancel.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
import attrs
import httpx2
import mcp_types
import trio
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from framework.errors import CantataError, leaves

from ._stdio import StdioProcess

_log = logging.getLogger("cantata.mcp")

CLOSE_TIMEOUT_S: Final = 3.5
"""Time for a link to close gracefully before its owner is cancelled; with the hard
cancel's second below it stays inside the session's plugin teardown bound (5 s)."""
HARD_CLOSE_TIMEOUT_S: Final = 1.0
"""Time for a cancelled owner to finish."""
EXIT_REPORT_S: Final = 1.0
"""Time a failed call waits for a dying server's exit status, to name the cause."""
_MAX_PAGES: Final = 100
"""Pages of ``tools/list`` read at most: a server that paginates forever cannot hang us."""
_CLIENT_INFO: Final = mcp_types.Implementation(name="cantata", version="0.1.0")


class McpServerError(CantataError):
    """An MCP server could not be started or reached, or it crashed.

    As a tool's failure, its text is what the model hears, so it names the
    cause: an exit code or signal, the server's last stderr lines, a timeout.
    """


class McpToolError(CantataError):
    """The server ran the call and reported an error; the text is the server's."""


# --- how to reach a server --------------------------------------------------------------


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

    def describe(self) -> str:
        return f"http: {self.url}"


@attrs.frozen(kw_only=True)
class InProcessTarget:
    """An ``mcp`` server object in this process, through the SDK's in-memory transport."""

    server: MCPServer | Server[Any]

    def describe(self) -> str:
        return f"in process: {self.server.name}"


Target = StdioTarget | HttpTarget | InProcessTarget


@asynccontextmanager
async def _http_streams(target: HttpTarget) -> AsyncIterator[Any]:
    # The SDK's defaults (30 s to connect or write, 300 s to read a held stream), plus headers.
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=dict(target.headers or {}), timeout=timeout) as http,
        streamable_http_client(target.url, http_client=http) as streams,
    ):
        yield streams


# --- one connection attempt -------------------------------------------------------------


@attrs.define(eq=False)
class _Link:
    """One connection attempt, from its owner task's start to its end."""

    process: StdioProcess | None
    client: Client = attrs.field(init=False)
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    ready: trio.Event = attrs.Factory(trio.Event)
    """Connected, or failed to."""
    done: trio.Event = attrs.Factory(trio.Event)
    """The owner task has ended and the transport is closed."""
    stop: trio.Event = attrs.Factory(trio.Event)
    dirty: trio.Event = attrs.Factory(trio.Event)
    """The server said its tool list changed."""
    tools: list[mcp_types.Tool] | None = None
    failure: str | None = None
    """Why the link is unusable, as a phrase: "exited with code 3"."""

    @property
    def usable(self) -> bool:
        return self.tools is not None and self.failure is None and not self.stop.is_set()

    async def on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self.dirty.set()
        elif isinstance(message, Exception):
            _log.debug("MCP transport reported %r", message)


class McpConnection:
    """A session's connection to one server (see the module docstring).

    Args:
        target: How to reach the server.
        name: The server's name, in every message.
        connect_timeout: Seconds to start, connect and list tools.
        max_restarts: Restarts allowed after the first connection.
        on_tools: Called with the server's tools after every listing but the
            first (which :meth:`connect` returns).
    """

    def __init__(
        self,
        target: Target,
        *,
        name: str,
        connect_timeout: float,
        max_restarts: int,
        on_tools: Callable[[list[mcp_types.Tool]], None],
    ) -> None:
        self.target = target
        self.name = name
        self.connect_timeout = connect_timeout
        self.max_restarts = max_restarts
        self.restarts = 0
        # A process is restarted; a URL or an object is only reconnected to.
        self._restarted = "restarted" if isinstance(target, StdioTarget) else "reconnected"
        self._on_tools = on_tools
        self._link: _Link | None = None
        self._lock = trio.Lock()
        self._closed = False

    # --- lifetime ---------------------------------------------------------------------

    async def connect(self) -> list[mcp_types.Tool]:
        """Starts the server (or connects to it) and lists its tools.

        Raises:
            McpServerError: It could not, within ``connect_timeout``; the
                message says why.
        """
        self._link = await self._start()
        assert self._link.tools is not None
        return self._link.tools

    async def aclose(self) -> None:
        """Closes the connection: bounded, and safe to call when cancelled."""
        self._closed = True
        if self._link is not None:
            await _retire(self._link)

    # --- calls ------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        """Calls a tool, restarting a broken server first.

        Raises:
            McpServerError: The server is down, or went down during the call.
            McpToolError: The server refused the call (an MCP protocol error).
        """
        link = await self._usable_link()
        try:
            return await link.client.call_tool(tool, arguments)
        except Exception as error:
            if link.usable and not _is_disconnect(error):
                raise McpToolError(_describe_error(error)) from error
            how = (
                await _exit_of(link)
                or link.failure
                or f"lost its connection ({_describe_error(error)})"
            )
            link.failure = link.failure or how
            link.stop.set()
            raise McpServerError(
                f"{_explain(self.name, link, how)} during the call. {self._next()}"
            ) from None

    async def _usable_link(self) -> _Link:
        link = self._link
        if link is not None and link.usable:
            return link
        async with self._lock:
            link = self._link
            if link is not None and link.usable:
                return link
            if self._closed:
                raise McpServerError(f"the MCP server {self.name!r} was closed")
            why = (link.failure if link is not None else None) or "it is not connected"
            if self.restarts >= self.max_restarts:
                limit = (
                    f"after {self.restarts} time(s)" if self.max_restarts else "(restarts are off)"
                )
                raise McpServerError(
                    f"the MCP server {self.name!r} is down ({why}) and is not {self._restarted} "
                    f"again {limit}"
                )
            if link is not None:
                await _retire(link)
            self.restarts += 1
            _log.info("the MCP server %r is down (%s): %s", self.name, why, self._restarted)
            try:
                self._link = await self._start()
            except McpServerError as e:
                raise McpServerError(f"{e}; it had gone down ({why})") from None
            assert self._link.tools is not None
            self._on_tools(self._link.tools)
            return self._link

    def _next(self) -> str:
        if self.restarts < self.max_restarts:
            return f"It will be {self._restarted} on the next call"
        return f"It will not be {self._restarted} again"

    # --- the owner task ---------------------------------------------------------------

    async def _start(self) -> _Link:
        """A new link, connected and listed.

        Raises:
            McpServerError: Why it did not connect.
        """
        target = self.target
        process: StdioProcess | None = None
        server: Any
        if isinstance(target, StdioTarget):
            process = StdioProcess(target.command, target.args, env=target.env, cwd=target.cwd)
            server = process.streams()
        elif isinstance(target, HttpTarget):
            server = _http_streams(target)
        else:
            server = target.server
        link = _Link(process)
        link.client = Client(
            server, message_handler=link.on_message, cache=None, client_info=_CLIENT_INFO
        )
        trio.lowlevel.spawn_system_task(
            self._own, link, name=f"mcp server {self.name}", context=contextvars.copy_context()
        )
        try:
            # The owner enforces connect_timeout; this is only a backstop.
            with trio.move_on_after(self.connect_timeout + 1.0):
                await link.ready.wait()
        finally:
            if not link.usable:
                await _retire(link, hard=True)
        if not link.usable:
            why = link.failure or f"no answer within {self.connect_timeout:g} s"
            failed = "did not start" if link.process is not None else "could not be reached"
            raise McpServerError(f"{_explain(self.name, link, failed)}: {why}")
        return link

    async def _own(self, link: _Link) -> None:
        """Holds the link's client open until it stops; never raises but Cancelled."""
        try:
            with link.scope:
                link.scope.deadline = trio.current_time() + self.connect_timeout
                async with link.client as client, trio.open_nursery() as nursery:
                    # Subscribed before listing, so no change falls in between.
                    await nursery.start(_listen, link)
                    link.tools = await _list_tools(client)
                    link.scope.deadline = math.inf
                    link.ready.set()
                    nursery.start_soon(self._refresh, link)
                    if link.process is not None:
                        nursery.start_soon(self._watch, link, link.process)
                    await link.stop.wait()
                    nursery.cancel_scope.cancel()
            if link.scope.cancelled_caught and link.tools is None:
                link.failure = link.failure or f"no answer within {self.connect_timeout:g} s"
        except BaseException as error:
            cause = _first_failure(error)
            if cause is None:
                raise  # cancelled from outside: the run is ending
            if link.failure is None:
                link.failure = await _exit_of(link) or _describe_error(cause)
            _log.debug("MCP server %r link ended: %r", self.name, error)
        finally:
            if link.failure is None and not link.stop.is_set():
                link.failure = "closed its connection"
            link.ready.set()
            link.done.set()

    async def _watch(self, link: _Link, process: StdioProcess) -> None:
        await process.exited.wait()
        if not link.stop.is_set():
            link.failure = link.failure or process.describe_exit()
            _log.warning("%s", _explain(self.name, link, process.describe_exit()))
            link.stop.set()

    async def _refresh(self, link: _Link) -> None:
        while True:
            await link.dirty.wait()
            link.dirty = trio.Event()
            try:
                with trio.fail_after(self.connect_timeout):
                    tools = await _list_tools(link.client)
            except Exception as e:  # trio.TooSlowError included
                _log.warning("MCP server %r: re-listing tools failed: %r", self.name, e)
                continue
            link.tools = tools
            self._on_tools(tools)


async def _listen(link: _Link, *, task_status: trio.TaskStatus[None]) -> None:
    """Holds a 2026-era ``subscriptions/listen`` stream for tool-list changes.

    Started once the server acknowledged it (or at once where there is none:
    older servers notify on the session itself, see :meth:`_Link.on_message`).
    """
    client = link.client
    capability = client.server_capabilities.tools
    if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not (
        capability is not None and capability.list_changed
    ):
        task_status.started()
        return
    started = False
    try:
        async with client.listen(tools_list_changed=True) as subscription:
            task_status.started()
            started = True
            async for _ in subscription:
                link.dirty.set()
    except Exception as e:
        _log.debug("tools/list_changed subscription ended: %r", e)
    if not started:
        task_status.started()


async def _exit_of(link: _Link) -> str | None:
    """How a link's process ended ("exited with code 3"); waits briefly for a dying one."""
    if link.process is None:
        return None
    with trio.move_on_after(EXIT_REPORT_S):
        await link.process.exited.wait()
    return link.process.describe_exit() if link.process.exited.is_set() else None


def _explain(name: str, link: _Link, what: str) -> str:
    """``the MCP server 'x' <what>``, with the server's last stderr lines when there are any."""
    tail = link.process.stderr_tail() if link.process is not None else ""
    said = f" (its stderr ended with: {tail})" if tail else ""
    return f"the MCP server {name!r} {what}{said}"


async def _retire(link: _Link, *, hard: bool = False) -> None:
    """Stops a link and waits, bounded and shielded, for its owner to end."""
    link.stop.set()
    if hard:
        link.scope.cancel()
    with trio.CancelScope(shield=True):
        with trio.move_on_after(CLOSE_TIMEOUT_S):
            await link.done.wait()
        if not link.done.is_set():
            link.scope.cancel()
            with trio.move_on_after(HARD_CLOSE_TIMEOUT_S):
                await link.done.wait()


async def _list_tools(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


# --- errors -----------------------------------------------------------------------------


def _first_failure(error: BaseException) -> BaseException | None:
    """The first leaf of a (nested) group that is not a cancellation."""
    return next((e for e in leaves(error) if not isinstance(e, trio.Cancelled)), None)


def _is_disconnect(error: BaseException) -> bool:
    """Whether a call failed because the connection did, not the tool."""
    return any(
        (isinstance(e, MCPError) and e.code == mcp_types.CONNECTION_CLOSED)
        or isinstance(
            e,
            anyio.ClosedResourceError
            | anyio.BrokenResourceError
            | anyio.EndOfStream
            | trio.ClosedResourceError
            | trio.BrokenResourceError
            | OSError
            | httpx2.TransportError,
        )
        for e in leaves(error)
    )


def _describe_error(error: BaseException) -> str:
    leaf = _first_failure(error) or error
    if isinstance(leaf, MCPError):
        return leaf.error.message
    text = str(leaf)
    return f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__
