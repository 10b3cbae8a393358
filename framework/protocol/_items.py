"""Conversation items and what they contain.

Items are tagged on ``type``; the three message classes share
``type: "message"`` and are told apart by ``role``. Items the server invents
later parse into :class:`UnknownItem` instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import attrs

from ._base import UNSET, UnknownItem, Unset, WireObject

ItemStatus: TypeAlias = Literal["completed", "incomplete", "in_progress"]
"""The status of an item; informational when a client sends it."""


# --- message content -------------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class SystemMessageContent(WireObject):
    """Text of a system message."""

    type: Literal["input_text"] | str | Unset | None = UNSET
    text: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class UserMessageContent(WireObject):
    """One part of a user message: text, audio (base64) or an image (data URI)."""

    type: Literal["input_text", "input_audio", "input_image"] | str | Unset | None = UNSET
    text: str | Unset | None = UNSET
    audio: str | Unset | None = UNSET
    transcript: str | Unset | None = UNSET
    image_url: str | Unset | None = UNSET
    detail: Literal["auto", "low", "high"] | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class AssistantMessageContent(WireObject):
    """One part of an assistant message: text, or audio with its transcript."""

    type: Literal["output_text", "output_audio"] | str | Unset | None = UNSET
    text: str | Unset | None = UNSET
    audio: str | Unset | None = UNSET
    transcript: str | Unset | None = UNSET


# --- items -------------------------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class RealtimeConversationItemSystemMessage(WireObject):
    """A system message: extra context or instructions added mid-conversation."""

    type: Literal["message"] = "message"
    role: Literal["system"] = "system"
    content: Sequence[SystemMessageContent]
    id: str | Unset | None = UNSET
    object: Literal["realtime.item"] | str | Unset | None = UNSET
    status: ItemStatus | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeConversationItemUserMessage(WireObject):
    """A user message, typed by the client or committed from input audio."""

    type: Literal["message"] = "message"
    role: Literal["user"] = "user"
    content: Sequence[UserMessageContent]
    id: str | Unset | None = UNSET
    object: Literal["realtime.item"] | str | Unset | None = UNSET
    status: ItemStatus | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeConversationItemAssistantMessage(WireObject):
    """An assistant message produced by a response (or text history from a client)."""

    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    content: Sequence[AssistantMessageContent]
    id: str | Unset | None = UNSET
    object: Literal["realtime.item"] | str | Unset | None = UNSET
    status: ItemStatus | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeConversationItemFunctionCall(WireObject):
    """The model's call of a function tool, with JSON-encoded arguments."""

    type: Literal["function_call"] = "function_call"
    name: str
    arguments: str
    call_id: str | Unset | None = UNSET
    id: str | Unset | None = UNSET
    object: Literal["realtime.item"] | str | Unset | None = UNSET
    status: ItemStatus | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeConversationItemFunctionCallOutput(WireObject):
    """The client's answer to a function call, as free text."""

    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: str
    id: str | Unset | None = UNSET
    object: Literal["realtime.item"] | str | Unset | None = UNSET
    status: ItemStatus | str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class McpListedTool(WireObject):
    """A tool an MCP server offers, as listed in an ``mcp_list_tools`` item."""

    name: str
    input_schema: Any
    description: str | Unset | None = UNSET
    annotations: Any | Unset = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeMcpListTools(WireObject):
    """The tools the server imported from one hosted MCP server."""

    type: Literal["mcp_list_tools"] = "mcp_list_tools"
    server_label: str
    tools: Sequence[McpListedTool]
    id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeMcpProtocolError(WireObject):
    """An MCP call failed at the MCP protocol level (a JSON-RPC error)."""

    type: Literal["protocol_error"] = "protocol_error"
    code: int
    message: str


@attrs.frozen(kw_only=True, repr=False)
class RealtimeMcpToolExecutionError(WireObject):
    """An MCP tool ran and reported a failure."""

    type: Literal["tool_execution_error"] = "tool_execution_error"
    message: str


@attrs.frozen(kw_only=True, repr=False)
class RealtimeMcphttpError(WireObject):
    """An MCP server could not be reached or answered with an HTTP error."""

    type: Literal["http_error"] = "http_error"
    code: int
    message: str


McpCallError: TypeAlias = (
    RealtimeMcpProtocolError | RealtimeMcpToolExecutionError | RealtimeMcphttpError
)
"""Why a hosted MCP call failed, tagged on ``type``."""


@attrs.frozen(kw_only=True, repr=False)
class RealtimeMcpToolCall(WireObject):
    """A call of a hosted MCP tool, made by the server, with its output or error."""

    type: Literal["mcp_call"] = "mcp_call"
    id: str
    server_label: str
    name: str
    arguments: str
    approval_request_id: str | Unset | None = UNSET
    output: str | Unset | None = UNSET
    error: McpCallError | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class RealtimeMcpApprovalRequest(WireObject):
    """The server asks the client to approve a hosted MCP tool call."""

    type: Literal["mcp_approval_request"] = "mcp_approval_request"
    id: str
    server_label: str
    name: str
    arguments: str


@attrs.frozen(kw_only=True, repr=False)
class RealtimeMcpApprovalResponse(WireObject):
    """The client's decision on an ``mcp_approval_request``."""

    type: Literal["mcp_approval_response"] = "mcp_approval_response"
    id: str
    approval_request_id: str
    approve: bool
    reason: str | Unset | None = UNSET


ConversationItem: TypeAlias = (
    RealtimeConversationItemSystemMessage
    | RealtimeConversationItemUserMessage
    | RealtimeConversationItemAssistantMessage
    | RealtimeConversationItemFunctionCall
    | RealtimeConversationItemFunctionCallOutput
    | RealtimeMcpApprovalResponse
    | RealtimeMcpListTools
    | RealtimeMcpToolCall
    | RealtimeMcpApprovalRequest
    | UnknownItem
)
"""Any conversation item, tagged on ``type`` and, for messages, on ``role``."""


@attrs.frozen(kw_only=True, repr=False)
class ResponseItemReference(WireObject):
    """A reference to an existing item, allowed only in ``response.create`` input."""

    type: Literal["item_reference"] = "item_reference"
    id: str


ResponseInputItem: TypeAlias = ConversationItem | ResponseItemReference
"""An entry of ``response.create`` input: a new item or a reference to one."""


# --- transcription details ---------------------------------------------------------


@attrs.frozen(kw_only=True, repr=False)
class LogProbProperties(WireObject):
    """The log probability of one transcribed token."""

    token: str
    logprob: float
    bytes: Sequence[int]


@attrs.frozen(kw_only=True, repr=False)
class TranscriptionLanguage(WireObject):
    """A language detected in transcribed audio."""

    code: str
