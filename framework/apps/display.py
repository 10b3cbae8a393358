"""The terminal of ``cantata run`` and ``console``: the session as it happens, and approvals.

:class:`Display` prints the live transcript, tool calls, MCP calls, barge-ins,
handoffs, errors and each turn's latency with ``rich``; :func:`watch` reads the
session's events for it and answers each approval request by the policy
(``--approve yes`` / ``no``) or by asking at the prompt.
"""

from __future__ import annotations

from typing import Literal

import trio
from rich.console import Console
from rich.markup import escape

from framework.runtime import (
    ApprovalRequested,
    AssistantMessage,
    ErrorReported,
    HandedOff,
    Interrupted,
    McpCallFinished,
    Reconnected,
    Reconnecting,
    RolledOver,
    Session,
    SessionEvent,
    ToolCallFinished,
    TranscriptionFailed,
    UserTranscript,
)

Approve = Literal["ask", "yes", "no"]
"""How approvals are decided: asked at the prompt, or always yes, or always no."""


class Display:
    """Prints the session as it happens: transcript, tools, approvals, latency."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.turn_started: float | None = None

    def line(self, who: str, text: str, style: str) -> None:
        self.console.print(f"[{style}]{who:<10}[/{style}] {escape(text)}")

    def event(self, event: SessionEvent) -> None:
        if isinstance(event, UserTranscript) and event.final:
            self.line("you said", event.text, "cyan")
        elif isinstance(event, AssistantMessage):
            extra = f"  [{event.audio_ms / 1000:.1f} s of audio]" if event.audio_ms else ""
            self.line("assistant", event.text + extra, "green")
        elif isinstance(event, ToolCallFinished):
            self.line(
                "tool",
                f"{event.name}({event.arguments}) -> {event.output!r} [{event.status}]",
                "yellow",
            )
        elif isinstance(event, McpCallFinished):
            result = event.output if event.error is None else f"error: {event.error}"
            self.line(
                "mcp",
                f"{event.server_label}.{event.name}({event.arguments}) -> {result!r}",
                "yellow",
            )
        elif isinstance(event, Interrupted):
            self.line("barge-in", f"stopped after {event.played_ms} ms", "magenta")
        elif isinstance(event, HandedOff):
            self.line("handoff", f"{event.from_agent} -> {event.to_agent}", "magenta")
        elif isinstance(event, TranscriptionFailed):
            self.line("unheard", f"the transcription failed: {event.message}", "red")
        elif isinstance(event, ErrorReported):
            self.line("error", str(event.error.message), "red")
        elif isinstance(event, Reconnecting):
            self.line("reconnect", f"attempt {event.attempt} to {event.endpoint}", "magenta")
        elif isinstance(event, Reconnected | RolledOver):
            replayed = f"on {event.endpoint}, {event.replayed} items replayed"
            self.line("reconnect", replayed, "magenta")

    def latency(self, ms: float) -> None:
        self.console.print(f"[dim]{'':<10} turn took {ms:.0f} ms[/dim]")


async def ask(question: str) -> bool:
    """A yes/no question at the terminal, read off the event loop."""

    def read() -> str:
        try:
            return input(f"{question} [y/N] ")
        except EOFError:
            return ""

    answer = await trio.to_thread.run_sync(read, abandon_on_cancel=True)
    return answer.strip().lower() in ("y", "yes")


async def watch(session: Session, display: Display, approve: Approve) -> None:
    """Shows every event; answers approvals by policy or at the prompt."""
    async for event in session:
        display.event(event)
        if isinstance(event, ApprovalRequested):
            request = event.request
            question = f"approve {request.tool}({request.arguments})?"
            if approve == "ask":
                granted = await ask(question)
            else:
                granted = approve == "yes"
                display.line(
                    "approval", f"{question} {'yes' if granted else 'no'} (--approve)", "blue"
                )
            try:
                if granted:
                    session.approve(request)
                else:
                    session.reject(request, "the user declined")
            except KeyError:
                display.line("approval", "too late: the request had already timed out", "red")
