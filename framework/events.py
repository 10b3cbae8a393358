"""What a session tells the application: ``async for event in session``.

Each event is a frozen attrs class named in the past tense. Raw protocol
events stay available as :class:`ServerEventReceived` for those who want
every frame; the rest are the moments an application acts on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import attrs

from framework.protocol import RealtimeError, RealtimeResponseUsage, ServerEvent

from .approval import ApprovalRequest


@attrs.frozen(kw_only=True)
class SessionStarted:
    """The server accepted the session and the agent's configuration."""

    session_id: str
    model: str


@attrs.frozen(kw_only=True)
class UserSpeechStarted:
    """Server VAD heard the user start speaking (``audio_start_ms`` of the input)."""

    item_id: str
    audio_start_ms: int


@attrs.frozen(kw_only=True)
class UserSpeechStopped:
    """Server VAD heard the user stop."""

    item_id: str
    audio_end_ms: int


@attrs.frozen(kw_only=True)
class UserTranscript:
    """The user's words: a growing partial (``final`` False) or the final text."""

    item_id: str
    text: str
    final: bool
    usage: Any = None
    """With the final text: the transcription's usage (seconds or tokens)."""


@attrs.frozen(kw_only=True)
class AssistantDelta:
    """A piece of the assistant's reply: written text or the spoken transcript."""

    response_id: str
    item_id: str
    delta: str
    kind: Literal["text", "transcript"]


@attrs.frozen(kw_only=True)
class AssistantMessage:
    """One finished assistant message, with everything it said."""

    response_id: str
    item_id: str
    text: str
    audio_ms: int


@attrs.frozen(kw_only=True)
class ToolCallStarted:
    """A function call is about to run (after any approval)."""

    call_id: str
    name: str
    arguments: str


@attrs.frozen(kw_only=True)
class ToolCallFinished:
    """A function call's one output was sent to the model."""

    call_id: str
    name: str
    arguments: str
    status: str
    output: str


@attrs.frozen(kw_only=True)
class ApprovalRequested:
    """A call waits for a decision: ``session.approve(request)`` or ``reject``."""

    request: ApprovalRequest


@attrs.frozen(kw_only=True)
class Interrupted:
    """The user barged in: playback stopped at ``played_ms`` of the item."""

    item_id: str | None
    played_ms: int
    truncated: bool


@attrs.frozen(kw_only=True)
class ResponseFinished:
    """A response ended (``completed``, ``cancelled``, ``incomplete``, ``failed``)."""

    response_id: str
    status: str
    usage: RealtimeResponseUsage | None


@attrs.frozen(kw_only=True)
class HandedOff:
    """The session switched agents (by a handoff tool)."""

    from_agent: str
    to_agent: str


@attrs.frozen(kw_only=True)
class McpToolsListed:
    """The server imported a hosted MCP server's tools (or failed to)."""

    item_id: str
    server_label: str
    tools: Sequence[str]
    ok: bool


@attrs.frozen(kw_only=True)
class McpCallFinished:
    """The server ran a hosted MCP tool: its output, or its error."""

    item_id: str
    server_label: str
    name: str
    arguments: str
    output: str | None
    error: str | None


@attrs.frozen(kw_only=True)
class ErrorReported:
    """The server sent an ``error`` event (the session goes on)."""

    error: RealtimeError


@attrs.frozen(kw_only=True)
class ServerEventReceived:
    """Any server event, as parsed (only with ``open_session(raw_events=True)``)."""

    event: ServerEvent


SessionEvent: TypeAlias = (
    SessionStarted
    | UserSpeechStarted
    | UserSpeechStopped
    | UserTranscript
    | AssistantDelta
    | AssistantMessage
    | ToolCallStarted
    | ToolCallFinished
    | ApprovalRequested
    | Interrupted
    | ResponseFinished
    | HandedOff
    | McpToolsListed
    | McpCallFinished
    | ErrorReported
    | ServerEventReceived
)
"""Everything ``async for event in session`` can yield."""
