"""``McpPlugin``: the installed ``mcp`` plugin, and servers from a config file.

Installed, the plugin is named ``"mcp"`` (``Agent(plugins=["mcp"])``). It
opens the servers listed in a JSON file in the ``mcpServers`` format other
MCP clients use, found through ``CANTATA_MCP_CONFIG`` or passed in code::

    {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"]},
        "docs": {"url": "https://example.com/mcp", "headers": {"Authorization": "..."}}
    }}

Besides ``command``/``args``/``env``/``cwd`` or ``url``/``headers`` (with
``"type": "sse"`` for the legacy SSE transport), an entry may set
``allowedTools``, ``approval`` (``"annotations"``, ``"always"``, ``"never"``),
``timeout`` (seconds per call), ``resourceTools`` and ``disabled``; other
keys are left to the clients that share the file.

Because it opens all its servers itself, it can name clashing tools
evenly: every tool whose name two of its servers share is offered as
``<server>_<tool>``, so neither server's tool takes the bare name. Two
servers of one name would hide each other's tools, so that is an error at
the session's start. ``McpPlugin.client(session, name)`` is one server's
resources and prompts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import trio

from framework.plugin import Contribution, Plugin, PluginContext, PluginError
from framework.runtime import Session
from framework.tools import FunctionTool, qualified_name

from ._client import McpClient
from ._server import McpOptions, McpServer

CONFIG_ENV: Final = "CANTATA_MCP_CONFIG"
"""The environment variable naming the servers' JSON file."""


class McpPlugin(Plugin):
    """MCP servers as one plugin: those given, then those of the config file.

    Args:
        servers: Servers configured in code.
        config: The JSON file; ``$CANTATA_MCP_CONFIG`` by default, none if unset.
    """

    name = "mcp"

    def __init__(
        self, servers: Sequence[McpServer] = (), *, config: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        self._servers = tuple(servers)
        self._config = config

    def config_path(self) -> Path | None:
        path = self._config if self._config is not None else os.environ.get(CONFIG_ENV)
        return Path(path) if path else None

    def describe(self) -> dict[str, list[str]]:
        path = self.config_path()
        try:
            servers = [*self._servers, *(parse_config(path.read_text(), path) if path else [])]
        except (OSError, ValueError) as e:
            return {"mcp servers": [f"error: {e}"]}
        listed = [f"{s.name} ({s.target.describe()})" for s in servers]
        if not listed and path is None:
            listed = [f"none configured (set {CONFIG_ENV} to an mcpServers JSON file)"]
        return {
            "mcp servers": listed,
            "engine": ["mcp_client (hosted MCP over streamable HTTP)"],
        }

    def engine_parts(self) -> dict[str, Any]:
        """The local engine's hosted-MCP client (streamable HTTP)."""
        from ._hosted import StreamableHttpMcpClient

        return {"mcp_client:streamable-http": StreamableHttpMcpClient()}

    def client(self, session: Session, name: str) -> McpClient:
        """The resources and prompts of the server ``name`` in ``session``.

        Raises:
            LookupError: No server of that name is open in that session.
        """
        service = session.plugin_service(self)
        clients = service if isinstance(service, dict) else {}
        found = clients.get(name)
        if not isinstance(found, McpClient):
            known = ", ".join(sorted(clients)) or "none"
            raise LookupError(f"no MCP server {name!r} is open in {session!r} (open: {known})")
        return found

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        """Opens every server for one session that asks the user nothing (see :meth:`open_in`)."""
        async with self.open_in(PluginContext(changed=changed)) as contribution:
            yield contribution

    @asynccontextmanager
    async def open_in(self, context: PluginContext) -> AsyncIterator[Contribution]:
        """Opens every server for one session.

        Raises:
            McpServerError: a server could not be started or reached in time.
            PluginError: two servers have the same name.
            ValueError: the config file is not a valid ``mcpServers`` file.
            OSError: the config file cannot be read.
        """
        servers = list(self._servers)
        path = self.config_path()
        if path is not None:
            servers += parse_config(await trio.Path(path).read_text(), path)
        names = [s.name for s in servers]
        clash = next((n for n in names if names.count(n) > 1), None)
        if clash is not None:
            raise PluginError(
                f"two MCP servers are named {clash!r}, so their tools would hide each other's; "
                "give them different names (name=, or their keys in the config file)"
            )
        group = _Group(context.changed)
        inner = attrs.evolve(context, changed=group.changed)
        async with AsyncExitStack() as stack:
            for server in servers:
                contribution = await stack.enter_async_context(server.open_in(inner))
                group.parts.append((server.name, contribution))
            group.merge()
            yield Contribution(
                tools=group.current,
                instructions="\n\n".join(c.instructions for _, c in group.parts if c.instructions),
                service={name: c.service for name, c in group.parts},
            )


@attrs.define(eq=False)
class _Group:
    """The merged tools of several servers, with clashing names prefixed on every side."""

    outer: Callable[[], None]
    parts: list[tuple[str, Contribution]] = attrs.Factory(list)
    tools: tuple[FunctionTool, ...] = ()

    def current(self) -> tuple[FunctionTool, ...]:
        return self.tools

    def changed(self) -> None:
        self.merge()
        self.outer()

    def merge(self) -> None:
        listed = [(name, tool) for name, part in self.parts for tool in part.tools()]
        counts: dict[str, int] = {}
        for _, tool in listed:
            counts[tool.name] = counts.get(tool.name, 0) + 1
        self.tools = tuple(
            tool
            if counts[tool.name] == 1
            else attrs.evolve(tool, name=qualified_name(name, tool.name))
            for name, tool in listed
        )


def parse_config(text: str, source: str | os.PathLike[str] = "<config>") -> list[McpServer]:
    """The servers of an ``mcpServers`` JSON document (``servers`` is accepted too).

    Raises:
        ValueError: It is not JSON, or an entry is not a server; the message
            names the entry.
    """
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"{source}: not JSON ({e})") from None
    entries = (
        document.get("mcpServers", document.get("servers")) if isinstance(document, dict) else None
    )
    if not isinstance(entries, dict):
        raise ValueError(f'{source}: expected {{"mcpServers": {{name: server, ...}}}}')
    servers = []
    for name, entry in entries.items():
        where = f"{source}: mcpServers.{name}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object")
        if entry.get("disabled") is True:
            continue
        try:
            servers.append(_server(name, entry))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
    return servers


def _server(name: str, entry: dict[str, Any]) -> McpServer:
    options: McpOptions = {"name": name}
    if "allowedTools" in entry:
        options["allowed_tools"] = _strings(entry["allowedTools"], "allowedTools")
    if "approval" in entry:
        options["approval"] = entry["approval"]
    if "timeout" in entry:
        options["call_timeout"] = float(entry["timeout"])
    if "resourceTools" in entry:
        options["resource_tools"] = bool(entry["resourceTools"])
    if "command" in entry:
        return McpServer.stdio(
            str(entry["command"]),
            *_strings(entry.get("args", []), "args"),
            env={str(k): str(v) for k, v in dict(entry.get("env") or {}).items()},
            cwd=entry.get("cwd"),
            **options,
        )
    if "url" in entry:
        headers = {str(k): str(v) for k, v in dict(entry.get("headers") or {}).items()}
        kind = entry.get("type", entry.get("transport", "http"))
        if kind == "sse":
            return McpServer.sse(str(entry["url"]), headers, **options)
        if kind not in ("http", "streamable-http", "streamableHttp"):
            raise ValueError(f"unknown type {kind!r}: expected http or sse")
        return McpServer.http(str(entry["url"]), headers, **options)
    raise ValueError("expected a command (stdio) or a url (streamable HTTP or SSE)")


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return value
