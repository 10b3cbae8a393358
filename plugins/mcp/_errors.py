"""The MCP plugin's errors, and what an SDK failure means.

A tool's failure is a value the model reads, so both errors carry text that
names the cause. The SDK raises its own errors, often nested in exception
groups; :func:`is_disconnect` tells a broken connection from a server that
answered with an error, and :func:`describe_error` says which.
"""

from __future__ import annotations

import anyio
import httpx2
import mcp_types
import trio
from mcp.shared.exceptions import MCPError

from framework.errors import CantataError, leaves


class McpServerError(CantataError):
    """An MCP server could not be started or reached, or it crashed.

    As a tool's failure, its text is what the model hears, so it names the
    cause: an exit code or signal, the server's last stderr lines, a timeout.
    """


class McpToolError(CantataError):
    """The server ran the request and reported an error; the text is the server's."""


def first_failure(error: BaseException) -> BaseException | None:
    """The first leaf of a (nested) group that is not a cancellation."""
    return next((e for e in leaves(error) if not isinstance(e, trio.Cancelled)), None)


def is_disconnect(error: BaseException) -> bool:
    """Whether a request failed because the connection did, not the server's handler."""
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


def describe_error(error: BaseException) -> str:
    leaf = first_failure(error) or error
    if isinstance(leaf, MCPError):
        return leaf.error.message
    text = str(leaf)
    return f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__
