"""One session's connection to one MCP server: its owner task, requests and restarts.

The SDK's ``Client`` must be entered and left by one task that outlives
every request, so each connection attempt (a *link*) has an owner task that
holds the client open until told to stop. The owner is a trio system task:
a plugin's ``open()`` must not hold a nursery across its ``yield`` (the
session leaves plugins from inside cancel scopes of its own), and a system
task keeps the link's failures out of the session's tasks. So the owner
never raises: every failure is recorded on its link as text the model can
read.

In the owner's nursery: the refresher (re-lists tools when the server says
they changed), the listener (holds a ``subscriptions/listen`` stream open on
2026-era connections; older ones notify the message handler) and, for stdio,
the watcher (a process that exits breaks the link at once, even between
calls).

What the server sends besides answers reaches :class:`Listener`: changed
lists, log messages (into Python logging under the server's name, see
:func:`server_logger`) and elicitation requests, which are tied to the call
they belong to (by the task they name, else the latest call in flight).

Requests run in the caller's task, on the client the owner holds. A request
that finds the link broken starts a new one (a restart, at most
``max_restarts`` times), or reports why it cannot. Every wait is bounded:
connecting by ``connect_timeout``, closing by :data:`CLOSE_TIMEOUT_S` and
then a hard cancel.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, Protocol, TypeVar

import attrs
import mcp_types
import trio
from mcp import Client
from mcp.client.session import ClientRequestContext, ElicitationFnT, IncomingMessage
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from framework.tools import ToolCall

from ._errors import McpServerError, McpToolError, describe_error, first_failure, is_disconnect
from ._stdio import StdioProcess
from ._targets import HttpTarget, HttpWatch, StdioTarget, Target

_log = logging.getLogger("cantata.mcp")

CLOSE_TIMEOUT_S: Final = 3.5
"""Time for a link to close gracefully before its owner is cancelled; with the hard
cancel's second below it stays inside the session's plugin teardown bound (5 s)."""
HARD_CLOSE_TIMEOUT_S: Final = 1.0
"""Time for a cancelled owner to finish."""
EXIT_REPORT_S: Final = 1.0
"""Time a failed call waits for a dying server's exit status, to name the cause."""
MAX_PAGES: Final = 100
"""Pages of a listing read at most: a server that paginates forever cannot hang us."""
_CLIENT_INFO: Final = mcp_types.Implementation(name="cantata", version="0.1.0")
_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}
"""MCP's syslog severities as Python logging levels."""
_RELATED_TASK: Final = "io.modelcontextprotocol/related-task"
"""The ``_meta`` key tying a server request to a task (MCP 2025-11-25, tasks)."""

ListKind = Literal["tools", "resources", "prompts"]
_T = TypeVar("_T")


def server_logger(name: str) -> logging.Logger:
    """The Python logger an MCP server's log messages go to: ``cantata.mcp.<name>``."""
    return logging.getLogger(f"cantata.mcp.{name}")


class Listener(Protocol):
    """What a connection tells its owner (the server's plugin, for one session)."""

    def tools_listed(self, tools: list[mcp_types.Tool]) -> None:
        """The server's tools, after every listing but the first."""

    def list_changed(self, kind: ListKind) -> None:
        """The server said one of its lists changed."""

    async def elicit(
        self, params: mcp_types.ElicitRequestParams, call: ToolCall | None
    ) -> mcp_types.ElicitResult:
        """Asks the user the server's question (``call``: the call it belongs to)."""
        ...


# --- one connection attempt -------------------------------------------------------------


@attrs.define(eq=False)
class _Link:
    """One connection attempt, from its owner task's start to its end."""

    process: StdioProcess | None
    http: HttpWatch | None = None
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


class McpConnection:
    """A session's connection to one server (see the module docstring).

    Args:
        target: How to reach the server.
        name: The server's name, in every message and in its logger's name.
        connect_timeout: Seconds to start, connect and list tools.
        max_restarts: Restarts allowed after the first connection.
        listener: Told of changed lists and asked the server's questions.
        elicitation: Whether to tell the server the session can be asked
            questions (the elicitation capability); only when something answers.
        log_level: The least severe server log message asked for and logged.
    """

    def __init__(
        self,
        target: Target,
        *,
        name: str,
        connect_timeout: float,
        max_restarts: int,
        listener: Listener,
        elicitation: bool = False,
        log_level: mcp_types.LoggingLevel = "info",
    ) -> None:
        self.target = target
        self.name = name
        self.connect_timeout = connect_timeout
        self.max_restarts = max_restarts
        self.restarts = 0
        self.log = server_logger(name)
        self._log_level = log_level
        # A process is restarted; a URL or an object is only reconnected to.
        self._restarted = "restarted" if isinstance(target, StdioTarget) else "reconnected"
        self._listener = listener
        self._elicitation = elicitation
        self._link: _Link | None = None
        self._lock = trio.Lock()
        self._closed = False
        self.in_flight: list[ToolCall] = []
        """Calls in flight, oldest first: the server's questions belong to one of them."""
        self._task_calls: dict[str, ToolCall] = {}

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

    @property
    def client(self) -> Client | None:
        """The SDK client of the current link, if it is usable."""
        link = self._link
        return link.client if link is not None and link.usable else None

    # --- requests ---------------------------------------------------------------------

    async def request(self, send: Callable[[Client], Awaitable[_T]]) -> _T:
        """Runs ``send`` on a usable link, restarting a broken server first.

        Raises:
            McpServerError: The server is down, or went down during the request.
            McpToolError: The server refused the request (an MCP protocol error).
        """
        link = await self._usable_link()
        try:
            return await send(link.client)
        except McpToolError:
            raise
        except Exception as error:
            if link.usable and not is_disconnect(error):
                raise McpToolError(describe_error(error)) from error
            how = (
                await _exit_of(link)
                or link.failure
                or f"lost its connection ({describe_error(error)})"
            )
            link.failure = link.failure or how
            link.stop.set()
            raise McpServerError(
                f"{_explain(self.name, link, how)} during the call. {self._next()}"
            ) from None

    def track(self, call: ToolCall | None) -> _Tracked:
        """Marks a call in flight for the block, so the server's questions find it."""
        return _Tracked(self, call)

    def track_task(self, task_id: str, call: ToolCall | None) -> None:
        """Ties a task the server created to the call that created it (until it ends)."""
        if call is not None:
            self._task_calls[task_id] = call

    def untrack_task(self, task_id: str) -> None:
        self._task_calls.pop(task_id, None)

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
            self._listener.tools_listed(self._link.tools)
            return self._link

    def _next(self) -> str:
        if self.restarts < self.max_restarts:
            return f"It will be {self._restarted} on the next call"
        return f"It will not be {self._restarted} again"

    # --- what the server sends --------------------------------------------------------

    async def _on_message(self, link: _Link, message: IncomingMessage) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            link.dirty.set()
        elif isinstance(message, mcp_types.ResourceListChangedNotification):
            self._listener.list_changed("resources")
        elif isinstance(message, mcp_types.PromptListChangedNotification):
            self._listener.list_changed("prompts")
        elif isinstance(message, mcp_types.ElicitCompleteNotification):
            self.log.info("the user finished the URL elicitation %s", message.params.elicitation_id)
        elif isinstance(message, Exception):
            _log.debug("MCP server %r: the transport reported %r", self.name, message)

    async def _on_log(self, params: mcp_types.LoggingMessageNotificationParams) -> None:
        level = _LEVELS.get(params.level, logging.INFO)
        if level < _LEVELS[self._log_level]:
            return
        where = f"[{params.logger}] " if params.logger else ""
        data = params.data if isinstance(params.data, str) else repr(params.data)
        self.log.log(level, "%s%s", where, data)

    async def _on_elicit(
        self, context: ClientRequestContext, params: mcp_types.ElicitRequestParams
    ) -> mcp_types.ElicitResult | mcp_types.ErrorData:
        related = (context.meta or {}).get(_RELATED_TASK)
        task_id = related.get("taskId") if isinstance(related, dict) else None
        call = self._task_calls.get(task_id) if isinstance(task_id, str) else None
        if call is None and self.in_flight:
            call = self.in_flight[-1]
        return await self._listener.elicit(params, call)

    # --- the owner task ---------------------------------------------------------------

    async def _start(self) -> _Link:
        """A new link, connected and listed.

        Raises:
            McpServerError: Why it did not connect.
        """
        target = self.target
        process: StdioProcess | None = None
        watch: HttpWatch | None = None
        server: Any
        if isinstance(target, StdioTarget):
            process = StdioProcess(target.command, target.args, env=target.env, cwd=target.cwd)
            server = process.streams()
        elif isinstance(target, HttpTarget):
            watch = HttpWatch()
            server = target.streams(watch)
        else:
            server = target.server
        link = _Link(process, watch)

        async def on_message(message: IncomingMessage) -> None:
            await self._on_message(link, message)

        # Declared only when something answers: without it, servers hide the
        # tools that need to ask (MCP 2025-11-25, client capabilities).
        elicit: ElicitationFnT | None = self._on_elicit if self._elicitation else None
        link.client = Client(
            server,
            message_handler=on_message,
            logging_callback=self._on_log,
            log_level=self._log_level,
            elicitation_callback=elicit,
            cache=None,
            client_info=_CLIENT_INFO,
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
                    await nursery.start(self._listen, link)
                    link.tools = await list_all(client, "tools")
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
            cause = first_failure(error)
            if cause is None:
                raise  # cancelled from outside: the run is ending
            if link.failure is None:
                link.failure = (
                    await _exit_of(link) or self._http_failure(link) or describe_error(cause)
                )
            _log.debug("MCP server %r link ended: %r", self.name, error)
        finally:
            if link.failure is None and not link.stop.is_set():
                link.failure = "closed its connection"
            link.ready.set()
            link.done.set()

    def _http_failure(self, link: _Link) -> str | None:
        target = self.target
        if link.http is None or not isinstance(target, HttpTarget):
            return None
        return link.http.describe(target)

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
                    tools = await list_all(link.client, "tools")
            except Exception as e:  # trio.TooSlowError included
                _log.warning("MCP server %r: re-listing tools failed: %r", self.name, e)
                continue
            link.tools = tools
            self._listener.tools_listed(tools)

    async def _listen(self, link: _Link, *, task_status: trio.TaskStatus[None]) -> None:
        """Holds a 2026-era ``subscriptions/listen`` stream for list changes.

        Started once the server acknowledged it (or at once where there is none:
        older servers notify on the session itself, see :meth:`_on_message`).
        """
        client = link.client
        capabilities = client.server_capabilities
        wanted = {
            "tools": capabilities.tools is not None and bool(capabilities.tools.list_changed),
            "resources": capabilities.resources is not None
            and bool(capabilities.resources.list_changed),
            "prompts": capabilities.prompts is not None and bool(capabilities.prompts.list_changed),
        }
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not any(wanted.values()):
            task_status.started()
            return
        started = False
        try:
            async with client.listen(
                tools_list_changed=wanted["tools"],
                resources_list_changed=wanted["resources"],
                prompts_list_changed=wanted["prompts"],
            ) as subscription:
                task_status.started()
                started = True
                async for event in subscription:
                    kind = _CHANGED.get(type(event))
                    if kind == "tools":
                        link.dirty.set()
                    elif kind is not None:
                        self._listener.list_changed(kind)
        except Exception as e:
            _log.debug("MCP server %r: the list_changed subscription ended: %r", self.name, e)
        if not started:
            task_status.started()


@attrs.frozen
class _Tracked:
    """A call in flight on a connection, for the length of a ``with`` block."""

    connection: McpConnection
    call: ToolCall | None

    def __enter__(self) -> None:
        if self.call is not None:
            self.connection.in_flight.append(self.call)

    def __exit__(self, *_: object) -> None:
        if self.call is not None:
            self.connection.in_flight.remove(self.call)


_CHANGED: Final[dict[type[ServerEvent], ListKind]] = {
    ToolsListChanged: "tools",
    ResourcesListChanged: "resources",
    PromptsListChanged: "prompts",
}


async def list_all(client: Client, kind: ListKind | Literal["resource_templates"]) -> list[Any]:
    """Every page of a listing (tools, resources, templates or prompts), at most
    :data:`MAX_PAGES`."""
    found: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await getattr(client, f"list_{kind}")(cursor=cursor)
        found.extend(getattr(page, kind))
        cursor = page.next_cursor
        if not cursor:
            break
    return found


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
