"""Tools that only run as MCP tasks (``execution.taskSupport: "required"``).

MCP 2025-11-25 lets a server run a ``tools/call`` as a *task*: asked with a
``task`` parameter, it answers at once with a task id, then the client polls
``tasks/get`` (each answer has the status and a message about it) and fetches
the outcome with ``tasks/result``, which holds until the task ends and
carries the server's questions meanwhile (status ``input_required``). Here:

* create, then poll at the server's suggested interval (bounded), each new
  status message a progress report (which restarts the call's timeout);
* on ``input_required`` or ``completed``, ``tasks/result`` for the outcome;
  ``failed`` and ``cancelled`` are tool errors with the server's message;
* when the caller is cancelled (a barge-in, a timeout, the session's end),
  ``tasks/cancel``, shielded and bounded, so the server stops the work.

The SDK keeps the task types but offers no call for creating one (its
``tools/call`` result type has no task arm), so creation goes through the
session's dispatcher directly: the one private attribute this package reads.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final, Protocol, TypeVar

import attrs
import mcp_types
import trio
from mcp import Client

from framework.tools import ToolCall

from ._errors import McpToolError

_log = logging.getLogger("cantata.mcp")

TASK_TTL_MS: Final = 600_000
"""How long the server is asked to keep a task after creating it."""
POLL_MIN_S: Final = 0.1
POLL_MAX_S: Final = 5.0
"""Bounds on the poll interval, whatever the server suggests."""
CANCEL_TIMEOUT_S: Final = 2.0
"""Time ``tasks/cancel`` may take when a call is abandoned."""
_TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
_T = TypeVar("_T")


class TaskHost(Protocol):
    """Where a task's requests go: a session's connection, or one short-lived client."""

    @property
    def name(self) -> str: ...

    @property
    def client(self) -> Client | None:
        """The client now, for ``tasks/cancel`` (no restart just to cancel)."""
        ...

    async def request(self, send: Callable[[Client], Awaitable[_T]]) -> _T: ...

    def track_task(self, task_id: str, call: ToolCall | None) -> None:
        """Ties the task to its call, so the server's questions about it find the call."""

    def untrack_task(self, task_id: str) -> None: ...


@attrs.frozen
class OneClient:
    """A :class:`TaskHost` over one client that is open for the whole call."""

    name: str
    client: Client

    async def request(self, send: Callable[[Client], Awaitable[_T]]) -> _T:
        return await send(self.client)

    def track_task(self, task_id: str, call: ToolCall | None) -> None:
        pass

    def untrack_task(self, task_id: str) -> None:
        pass


def task_only(tool: mcp_types.Tool) -> bool:
    """Whether the tool runs only as a task (``execution.taskSupport: "required"``)."""
    return tool.execution is not None and tool.execution.task_support == "required"


def supports_tasks(client: Client) -> bool:
    """Whether the server runs ``tools/call`` as tasks (its ``tasks.requests.tools.call``)."""
    tasks = client.server_capabilities.tasks
    requests = tasks.requests if tasks is not None else None
    return requests is not None and requests.tools is not None and requests.tools.call is not None


async def call_as_task(
    connection: TaskHost,
    tool: str,
    arguments: dict[str, Any],
    call: ToolCall | None,
    *,
    on_status: Callable[[mcp_types.Task], None],
) -> mcp_types.CallToolResult:
    """Runs ``tool`` as a task: create, poll, result; cancels it if abandoned.

    Raises:
        McpServerError: The server is down, or went down meanwhile.
        McpToolError: The server refused the call, or the task failed or was cancelled.
    """

    async def create(client: Client) -> mcp_types.Task:
        params = {"name": tool, "arguments": arguments, "task": {"ttl": TASK_TTL_MS}}
        dispatcher = client.session._dispatcher  # see the module docstring
        raw = await dispatcher.send_raw_request("tools/call", params, {})
        return mcp_types.CreateTaskResult.model_validate(raw, by_name=False).task

    task = await connection.request(create)
    connection.track_task(task.task_id, call)
    try:
        on_status(task)
        while task.status not in _TERMINAL and task.status != "input_required":
            await trio.sleep(_interval(task))
            task = await connection.request(partial(_get, task_id=task.task_id))
            on_status(task)
        if task.status in ("failed", "cancelled"):
            said = f": {task.status_message}" if task.status_message else ""
            raise McpToolError(f"the task {task.status}{said}")
        return await connection.request(partial(_result, task_id=task.task_id))
    except BaseException:
        if task.status not in _TERMINAL:
            with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_TIMEOUT_S):
                await _cancel(connection, task.task_id)
        raise
    finally:
        connection.untrack_task(task.task_id)


def _interval(task: mcp_types.Task) -> float:
    suggested = task.poll_interval / 1000 if task.poll_interval is not None else 1.0
    return min(max(suggested, POLL_MIN_S), POLL_MAX_S)


async def _get(client: Client, task_id: str) -> mcp_types.Task:
    request = mcp_types.GetTaskRequest(params=mcp_types.GetTaskRequestParams(task_id=task_id))
    return await client.session.send_request(request, mcp_types.GetTaskResult)


async def _result(client: Client, task_id: str) -> mcp_types.CallToolResult:
    request = mcp_types.GetTaskPayloadRequest(
        params=mcp_types.GetTaskPayloadRequestParams(task_id=task_id)
    )
    # The payload is the original request's result: a CallToolResult.
    return await client.session.send_request(request, mcp_types.CallToolResult)


async def _cancel(connection: TaskHost, task_id: str) -> None:
    client = connection.client
    if client is None:
        return
    request = mcp_types.CancelTaskRequest(params=mcp_types.CancelTaskRequestParams(task_id=task_id))
    try:
        await client.session.send_request(request, mcp_types.CancelTaskResult)
    except Exception as e:  # the task may have ended meanwhile
        _log.debug("MCP server %r: cancelling task %s: %r", connection.name, task_id, e)
