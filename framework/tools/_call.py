"""The call in progress, as its tool sees it; and outputs with more than text.

While a tool runs, :func:`current_call` is its :class:`ToolCall`: the call's
id and name, and :meth:`ToolCall.report_progress`, which tells the session
(an application event) and, unless told not to, restarts the call's timeout,
so a tool that keeps saying it is working is not stopped for being slow. An
MCP server's progress notifications come through here.

A tool may return a :class:`ToolResult` instead of a plain value: its text is
the output the model reads, and its images are added to the conversation
after the output (as ``input_image`` content), since a function's output can
only be text.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Final

import attrs
import trio

__all__ = ["ProgressReport", "ToolCall", "ToolImage", "ToolResult", "current_call"]


@attrs.frozen(kw_only=True)
class ProgressReport:
    """How far a running call has got.

    Attributes:
        progress: Work done so far; it should grow with each report.
        total: The work there is, when known.
        message: What the tool is doing now, in words.
    """

    progress: float
    total: float | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class ToolImage:
    """An image a tool returns for the model to see.

    Attributes:
        data: The image, base64-encoded.
        mime_type: Its type (``image/png``, ``image/jpeg``, ...).
    """

    data: str
    mime_type: str

    @property
    def data_url(self) -> str:
        """The image as a ``data:`` URL, the form ``input_image`` content takes."""
        return f"data:{self.mime_type};base64,{self.data}"


@attrs.frozen(kw_only=True)
class ToolResult:
    """A tool's output with content beyond text.

    Attributes:
        text: The output the model reads.
        images: Images added to the conversation after the output.
    """

    text: str
    images: tuple[ToolImage, ...] = ()


@attrs.define(eq=False)
class ToolCall:
    """One running call of a tool, for the tool's own code (:func:`current_call`).

    Attributes:
        call_id: The protocol's ``call_id``; ``None`` when the tool runs outside a session.
        name: The tool's name.
        timeout: The call's timeout in seconds (``None``: none).
    """

    call_id: str | None
    name: str
    timeout: float | None
    _scope: trio.CancelScope
    _on_progress: Callable[[ProgressReport], None] | None = None
    _ended: bool = False

    def end(self) -> None:
        """Ends the call: reports that come later (a server's progress can arrive
        after its answer) are dropped."""
        self._ended = True

    def report_progress(
        self,
        progress: float,
        total: float | None = None,
        message: str | None = None,
        *,
        extend_timeout: bool = True,
    ) -> None:
        """Tells the session how far the call has got.

        Call it from the session's trio thread (the tool's task, or a task it
        started), not from a worker thread; after the call ended it does nothing.

        Args:
            progress: Work done so far.
            total: The work there is, when known.
            message: What the tool is doing now.
            extend_timeout: Restart the call's timeout from now.
        """
        if self._ended:
            return
        if extend_timeout and self.timeout is not None:
            self._scope.deadline = trio.current_time() + self.timeout
        if self._on_progress is not None:
            self._on_progress(ProgressReport(progress=progress, total=total, message=message))


_CURRENT: Final = contextvars.ContextVar[ToolCall | None]("cantata_tool_call", default=None)


def current_call() -> ToolCall | None:
    """The call the current task runs, or ``None`` outside a tool call."""
    return _CURRENT.get()


def enter_call(call: ToolCall) -> contextvars.Token[ToolCall | None]:
    """Makes ``call`` the current one (for :meth:`FunctionTool.run`)."""
    return _CURRENT.set(call)


def leave_call(token: contextvars.Token[ToolCall | None]) -> None:
    """Restores the call that was current before :func:`enter_call`."""
    _CURRENT.reset(token)
