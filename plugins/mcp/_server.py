"""``McpServer``: one MCP server's tools, resources and prompts in a session.

This module is the edge where the ``mcp`` SDK's pydantic types become ours:
an MCP ``Tool`` becomes a :class:`~framework.tools.FunctionTool` (via
:meth:`~framework.tools.FunctionTool.from_schema`), its annotations a
:class:`McpToolAnnotations` and an approval default, a ``CallToolResult`` a
:class:`~framework.tools.ToolResult` (:mod:`._results`), and an elicitation
request a :class:`~framework.runtime.ElicitationRequest`.

Each session that opens the plugin gets its own connection
(:mod:`._connection`), so one ``McpServer`` can serve several sessions at
once. The tool list is read at start and re-read when the server says it
changed; the session hears of it through ``changed()``. Every call asks for
progress, which reaches the application as ``ToolProgress`` and restarts the
call's timeout. Tools that only run as tasks run as tasks (:mod:`._tasks`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeAlias, TypedDict, Unpack

import attrs
import mcp_types
import pydantic
import trio
from mcp import Client
from mcp.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from framework.plugin import Contribution, Plugin, PluginContext
from framework.runtime import ElicitationRequest, Session
from framework.tools import FunctionTool, ToolCall, ToolResult, current_call, fit_name

from ._auth import McpOAuth
from ._client import McpClient
from ._connection import ListKind, McpConnection, McpServerError, McpToolError, server_logger
from ._names import SERVER_NAME, default_name
from ._results import convert_result
from ._targets import HttpTarget, InProcessTarget, SseTarget, StdioTarget, Target
from ._tasks import call_as_task, supports_tasks

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


ApprovalMode: TypeAlias = Literal["annotations", "always", "never"]
ApprovalSetting: TypeAlias = ApprovalMode | Callable[[str, McpToolAnnotations], bool]
"""A server's approval policy: a mode, or a predicate over (MCP tool name, annotations)."""
PromptSpec: TypeAlias = str | tuple[str, Mapping[str, str]]
"""A prompt by name, or by name with its arguments."""


class McpOptions(TypedDict, total=False):
    """The options every :class:`McpServer` constructor takes (see :class:`McpServer`)."""

    name: str | None
    allowed_tools: Collection[str] | None
    approval: ApprovalSetting
    tool_approval: Mapping[str, bool] | None
    call_timeout: float | None
    progress_resets_timeout: bool
    max_call_time: float | None
    connect_timeout: float
    max_restarts: int
    elicitation: bool
    log_level: mcp_types.LoggingLevel
    resource_tools: bool
    prompt_instructions: Sequence[PromptSpec]
    server_instructions: bool


class McpServer(Plugin):
    """An MCP server whose tools, resources and prompts a session can use.

    Build one with :meth:`stdio`, :meth:`http`, :meth:`sse` or
    :meth:`in_process`, and put it in an agent's ``plugins``. Opening it for
    a session starts (or connects to) the server and lists its tools; a
    server that cannot start fails the session's start with
    :class:`McpServerError`.

    Args:
        target: How to reach the server (use the constructors).
        name: The server's name: ``^[a-zA-Z0-9_-]{1,32}$``, the prefix of its
            tools' names when they collide with another plugin's, and its
            logger's name (``cantata.mcp.<name>``). By default from the
            package, command or URL, with the last path argument added to
            tell two instances apart (``mcp_server_git-alpha``).
        allowed_tools: The MCP tool names to offer; all by default.
        approval: ``"annotations"`` (default): ask unless the server declares
            the tool read-only or non-destructive (the MCP defaults count an
            unannotated tool as destructive); ``"always"``; ``"never"``; or
            a predicate over the tool's MCP name and :class:`McpToolAnnotations`.
        tool_approval: Per MCP tool name, whether its calls need approval;
            wins over ``approval``.
        call_timeout: Seconds a call may take; ``None`` (default) for the
            agent's ``tool_timeout``.
        progress_resets_timeout: Each progress report the server sends
            restarts the call's timeout (default), so a long call that keeps
            saying it is working is not stopped.
        max_call_time: Seconds a call may take however much progress it
            reports; ``None`` (default) for no such limit.
        connect_timeout: Seconds to start, connect and list the tools.
        max_restarts: How many times a crashed server is restarted (a lost
            HTTP or in-process one reconnected), each on the first call after
            the failure, before its calls only report it.
        elicitation: Let the server ask the user questions (MCP elicitation),
            when the session can answer them (the agent's
            ``answer_elicitation`` hook, or ``open_session(elicitation=True)``).
        log_level: The least severe of the server's log messages that is asked
            for and logged (``"debug"`` ... ``"emergency"``).
        resource_tools: Also offer the model ``list_resources`` and
            ``read_resource`` for this server's resources (and resource links).
        prompt_instructions: Prompts (a name, or a name and its arguments)
            whose text is added to the agent's instructions at the start.
        server_instructions: Add the server's own ``instructions`` (how to use
            it) to the agent's instructions.

    Raises:
        ValueError: A bad name, timeout or restart count.
    """

    def __init__(
        self,
        target: Target,
        *,
        name: str | None = None,
        allowed_tools: Collection[str] | None = None,
        approval: ApprovalSetting = "annotations",
        tool_approval: Mapping[str, bool] | None = None,
        call_timeout: float | None = None,
        progress_resets_timeout: bool = True,
        max_call_time: float | None = None,
        connect_timeout: float = 20.0,
        max_restarts: int = 3,
        elicitation: bool = True,
        log_level: mcp_types.LoggingLevel = "info",
        resource_tools: bool = False,
        prompt_instructions: Sequence[PromptSpec] = (),
        server_instructions: bool = False,
    ) -> None:
        self.name = name if name is not None else default_name(target)
        if not SERVER_NAME.fullmatch(self.name):
            raise ValueError(
                f"MCP server name {self.name!r} is invalid: it must match ^[a-zA-Z0-9_-]{{1,32}}$"
            )
        super().__init__()
        if not callable(approval) and approval not in ("annotations", "always", "never"):
            raise ValueError(
                f"approval must be annotations, always, never or a callable: {approval!r}"
            )
        for option, value in (("call_timeout", call_timeout), ("max_call_time", max_call_time)):
            if value is not None and not value > 0:
                raise ValueError(f"{option} must be positive or None, got {value!r}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be positive, got {connect_timeout!r}")
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be 0 or more, got {max_restarts!r}")
        self.target = target
        self.allowed_tools = frozenset(allowed_tools) if allowed_tools is not None else None
        self.approval = approval
        self.tool_approval = dict(tool_approval or {})
        self.call_timeout = call_timeout
        self.progress_resets_timeout = progress_resets_timeout
        self.max_call_time = max_call_time
        self.connect_timeout = connect_timeout
        self.max_restarts = max_restarts
        self.elicitation = elicitation
        self.log_level = log_level
        self.resource_tools = resource_tools
        self.prompt_instructions = tuple(prompt_instructions)
        self.server_instructions = server_instructions

    @classmethod
    def stdio(
        cls,
        command: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        **options: Unpack[McpOptions],
    ) -> McpServer:
        """A server run as a child process: ``McpServer.stdio("uvx", "mcp-server-time")``.

        Args:
            command: The program.
            *args: Its arguments.
            env: Variables added to the few inherited ones (``PATH``, ``HOME``, ...).
            cwd: Its working directory.
            **options: See :class:`McpServer`.
        """
        target = StdioTarget(
            command=command,
            args=tuple(args),
            env=dict(env) if env is not None else None,
            cwd=os.fspath(cwd) if cwd is not None else None,
        )
        return cls(target, **options)

    @classmethod
    def http(
        cls,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        auth: McpOAuth | None = None,
        **options: Unpack[McpOptions],
    ) -> McpServer:
        """A streamable-HTTP server: ``McpServer.http("http://127.0.0.1:8000/mcp")``.

        Args:
            url: The MCP endpoint.
            headers: Sent with every request (``Authorization``, ...).
            auth: OAuth, for a server that asks for it (:class:`McpOAuth`).
            **options: See :class:`McpServer`.
        """
        return cls(HttpTarget(url=url, headers=dict(headers or {}), auth=auth), **options)

    @classmethod
    def sse(
        cls,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        auth: McpOAuth | None = None,
        **options: Unpack[McpOptions],
    ) -> McpServer:
        """A server on the legacy HTTP+SSE transport: ``McpServer.sse("http://host/sse")``.

        Args:
            url: The SSE endpoint (the server names the one to post to).
            headers: Sent with every request.
            auth: OAuth, for a server that asks for it (:class:`McpOAuth`).
            **options: See :class:`McpServer`.
        """
        return cls(SseTarget(url=url, headers=dict(headers or {}), auth=auth), **options)

    @classmethod
    def in_process(
        cls, server: MCPServer | Server[Any], **options: Unpack[McpOptions]
    ) -> McpServer:
        """An ``mcp`` server object in this process (``MCPServer`` or a lowlevel ``Server``).

        Args:
            server: The server; it runs in the session's connection, in memory.
            **options: See :class:`McpServer`.
        """
        return cls(InProcessTarget(server=server), **options)

    def __repr__(self) -> str:
        return f"McpServer({self.name!r}, {self.target.describe()})"

    def describe(self) -> dict[str, list[str]]:
        return {"mcp servers": [f"{self.name} ({self.target.describe()})"]}

    @property
    def logger(self) -> logging.Logger:
        """Where the server's log messages go."""
        return server_logger(self.name)

    def client(self, session: Session) -> McpClient:
        """This server's resources and prompts in ``session`` (opened with this plugin).

        Raises:
            LookupError: The server is not open in that session.
        """
        service = session.plugin_service(self)
        if not isinstance(service, McpClient):
            raise LookupError(f"the MCP server {self.name!r} is not open in {session!r}")
        return service

    def annotations_need_approval(self, tool: str, annotations: McpToolAnnotations) -> bool:
        """Whether calls of ``tool`` (its MCP name) need approval, by this server's policy.

        A predicate that raises means approval is needed.
        """
        if tool in self.tool_approval:
            return bool(self.tool_approval[tool])
        policy = self.approval
        if policy == "always":
            return True
        if policy == "never":
            return False
        if policy == "annotations":
            return annotations.needs_approval
        try:
            return bool(policy(tool, annotations))
        except Exception:
            _log.exception("the approval policy of MCP server %r failed on %s", self.name, tool)
            return True

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        """Opens the server for one session that asks the user nothing.

        Raises:
            McpServerError: the server could not be started or reached in time.
        """
        async with self.open_in(PluginContext(changed=changed)) as contribution:
            yield contribution

    @asynccontextmanager
    async def open_in(self, context: PluginContext) -> AsyncIterator[Contribution]:
        """Connects to the server and lists its tools for one session.

        Raises:
            McpServerError: the server could not be started or reached in time,
                or a prompt named in ``prompt_instructions`` could not be read.
        """
        state = _SessionState(self, context)
        connection = McpConnection(
            self.target,
            name=self.name,
            connect_timeout=self.connect_timeout,
            max_restarts=self.max_restarts,
            listener=state,
            elicitation=self.elicitation and context.elicit is not None,
            log_level=self.log_level,
        )
        state.connection = connection
        state.client = McpClient(connection)
        try:
            state.update(await connection.connect(), notify=False)
            instructions = await state.instructions()
            yield Contribution(tools=state.current, instructions=instructions, service=state.client)
        finally:
            await connection.aclose()


@attrs.define(eq=False)
class _SessionState:
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
            support = mcp_tool.execution.task_support if mcp_tool.execution else None
            if support == "required" and not tasks:
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
                        self._caller(mcp_tool.name, as_task=support == "required"),
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
