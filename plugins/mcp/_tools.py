"""One session's tools of one MCP server: built from its listing, and how they call it.

This is where the ``mcp`` SDK's types meet the session's: an MCP ``Tool``
becomes a :class:`~framework.tools.FunctionTool` (via
:meth:`~framework.tools.FunctionTool.from_schema`), its annotations a
:class:`McpToolAnnotations` and an approval default, a ``CallToolResult`` a
:class:`~framework.tools.ToolResult` (:mod:`._results`), and an elicitation
request a :class:`~framework.runtime.ElicitationRequest`.

:class:`ServerSession` is one session's state for one server: the tools,
rebuilt whenever the server's list changes, and the connection's listener
(changed lists, questions for the user). Every call asks for progress, which
reaches the application and restarts the call's timeout; a tool that only
runs as a task runs as one (:mod:`._tasks`); a URL the server needs the user
to open first (MCP error -32042) is asked about, then the call made again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import mcp_types
import pydantic
import trio
from mcp import Client
from mcp.shared.exceptions import MCPError

from framework.plugin import PluginContext
from framework.runtime import ElicitationRequest
from framework.tools import FunctionTool, ToolCall, ToolResult, current_call, fit_name

from ._client import McpClient
from ._connection import ListKind, McpConnection
from ._errors import McpServerError, McpToolError
from ._results import convert_result
from ._tasks import call_as_task, supports_tasks, task_only

if TYPE_CHECKING:
    from ._server import McpServer

_log = logging.getLogger("cantata.mcp")


@attrs.frozen(kw_only=True)
class McpToolAnnotations:
    """What a server says about a tool (MCP ``ToolAnnotations``); all are hints.

    ``None`` means the server did not say. The MCP defaults for an unsaid
    hint are: not read-only, destructive, not idempotent, open world.
    """

    title: str | None = None
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None

    @property
    def needs_approval(self) -> bool:
        """The annotation default: ask unless declared read-only or non-destructive."""
        return self.read_only is not True and self.destructive is not False


@attrs.define(eq=False)
class ServerSession:
    """One session's view of one server: its tools (rebuilt when they change) and questions."""

    server: McpServer
    context: PluginContext
    connection: McpConnection = attrs.field(init=False)
    client: McpClient = attrs.field(init=False)
    tools: tuple[FunctionTool, ...] = ()

    def current(self) -> tuple[FunctionTool, ...]:
        return self.tools

    # --- what the connection tells -------------------------------------------------------

    def tools_listed(self, tools: list[mcp_types.Tool]) -> None:
        self.update(tools)

    def list_changed(self, kind: ListKind) -> None:
        self.client.note_changed(kind)

    def update(self, listed: Sequence[mcp_types.Tool], *, notify: bool = True) -> None:
        before = [t.definition() for t in self.tools]
        self.tools = tuple(self._build(listed))
        if notify:
            self.client.note_changed("tools")
            if [t.definition() for t in self.tools] != before:
                self.context.changed()

    async def elicit(
        self, params: mcp_types.ElicitRequestParams, call: ToolCall | None
    ) -> mcp_types.ElicitResult:
        """Asks the user through the session; a decline when nothing answers or it does not fit."""
        ask = self.context.elicit
        if ask is None:
            return mcp_types.ElicitResult(action="decline")
        call_id = call.call_id if call is not None else None
        if isinstance(params, mcp_types.ElicitRequestURLParams):
            request = ElicitationRequest(
                source=self.server.name,
                message=params.message,
                mode="url",
                url=params.url,
                call_id=call_id,
            )
        else:
            schema = dict(params.requested_schema)
            request = ElicitationRequest(
                source=self.server.name, message=params.message, schema=schema, call_id=call_id
            )
        answer = await ask(request)
        content = dict(answer.content) if answer.action == "accept" and answer.content else None
        try:
            return mcp_types.ElicitResult.model_validate(
                {"action": answer.action, "content": content}
            )
        except pydantic.ValidationError as e:
            _log.warning(
                "MCP server %r: the answer to %r does not fit (%s); declined",
                self.server.name,
                params.message,
                e.errors()[0]["msg"],
            )
            return mcp_types.ElicitResult(action="decline")

    async def instructions(self) -> str:
        """The instructions this server adds: its own, then the prompts named."""
        parts: list[str] = []
        if self.server.server_instructions and self.client.instructions:
            parts.append(self.client.instructions)
        for spec in self.server.prompt_instructions:
            name, arguments = (spec, {}) if isinstance(spec, str) else spec
            try:
                prompt = await self.client.get_prompt(name, arguments)
            except McpToolError as e:
                raise McpServerError(
                    f"the MCP server {self.server.name!r} has no prompt {name!r} to add to the "
                    f"instructions: {e}"
                ) from None
            parts.append(prompt.as_instructions())
        return "\n\n".join(parts)

    # --- tools ---------------------------------------------------------------------------

    def _build(self, listed: Sequence[mcp_types.Tool]) -> list[FunctionTool]:
        server = self.server
        built: list[FunctionTool] = []
        taken: set[str] = set()
        client = self.connection.client
        tasks = client is not None and supports_tasks(client)
        for mcp_tool in listed:
            if server.allowed_tools is not None and mcp_tool.name not in server.allowed_tools:
                continue
            as_task = task_only(mcp_tool)
            if as_task and not tasks:
                _log.warning(
                    "MCP server %r: tool %r runs only as an MCP task, which the server's "
                    "protocol version does not offer; it is left out",
                    server.name,
                    mcp_tool.name,
                )
                continue
            name = _unique(fit_name(mcp_tool.name), taken)
            annotations = _annotations(mcp_tool.annotations)
            try:
                built.append(
                    FunctionTool.from_schema(
                        name,
                        mcp_tool.description or mcp_tool.title or annotations.title or "",
                        _object_schema(mcp_tool.input_schema),
                        self._caller(mcp_tool.name, as_task=as_task),
                        timeout=server.call_timeout,
                        needs_approval=server.annotations_need_approval(mcp_tool.name, annotations),
                    )
                )
            except (TypeError, ValueError) as e:
                _log.warning("MCP server %r: skipping tool %r: %s", server.name, mcp_tool.name, e)
                continue
            taken.add(name)
        if server.allowed_tools is not None:
            missing = server.allowed_tools - {t.name for t in listed}
            if missing:
                _log.warning(
                    "MCP server %r has no tools named %s", server.name, ", ".join(sorted(missing))
                )
        if server.resource_tools:
            built.extend(self._resource_tools(taken))
        return built

    def _caller(
        self, tool: str, *, as_task: bool
    ) -> Callable[[dict[str, Any]], Awaitable[ToolResult]]:
        server, connection = self.server, self.connection

        async def call(arguments: dict[str, Any]) -> ToolResult:
            running = current_call()

            async def progressed(progress: float, total: float | None, message: str | None) -> None:
                if running is not None:
                    running.report_progress(
                        progress, total, message, extend_timeout=server.progress_resets_timeout
                    )

            async def send(client: Client) -> mcp_types.CallToolResult:
                try:
                    return await client.call_tool(tool, arguments, progress_callback=progressed)
                except MCPError as e:
                    if e.code != mcp_types.URL_ELICITATION_REQUIRED:
                        raise
                    await self._complete_url_elicitations(e, running)
                    return await client.call_tool(tool, arguments, progress_callback=progressed)

            limit = server.max_call_time
            with connection.track(running), trio.move_on_after(limit or math.inf) as capped:
                if as_task:
                    result = await call_as_task(
                        connection, tool, arguments, running, on_status=_TaskStatus(running, server)
                    )
                else:
                    result = await connection.request(send)
            if capped.cancelled_caught:
                raise McpToolError(f"the call was still running after {limit:g} s and was stopped")
            return convert_result(result)

        return call

    async def _complete_url_elicitations(self, error: MCPError, call: ToolCall | None) -> None:
        """Asks the user to finish what the server requires (MCP URL elicitation, -32042).

        Raises:
            McpToolError: The user did not, or nothing in the session can ask.
        """
        try:
            required = mcp_types.ElicitationRequiredErrorData.model_validate(error.error.data)
        except pydantic.ValidationError:
            raise McpToolError(error.error.message) from None
        for params in required.elicitations:
            answer = await self.elicit(params, call)
            if answer.action != "accept":
                raise McpToolError(
                    f"{error.error.message} (the user was asked to open {params.url} and did not)"
                )

    def _resource_tools(self, taken: set[str]) -> list[FunctionTool]:
        client, server = self.client, self.server

        async def list_resources(arguments: dict[str, Any]) -> str:
            resources = await client.list_resources()
            if not resources:
                return f"The MCP server {server.name} lists no resources."
            return "\n".join(
                f"{r.uri}: {r.title or r.name}"
                + (f" ({r.mime_type})" if r.mime_type else "")
                + (f": {r.description}" if r.description else "")
                for r in resources
            )

        async def read_resource(arguments: dict[str, Any]) -> ToolResult:
            return await client.read_for_model(str(arguments["uri"]))

        listed = _unique("list_resources", taken)
        taken.add(listed)
        read = _unique("read_resource", taken)
        taken.add(read)
        return [
            FunctionTool.from_schema(
                listed,
                f"Lists the resources of the MCP server {server.name}: URI, name, type.",
                {"type": "object", "properties": {}},
                list_resources,
            ),
            FunctionTool.from_schema(
                read,
                f"Reads a resource of the MCP server {server.name} by its URI (from "
                f"{listed}, or a resource link a tool returned).",
                {
                    "type": "object",
                    "properties": {"uri": {"type": "string", "description": "The resource's URI."}},
                    "required": ["uri"],
                },
                read_resource,
            ),
        ]


@attrs.define
class _TaskStatus:
    """A task's status messages as the call's progress: each new one restarts the timeout."""

    call: ToolCall | None
    server: McpServer
    last: str | None = None
    count: int = 0

    def __call__(self, task: mcp_types.Task) -> None:
        said = task.status_message or task.status
        if self.call is None or said == self.last:
            return
        self.last = said
        self.count += 1
        self.call.report_progress(
            self.count, None, said, extend_timeout=self.server.progress_resets_timeout
        )


def _annotations(raw: mcp_types.ToolAnnotations | None) -> McpToolAnnotations:
    if raw is None:
        return McpToolAnnotations()
    return McpToolAnnotations(
        title=raw.title,
        read_only=raw.read_only_hint,
        destructive=raw.destructive_hint,
        idempotent=raw.idempotent_hint,
        open_world=raw.open_world_hint,
    )


def _object_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The input schema as the Realtime API wants it: an object with ``properties``."""
    out = dict(schema)
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    return out


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate = fit_name(f"{name[:60]}_{n}")
        n += 1
    return candidate
