"""``McpServer``: one MCP server's tools, resources and prompts, as a plugin.

It holds the server's settings (how to reach it, its name, approval policy,
timeouts, what else it contributes) and, for each session that opens it, a
connection of that session's own (:mod:`._connection`), so one ``McpServer``
serves several sessions at once. The session's tools and the server's
questions are :class:`~plugins.mcp._tools.ServerSession`'s; the application's
access to resources and prompts is the :class:`~plugins.mcp._client.McpClient`
that ``McpServer.client(session)`` returns.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeAlias, TypedDict, Unpack

import mcp_types
from mcp.server import Server
from mcp.server.mcpserver import MCPServer

from framework.plugin import Contribution, Plugin, PluginContext
from framework.runtime import Session

from ._auth import McpOAuth
from ._client import McpClient
from ._connection import McpConnection, server_logger
from ._names import SERVER_NAME, default_name
from ._targets import HttpTarget, InProcessTarget, StdioTarget, Target
from ._tools import McpToolAnnotations, ServerSession

_log = logging.getLogger("cantata.mcp")

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
        """A server on the legacy HTTP+SSE transport; ``url`` is its SSE endpoint.

        Args and options as for :meth:`http`.
        """
        return cls(HttpTarget(url=url, headers=dict(headers or {}), auth=auth, sse=True), **options)

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

        A server opened inside an :class:`McpPlugin` is that plugin's:
        ``McpPlugin.client(session, name)``.

        Raises:
            LookupError: The server is not open on its own in that session.
        """
        service = session.plugin_service(self)
        if not isinstance(service, McpClient):
            raise LookupError(
                f"the MCP server {self.name!r} is not open on its own in {session!r} "
                "(in an McpPlugin, ask the plugin: McpPlugin.client(session, name))"
            )
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
        state = ServerSession(self, context)
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
