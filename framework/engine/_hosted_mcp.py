"""Hosted MCP in the local engine: the client interface and the server's policy.

For ``type: "mcp"`` tools the engine itself is the MCP client, as the hosted
API is. This module owns what the engine needs to know about that: the small
:class:`HostedMcpClient` interface (the real one, over streamable HTTP, lives
in ``plugins/mcp/``, the only code that imports ``mcp``; it is injected, the
engine never looks for it), the results it returns, and the policy applied to
a listing (``allowed_tools``) and to a call (``require_approval``). The flows
and their events are in :mod:`._mcp` and :mod:`._mcp_calls` (§7.6).

Failures a call can have are values, tagged as the hosted API tags them: a
JSON-RPC error is a ``protocol_error``, a result with ``isError`` a
``tool_execution_error``, a server that cannot be reached or answers with an
HTTP error an ``http_error`` (with the status, or :data:`UNREACHABLE` /
:data:`TIMED_OUT` when there is none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import attrs

from framework.protocol import (
    UNSET,
    McpCallError,
    McpListedTool,
    McpTool,
    McpToolApprovalFilter,
    McpToolFilter,
    RealtimeMcphttpError,
    RealtimeMcpProtocolError,
    RealtimeMcpToolExecutionError,
)

LIST_TIMEOUT_S: Final = 30.0
"""The engine's own bound on one listing, whatever the client's timeouts."""
CALL_TIMEOUT_S: Final = 120.0
"""The engine's own bound on one tool call."""
UNREACHABLE: Final = 502
"""The ``http_error`` code when the server could not be reached (no HTTP status)."""
TIMED_OUT: Final = 504
"""The ``http_error`` code when the server did not answer in time."""


class McpListError(Exception):
    """Listing a server's tools failed; the message says why (for the client's eyes)."""


@attrs.frozen(kw_only=True)
class McpCallResult:
    """What one MCP tool call gave: its text output, or why it failed.

    Attributes:
        output: the tool's output as text (when it succeeded).
        error: why it failed, as the hosted API reports it on the ``mcp_call`` item.
    """

    output: str | None = None
    error: McpCallError | None = None

    @classmethod
    def protocol_error(cls, code: int, message: str) -> McpCallResult:
        """A JSON-RPC error from the server."""
        return cls(error=RealtimeMcpProtocolError(code=code, message=message))

    @classmethod
    def tool_error(cls, message: str) -> McpCallResult:
        """The tool ran and reported a failure (``isError``)."""
        return cls(error=RealtimeMcpToolExecutionError(message=message))

    @classmethod
    def http_error(cls, code: int, message: str) -> McpCallResult:
        """The server was unreachable, timed out or answered with an HTTP error."""
        return cls(error=RealtimeMcphttpError(code=code, message=message))


@runtime_checkable
class HostedMcpClient(Protocol):
    """Talks to the MCP servers of ``type: "mcp"`` tools on the engine's behalf.

    Implementations must be safe to share between sessions and must bound
    every network wait; the engine adds its own bounds
    (:data:`LIST_TIMEOUT_S`, :data:`CALL_TIMEOUT_S`) on top.
    """

    async def list_tools(self, server: McpTool) -> Sequence[McpListedTool]:
        """Every tool the server offers (``annotations`` in MCP's wire shape).

        Raises:
            McpListError: the server could not be listed, with the reason.
        """
        ...

    async def call_tool(
        self, server: McpTool, name: str, arguments: Mapping[str, Any]
    ) -> McpCallResult:
        """Calls one tool; every failure is a result, never an exception."""
        ...


class NoMcpClient:
    """The stand-in when no MCP client is installed: every listing fails, saying so."""

    reason = (
        "This engine has no hosted-MCP client: give it one (Engine(mcp_client=...)); "
        "'cantata serve' and framework.testing use the MCP plugin's when the 'mcp' "
        "package is installed."
    )

    async def list_tools(self, server: McpTool) -> Sequence[McpListedTool]:
        raise McpListError(self.reason)

    async def call_tool(
        self, server: McpTool, name: str, arguments: Mapping[str, Any]
    ) -> McpCallResult:
        return McpCallResult.http_error(UNREACHABLE, self.reason)


# --- policy ------------------------------------------------------------------------


def read_only(tool: McpListedTool) -> bool | None:
    """The tool's ``readOnlyHint`` annotation, when the server gave one."""
    annotations = tool.annotations
    if isinstance(annotations, Mapping):
        hint = annotations.get("readOnlyHint", annotations.get("read_only"))
        if isinstance(hint, bool):
            return hint
    return None


def _matches(selector: object, tool: McpListedTool) -> bool:
    """Whether a filter selects the tool: every criterion it sets must hold."""
    if not isinstance(selector, McpToolFilter):
        return False
    names, only = selector.tool_names, selector.read_only
    if names in (UNSET, None) and only in (UNSET, None):
        return False
    if isinstance(names, Sequence) and tool.name not in names:
        return False
    return not (isinstance(only, bool) and read_only(tool) is not only)


def is_allowed(server: McpTool, tool: McpListedTool) -> bool:
    """Whether ``allowed_tools`` (a list of names or a filter) lets the model see the tool."""
    allowed = server.allowed_tools
    if allowed in (UNSET, None):
        return True
    if isinstance(allowed, McpToolFilter):
        if allowed.tool_names in (UNSET, None) and allowed.read_only in (UNSET, None):
            return True  # a filter without criteria filters nothing
        return _matches(allowed, tool)
    assert isinstance(allowed, Sequence)
    return tool.name in allowed


def needs_approval(server: McpTool, tool: McpListedTool) -> bool:
    """Whether calling the tool needs the client's approval first.

    ``"never"`` and ``"always"`` say so for every tool; a filter's ``always``
    wins over its ``never``, and a tool neither selects needs approval, as
    with no setting at all (the hosted default).
    """
    policy = server.require_approval
    if policy == "never":
        return False
    if isinstance(policy, McpToolApprovalFilter):
        if _matches(policy.always, tool):
            return True
        return not _matches(policy.never, tool)
    return True
