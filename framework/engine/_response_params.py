"""What a ``response.create`` asks for, checked and resolved against the session.

Every field a response may override (instructions, tools, tool choice, output
modalities, voice and format, token budget, metadata, the conversation it
writes to, its input) falls back to the session's configuration when absent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from framework.protocol import (
    UNSET,
    McpTool,
    RealtimeResponseCreateAudioOutput,
    RealtimeResponseCreateParams,
    ResponseAudioOutputParams,
    ResponseItemReference,
)

from ._audio import WireFormat, wire_format
from ._client_items import accept_client_item
from ._config import (
    RequestError,
    check_format,
    check_max_output_tokens,
    check_modalities,
    check_tool_choice,
    check_tools,
    check_voice,
    invalid_value,
    unknown_parameter,
)
from ._conversation import Conversation
from ._session_config import SessionConfig
from ._stored_item import StoredItem

_MAX_METADATA = 16
_MAX_METADATA_KEY = 64
_MAX_METADATA_VALUE = 512


@attrs.frozen(kw_only=True)
class ResponseParams:
    """A response's effective parameters."""

    in_conversation: bool
    """It writes to the default conversation (``conversation: "auto"``)."""
    instructions: str
    tools: list[Any]
    tool_choice: Any
    modalities: list[str]
    voice: Any
    out_format: Any
    max_output_tokens: Any
    metadata: Any
    input: list[StoredItem] | None
    """Its own input instead of the conversation (``input``), if any."""
    tools_given: bool
    """The response brought its own tools (their MCP servers are listed for it)."""

    @property
    def fmt(self) -> WireFormat:
        return wire_format(self.out_format)

    @property
    def audio_out(self) -> bool:
        return "audio" in self.modalities

    @property
    def budget(self) -> int | None:
        """The output token budget (None: unlimited)."""
        return self.max_output_tokens if isinstance(self.max_output_tokens, int) else None

    @property
    def voice_name(self) -> str:
        return self.voice if isinstance(self.voice, str) else self.voice.id

    @property
    def mcp(self) -> dict[str, McpTool]:
        """Its hosted MCP servers, by label."""
        return {t.server_label: t for t in self.tools if isinstance(t, McpTool)}


def resolve_params(
    params: RealtimeResponseCreateParams,
    *,
    config: SessionConfig,
    conversation: Conversation,
    new_id: Callable[[str], str],
    input_format: WireFormat,
) -> ResponseParams:
    """Checks a response's parameters and fills in the session's for those it leaves out.

    Raises:
        RequestError: an unknown or invalid parameter, with its path.
    """
    found = unknown_parameter(params, "response")
    if found:
        raise RequestError(f"Unknown parameter: '{found}'.", code="unknown_parameter", param=found)
    session = config.current
    out = config.output
    target = params.conversation if params.conversation not in (UNSET, None) else "auto"
    if target not in ("auto", "none"):
        raise invalid_value("response.conversation", target, ["auto", "none"])
    tools_given = isinstance(params.tools, (list, tuple))
    tools = (
        check_tools(params.tools, "response.tools")  # type: ignore[arg-type]
        if tools_given
        else list(config.tools)
    )
    tool_choice = (
        check_tool_choice(params.tool_choice, tools, "response.tool_choice")
        if params.tool_choice not in (UNSET, None)
        else session.tool_choice
    )
    modalities = (
        check_modalities(params.output_modalities, "response.output_modalities")
        if params.output_modalities not in (UNSET, None)
        else list(session.output_modalities)
        if isinstance(session.output_modalities, (list, tuple))
        else ["audio"]
    )
    max_tokens = (
        check_max_output_tokens(params.max_output_tokens, "response.max_output_tokens")
        if params.max_output_tokens not in (UNSET, None)
        else session.max_output_tokens
    )
    voice: object = out.voice
    out_format: object = out.format
    audio = params.audio
    if isinstance(audio, RealtimeResponseCreateAudioOutput) and isinstance(
        audio.output, ResponseAudioOutputParams
    ):
        if audio.output.voice not in (UNSET, None):
            voice = check_voice(audio.output.voice, "response.audio.output.voice")
        if audio.output.format not in (UNSET, None):
            out_format = check_format(audio.output.format, "response.audio.output.format")
    metadata = params.metadata if params.metadata is not UNSET else None
    _check_metadata(metadata)
    instructions = (
        params.instructions if isinstance(params.instructions, str) else session.instructions
    )
    given_input = (
        _input(params.input, conversation, new_id, input_format)
        if isinstance(params.input, (list, tuple))
        else None
    )
    return ResponseParams(
        in_conversation=target == "auto",
        instructions=instructions if isinstance(instructions, str) else "",
        tools=tools,
        tool_choice=tool_choice,
        modalities=modalities,
        voice=voice,
        out_format=out_format,
        max_output_tokens=max_tokens,
        metadata=metadata,
        input=given_input,
        tools_given=tools_given,
    )


def _check_metadata(metadata: object) -> None:
    if not isinstance(metadata, dict):
        return
    if len(metadata) > _MAX_METADATA:
        raise RequestError(
            f"Invalid 'response.metadata': at most {_MAX_METADATA} key-value pairs are allowed.",
            code="invalid_value",
            param="response.metadata",
        )
    for key, value in metadata.items():
        if len(key) > _MAX_METADATA_KEY or len(value) > _MAX_METADATA_VALUE:
            raise RequestError(
                f"Invalid 'response.metadata': keys are at most {_MAX_METADATA_KEY} characters "
                f"and values at most {_MAX_METADATA_VALUE}.",
                code="invalid_value",
                param=f"response.metadata.{key}",
            )


def _input(
    entries: Sequence[object],
    conversation: Conversation,
    new_id: Callable[[str], str],
    input_format: WireFormat,
) -> list[StoredItem]:
    """A response's ``input``: references to conversation items, and new items."""
    context: list[StoredItem] = []
    for index, entry in enumerate(entries):
        param = f"response.input[{index}]"
        if isinstance(entry, ResponseItemReference):
            context.append(conversation.require(entry.id, param=f"{param}.id"))
        else:
            context.append(
                accept_client_item(
                    entry,  # type: ignore[arg-type]
                    param,
                    conversation=conversation,
                    new_id=new_id,
                    input_format=input_format,
                )
            )
    return context
