"""Items a client creates (``conversation.item.create``, a response's ``input``).

A client may create messages (system, user, assistant text), function calls,
function call outputs and MCP approval responses; the server completes their
``id``, ``object``, ``status`` (and a function call's ``call_id``). Audio a
user message carries is decoded here and kept as raw bytes beside the item.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from framework.protocol import (
    UNSET,
    ConversationItem,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    RealtimeMcpApprovalRequest,
    RealtimeMcpApprovalResponse,
    UnknownItem,
    UserMessageContent,
)

from ._audio import WireFormat
from ._config import RequestError, invalid_value, unknown_parameter
from ._stored_item import StoredItem

if TYPE_CHECKING:
    from ._conversation import Conversation

_CLIENT_ITEMS = (
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
)
_PARTS = {
    RealtimeConversationItemSystemMessage: ["input_text"],
    RealtimeConversationItemUserMessage: ["input_text", "input_audio", "input_image"],
    RealtimeConversationItemAssistantMessage: ["output_text"],
}


def accept_client_item(
    item: ConversationItem,
    param: str,
    *,
    conversation: Conversation,
    new_id: Callable[[str], str],
    input_format: WireFormat,
) -> StoredItem:
    """Checks an item a client creates and completes its server fields.

    Args:
        item: the item as parsed.
        param: where it sits in the client's event (``item``, ``response.input[2]``).
        conversation: for ids already taken and the approval requests answered.
        new_id: names what the client left unnamed.
        input_format: the format of the audio a user message carries.

    Raises:
        RequestError: with the path of what is wrong.
    """
    if isinstance(item, UnknownItem):
        raise invalid_value(
            f"{param}.type",
            item.type,
            ["message", "function_call", "function_call_output", "mcp_approval_response"],
        )
    found = unknown_parameter(item, param)
    if found:
        raise RequestError(f"Unknown parameter: '{found}'.", code="unknown_parameter", param=found)
    if isinstance(item, RealtimeMcpApprovalResponse):
        return _accept_approval(item, param, conversation)
    if not isinstance(item, _CLIENT_ITEMS):
        raise RequestError(
            f"Items of type '{item.type}' are created by the server, not by clients.",
            code="invalid_value",
            param=f"{param}.type",
        )
    item_id = item.id if isinstance(item.id, str) and item.id else new_id("item")
    _check_new_id(item_id, f"{param}.id", conversation)
    completed: ConversationItem = attrs.evolve(
        item, id=item_id, object="realtime.item", status="completed"
    )
    if isinstance(completed, RealtimeConversationItemFunctionCall) and not isinstance(
        completed.call_id, str
    ):
        completed = attrs.evolve(completed, call_id=new_id("call"))
    stored = StoredItem(item=completed)
    if isinstance(completed, tuple(_PARTS)):
        _accept_parts(stored, param, input_format)
    return stored


def _accept_parts(stored: StoredItem, param: str, input_format: WireFormat) -> None:
    """Checks a message's content parts; moves user audio into raw bytes."""
    item = stored.item
    assert isinstance(
        item,
        (
            RealtimeConversationItemSystemMessage,
            RealtimeConversationItemUserMessage,
            RealtimeConversationItemAssistantMessage,
        ),
    )
    allowed = _PARTS[type(item)]
    content = list(item.content)
    for index, part in enumerate(content):
        kind = getattr(part, "type", None)
        if kind not in allowed:
            if kind == "output_audio":
                raise RequestError(
                    "Assistant audio messages cannot be created by the client; add the "
                    "text as 'output_text' instead.",
                    code="invalid_value",
                    param=f"{param}.content[{index}].type",
                )
            raise invalid_value(f"{param}.content[{index}].type", kind, allowed)
        if kind == "input_audio":
            audio = getattr(part, "audio", None)
            try:
                data = base64.b64decode(audio if isinstance(audio, str) else "", validate=True)
            except (binascii.Error, ValueError):
                raise RequestError(
                    "Invalid 'audio': the value is not valid base64.",
                    code="invalid_value",
                    param=f"{param}.content[{index}].audio",
                ) from None
            stored.audio[index] = bytearray(data)
            stored.audio_format = input_format
            assert isinstance(part, UserMessageContent)  # only user messages carry audio
            content[index] = attrs.evolve(part, audio=UNSET)
    if stored.audio:
        stored.item = attrs.evolve(item, content=content)  # type: ignore[arg-type]


def _check_new_id(item_id: str, param: str, conversation: Conversation) -> None:
    if item_id in conversation:
        raise RequestError(
            f"Item with id '{item_id}' already exists.",
            code="item_id_already_exists",
            param=param,
        )


def _accept_approval(
    item: RealtimeMcpApprovalResponse, param: str, conversation: Conversation
) -> StoredItem:
    """An ``mcp_approval_response``: it must answer a request, and only once."""
    if not item.id:
        raise RequestError(
            f"Missing required parameter: '{param}.id'.",
            code="missing_required_parameter",
            param=f"{param}.id",
        )
    _check_new_id(item.id, f"{param}.id", conversation)
    request_id = item.approval_request_id
    request = conversation.get(request_id)
    if request is None or not isinstance(request.item, RealtimeMcpApprovalRequest):
        raise RequestError(
            f"MCP approval request with id '{request_id}' not found.",
            code="item_not_found",
            param=f"{param}.approval_request_id",
        )
    answer = conversation.answer_to(request_id)
    if answer is not None:
        raise RequestError(
            f"MCP approval request '{request_id}' already has a response: '{answer}'.",
            code="invalid_value",
            param=f"{param}.approval_request_id",
        )
    return StoredItem(item=item)
