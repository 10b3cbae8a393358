"""An MCP server's resources and prompts, for the application, in one session.

``McpServer.client(session)`` is the :class:`McpClient` of that session's
connection: the same one its tools use, so a resource link a tool returned
is read from the server that returned it. Everything comes back as plain
attrs values (:class:`McpResource`, :class:`McpContents`, :class:`McpPrompt`,
:class:`McpPromptText`); the ``mcp`` SDK's types stay inside.

A prompt renders as text for an agent's instructions
(:meth:`McpPromptText.as_instructions`); ``McpServer(prompt_instructions=...)``
does that at the session's start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs
import mcp_types
import trio

from framework.tools import ToolResult

from ._connection import ListKind, McpConnection, list_all
from ._results import convert_contents


@attrs.frozen(kw_only=True)
class McpResource:
    """A resource a server lists.

    Attributes:
        uri: How to read it.
        name: Its name; ``title`` is for people, when the server gives one.
        description: What it is.
        mime_type: Its type, when known.
        size: Its size in bytes, when known.
    """

    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None


@attrs.frozen(kw_only=True)
class McpResourceTemplate:
    """A family of resources: a URI template (RFC 6570) to fill in and read."""

    uri_template: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None


@attrs.frozen(kw_only=True)
class McpContents:
    """One part of a read resource: ``text``, or ``blob`` (base64) for binary data."""

    uri: str
    mime_type: str | None = None
    text: str | None = None
    blob: str | None = None


@attrs.frozen(kw_only=True)
class McpPromptArgument:
    """An argument a prompt takes."""

    name: str
    description: str | None = None
    required: bool = False


@attrs.frozen(kw_only=True)
class McpPrompt:
    """A prompt a server lists."""

    name: str
    title: str | None = None
    description: str | None = None
    arguments: tuple[McpPromptArgument, ...] = ()


@attrs.frozen(kw_only=True)
class McpPromptText:
    """A prompt filled in: its messages, each ``(role, text)``."""

    name: str
    description: str | None
    messages: tuple[tuple[Literal["user", "assistant"], str], ...]

    def as_instructions(self) -> str:
        """The prompt as text for an agent's instructions.

        One user message is its text as is; a conversation keeps who says what.
        """
        if len(self.messages) == 1 and self.messages[0][0] == "user":
            return self.messages[0][1]
        return "\n\n".join(f"{role.capitalize()}: {text}" for role, text in self.messages)


class McpClient:
    """One session's access to one server's resources and prompts.

    Args:
        connection: The session's connection to the server.
    """

    def __init__(self, connection: McpConnection) -> None:
        self._connection = connection
        self._changed = {kind: trio.Event() for kind in ("tools", "resources", "prompts")}

    @property
    def name(self) -> str:
        """The server's name."""
        return self._connection.name

    @property
    def instructions(self) -> str | None:
        """What the server says about using it (its ``instructions``), if anything."""
        client = self._connection.client
        return client.instructions if client is not None else None

    def note_changed(self, kind: ListKind) -> None:
        """Wakes whoever waits for a change of that list (the connection calls it)."""
        self._changed[kind].set()
        self._changed[kind] = trio.Event()

    async def wait_changed(self, kind: ListKind) -> None:
        """Returns when the server next says its ``tools``, ``resources`` or ``prompts`` changed."""
        await self._changed[kind].wait()

    async def list_resources(self) -> list[McpResource]:
        """Every resource the server lists.

        Raises:
            McpServerError: The server is down.
            McpToolError: The server refused (it has no resources, say).
        """
        listed: list[mcp_types.Resource] = await self._connection.request(
            lambda client: list_all(client, "resources")
        )
        return [
            McpResource(
                uri=r.uri,
                name=r.name,
                title=r.title,
                description=r.description,
                mime_type=r.mime_type,
                size=r.size,
            )
            for r in listed
        ]

    async def list_resource_templates(self) -> list[McpResourceTemplate]:
        """The server's resource templates.

        Raises:
            McpServerError: The server is down.
            McpToolError: The server refused.
        """

        return [
            McpResourceTemplate(
                uri_template=t.uri_template,
                name=t.name,
                title=t.title,
                description=t.description,
                mime_type=t.mime_type,
            )
            for t in await self._connection.request(
                lambda client: list_all(client, "resource_templates")
            )
        ]

    async def read_resource(self, uri: str) -> list[McpContents]:
        """The contents of the resource at ``uri``.

        Raises:
            McpServerError: The server is down.
            McpToolError: The server refused (no such resource, say).
        """
        result = await self._read(uri)
        return [
            McpContents(uri=c.uri, mime_type=c.mime_type, text=c.text)
            if isinstance(c, mcp_types.TextResourceContents)
            else McpContents(uri=c.uri, mime_type=c.mime_type, blob=c.blob)
            for c in result.contents
        ]

    async def read_for_model(self, uri: str) -> ToolResult:
        """The resource as a tool's output: its text, its images shown."""
        return convert_contents((await self._read(uri)).contents)

    async def _read(self, uri: str) -> mcp_types.ReadResourceResult:
        return await self._connection.request(lambda client: client.read_resource(uri))

    async def list_prompts(self) -> list[McpPrompt]:
        """Every prompt the server lists.

        Raises:
            McpServerError: The server is down.
            McpToolError: The server refused (it has no prompts, say).
        """
        listed: list[mcp_types.Prompt] = await self._connection.request(
            lambda client: list_all(client, "prompts")
        )
        return [
            McpPrompt(
                name=p.name,
                title=p.title,
                description=p.description,
                arguments=tuple(
                    McpPromptArgument(
                        name=a.name, description=a.description, required=bool(a.required)
                    )
                    for a in p.arguments or ()
                ),
            )
            for p in listed
        ]

    async def get_prompt(
        self, name: str, arguments: Mapping[str, str] | None = None
    ) -> McpPromptText:
        """The prompt ``name`` filled in with ``arguments``.

        Text content is kept; an embedded text resource is inlined; other
        content (images, audio) is named in brackets.

        Raises:
            McpServerError: The server is down.
            McpToolError: The server refused (an unknown prompt, a missing argument).
        """
        result = await self._connection.request(
            lambda client: client.get_prompt(name, dict(arguments or {}))
        )
        messages = tuple((m.role, _prompt_text(m.content)) for m in result.messages)
        return McpPromptText(name=name, description=result.description, messages=messages)


def _prompt_text(block: mcp_types.ContentBlock) -> str:
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return resource.text
        return f"[resource {resource.uri}]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[resource link: {block.uri}]"
    return f"[{block.type}: {block.mime_type}]"
