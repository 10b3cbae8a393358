"""``McpServer``: one MCP server's tools as a session's function tools.

This module is the edge where the ``mcp`` SDK's pydantic types become ours:
an MCP ``Tool`` becomes a :class:`~framework.tools.FunctionTool` (via
:meth:`~framework.tools.FunctionTool.from_schema`), its annotations a
:class:`McpToolAnnotations` and an approval default, and a
``CallToolResult`` the text the model reads.

Each session that opens the plugin gets its own connection
(:mod:`plugins.mcp._connection`), so one ``McpServer`` can serve several
sessions at once. The tool list is read at start and re-read when the
server says it changed; the session hears of it through ``changed()``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import PurePath
from typing import Any, Final, Literal, TypeAlias, TypedDict, Unpack
from urllib.parse import urlsplit

import attrs
import mcp_types
import orjson
from mcp.server import Server
from mcp.server.mcpserver import MCPServer

from framework.plugin import Contribution, Plugin
from framework.tools import FunctionTool

from ._connection import (
    HttpTarget,
    InProcessTarget,
    McpConnection,
    McpToolError,
    StdioTarget,
    Target,
)

_log = logging.getLogger("cantata.mcp")

_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,32}")
_NOT_NAME: Final = re.compile(r"[^a-zA-Z0-9_-]+")
_LAUNCHERS: Final = frozenset(
    {"uvx", "uv", "npx", "pnpx", "bunx", "pipx", "node", "deno", "docker", "bun"}
)


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


class McpOptions(TypedDict, total=False):
    """The options every :class:`McpServer` constructor takes (see :class:`McpServer`)."""

    name: str | None
    allowed_tools: Collection[str] | None
    approval: ApprovalSetting
    tool_approval: Mapping[str, bool] | None
    call_timeout: float | None
    connect_timeout: float
    max_restarts: int


class McpServer(Plugin):
    """An MCP server whose tools a session can call.

    Build one with :meth:`stdio`, :meth:`http` or :meth:`in_process`, and put
    it in an agent's ``plugins``. Opening it for a session starts (or
    connects to) the server and lists its tools; a server that cannot start
    fails the session's start with :class:`McpServerError`.

    Args:
        target: How to reach the server (use the constructors).
        name: The server's name: ``^[a-zA-Z0-9_-]{1,32}$``, the prefix of its
            tools' names when they collide with another plugin's. Derived
            from the command, URL or server object by default.
        allowed_tools: The MCP tool names to offer; all by default.
        approval: ``"annotations"`` (default): ask unless the server declares
            the tool read-only or non-destructive (the MCP defaults count an
            unannotated tool as destructive); ``"always"``; ``"never"``; or
            a predicate over the tool's MCP name and :class:`McpToolAnnotations`.
        tool_approval: Per MCP tool name, whether its calls need approval;
            wins over ``approval``.
        call_timeout: Seconds a call may take; ``None`` (default) for the
            agent's ``tool_timeout``.
        connect_timeout: Seconds to start, connect and list the tools.
        max_restarts: How many times a crashed server is restarted (a lost
            HTTP or in-process one reconnected), each on the first call after
            the failure, before its calls only report it.

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
        connect_timeout: float = 20.0,
        max_restarts: int = 3,
    ) -> None:
        self.name = name if name is not None else _default_name(target)
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"MCP server name {self.name!r} is invalid: it must match ^[a-zA-Z0-9_-]{{1,32}}$"
            )
        super().__init__()
        if not callable(approval) and approval not in ("annotations", "always", "never"):
            raise ValueError(
                f"approval must be annotations, always, never or a callable: {approval!r}"
            )
        if call_timeout is not None and not call_timeout > 0:
            raise ValueError(f"call_timeout must be positive or None, got {call_timeout!r}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be positive, got {connect_timeout!r}")
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be 0 or more, got {max_restarts!r}")
        self.target = target
        self.allowed_tools = frozenset(allowed_tools) if allowed_tools is not None else None
        self.approval = approval
        self.tool_approval = dict(tool_approval or {})
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.max_restarts = max_restarts

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
        **options: Unpack[McpOptions],
    ) -> McpServer:
        """A streamable-HTTP server: ``McpServer.http("http://127.0.0.1:8000/mcp")``.

        Args:
            url: The MCP endpoint.
            headers: Sent with every request (``Authorization``, ...).
            **options: See :class:`McpServer`.
        """
        return cls(HttpTarget(url=url, headers=dict(headers or {})), **options)

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
        """Connects to the server and lists its tools for one session.

        Raises:
            McpServerError: the server could not be started or reached in time.
        """
        tools = _ToolSet(self, changed)
        connection = McpConnection(
            self.target,
            name=self.name,
            connect_timeout=self.connect_timeout,
            max_restarts=self.max_restarts,
            on_tools=tools.update,
        )
        tools.connection = connection
        try:
            tools.update(await connection.connect(), notify=False)
            yield Contribution(tools=tools.current)
        finally:
            await connection.aclose()


@attrs.define(eq=False)
class _ToolSet:
    """One session's function tools for one server; rebuilt when the server's list changes."""

    server: McpServer
    changed: Callable[[], None]
    connection: McpConnection | None = None
    tools: tuple[FunctionTool, ...] = ()

    def current(self) -> tuple[FunctionTool, ...]:
        return self.tools

    def update(self, listed: Sequence[mcp_types.Tool], *, notify: bool = True) -> None:
        before = [t.definition() for t in self.tools]
        self.tools = tuple(self._build(listed))
        if notify and [t.definition() for t in self.tools] != before:
            self.changed()

    def _build(self, listed: Sequence[mcp_types.Tool]) -> list[FunctionTool]:
        server = self.server
        built: list[FunctionTool] = []
        taken: set[str] = set()
        for mcp_tool in listed:
            if server.allowed_tools is not None and mcp_tool.name not in server.allowed_tools:
                continue
            name = _unique(_tool_name(mcp_tool.name), taken)
            annotations = _annotations(mcp_tool.annotations)
            try:
                built.append(
                    FunctionTool.from_schema(
                        name,
                        mcp_tool.description or mcp_tool.title or annotations.title or "",
                        _object_schema(mcp_tool.input_schema),
                        self._caller(mcp_tool.name),
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
        return built

    def _caller(self, tool: str) -> Callable[[dict[str, Any]], Any]:
        async def call(arguments: dict[str, Any]) -> str:
            assert self.connection is not None
            return render_result(await self.connection.call(tool, arguments))

        return call


def render_result(result: mcp_types.CallToolResult) -> str:
    """The model-visible text of a tool result.

    Text blocks joined by newlines; without any, the structured content as
    JSON; other blocks (images, audio, resources) as short placeholders.

    Raises:
        McpToolError: The server marked the result an error; the text is its message.
    """
    texts: list[str] = []
    others: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            others.append(f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        elif isinstance(block, mcp_types.ResourceLink):
            others.append(f"[resource: {block.uri}]")
        elif isinstance(block.resource, mcp_types.TextResourceContents):
            texts.append(block.resource.text)
        else:
            others.append(f"[resource: {block.resource.uri}]")
    if result.is_error:
        raise McpToolError("\n".join(texts + others) or "the tool failed and said nothing more")
    if not texts and result.structured_content is not None:
        texts.append(orjson.dumps(result.structured_content).decode())
    return "\n".join(texts + others)


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


def fit_name(name: str) -> str:
    """``name`` made a valid tool name: ``^[a-zA-Z0-9_-]{1,64}$``, shortened with a hash."""
    clean = _NOT_NAME.sub("_", name).strip("_") or "tool"
    if len(clean) <= 64:
        return clean
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{clean[:55]}_{digest}"


def _tool_name(mcp_name: str) -> str:
    return mcp_name if re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", mcp_name) else fit_name(mcp_name)


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate = fit_name(f"{name[:60]}_{n}")
        n += 1
    return candidate


def _default_name(target: Target) -> str:
    """A server name from how it is reached: the package, the script, the host."""
    if isinstance(target, InProcessTarget):
        raw = target.server.name
    elif isinstance(target, HttpTarget):
        parts = urlsplit(target.url)
        raw = parts.hostname or "http"
    else:
        raw = PurePath(target.command).name
        words = [a for a in target.args if not a.startswith("-")]
        if "-m" in target.args[:-1]:
            raw = target.args[target.args.index("-m") + 1]
        elif words and (
            raw.lower().removesuffix(".exe") in _LAUNCHERS or raw.lower().startswith("python")
        ):
            raw = PurePath(words[0]).stem if "." in PurePath(words[0]).name else words[0]
            raw = raw.rsplit("/", 1)[-1].split("@", 1)[0] or "mcp"
    return (_NOT_NAME.sub("_", raw).strip("_") or "mcp")[:32]
