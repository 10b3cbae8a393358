"""Session configuration on the server side: defaults, merging and validation.

``session.update`` carries a partial configuration. :func:`merge_session`
checks every value it sets (raising :class:`RequestError` with the hosted
API's error ``code`` and the ``param`` path) and returns the full effective
configuration that ``session.updated`` reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, get_args
from urllib.parse import urlsplit

import attrs
from jsonschema.exceptions import SchemaError
from jsonschema.validators import Draft202012Validator, validator_for

from framework.protocol import (
    UNSET,
    AudioPCM,
    AudioPCMA,
    AudioPCMU,
    AudioTranscription,
    McpConnectorId,
    McpTool,
    NoiseReduction,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeFunctionTool,
    RealtimeReasoning,
    RealtimeSessionCreateRequest,
    RealtimeTranscriptionSessionAudio,
    RealtimeTranscriptionSessionAudioInput,
    RealtimeTranscriptionSessionCreateRequest,
    RealtimeTranscriptionSessionCreateResponse,
    RealtimeTranscriptionSessionTurnDetection,
    RealtimeTruncationRetentionRatio,
    SemanticVad,
    ServerVad,
    ToolChoiceFunction,
    ToolChoiceMcp,
    TracingConfiguration,
    TranscriptionSessionResponseAudio,
    TranscriptionSessionResponseAudioInput,
    UnknownItem,
    UnknownVariant,
    VoiceID,
    WireObject,
)

DEFAULT_MODEL = "gpt-realtime"
DEFAULT_INSTRUCTIONS = (
    "You are a helpful assistant running on the Cantata local engine. "
    "Answer briefly and stay on topic."
)
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class RequestError(Exception):
    """A client event the server refuses; becomes an ``error`` event."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type


def invalid_value(param: str, value: object, allowed: Sequence[str] | None = None) -> RequestError:
    message = f"Invalid value: {value!r}."
    if allowed:
        shown = ", ".join(f"'{a}'" for a in allowed[:-1])
        shown = f"{shown}, and '{allowed[-1]}'" if len(allowed) > 1 else f"'{allowed[0]}'"
        message += f" Supported values are: {shown}."
    return RequestError(message, code="invalid_value", param=param)


def _range_error(param: str, value: object, low: float, high: float | None) -> RequestError:
    bound = f"between {low} and {high}" if high is not None else f"at least {low}"
    return RequestError(
        f"Invalid '{param}': expected a value {bound}, but got {value!r} instead.",
        code="invalid_value" if high is not None else "integer_below_min_value",
        param=param,
    )


def default_server_vad() -> ServerVad:
    return ServerVad(
        threshold=0.5,
        prefix_padding_ms=300,
        silence_duration_ms=500,
        idle_timeout_ms=None,
        create_response=True,
        interrupt_response=True,
    )


def default_session(
    model: str, *, session_id: str, expires_at: int | None
) -> RealtimeSessionCreateRequest:
    """The effective configuration a new realtime session starts with.

    ``expires_at`` (epoch seconds) is left out when the session never expires.
    """
    return RealtimeSessionCreateRequest(
        model=model,
        output_modalities=["audio"],
        instructions=DEFAULT_INSTRUCTIONS,
        audio=RealtimeAudioConfig(
            input=RealtimeAudioConfigInput(
                format=AudioPCM(type="audio/pcm", rate=24000),
                transcription=None,
                noise_reduction=None,
                turn_detection=default_server_vad(),
            ),
            output=RealtimeAudioConfigOutput(
                format=AudioPCM(type="audio/pcm", rate=24000), voice="alloy", speed=1.0
            ),
        ),
        tools=[],
        tool_choice="auto",
        max_output_tokens="inf",
        tracing=None,
        truncation="auto",
        prompt=None,
        include=None,
        extra=_server_fields(session_id, "realtime.session", expires_at),
    )


def _server_fields(session_id: str, kind: str, expires_at: int | None) -> dict[str, Any]:
    """The fields a server adds to the session object it reports."""
    fields: dict[str, Any] = {"id": session_id, "object": kind}
    if expires_at is not None:
        fields["expires_at"] = expires_at
    return fields


def unknown_parameter(obj: object, path: str) -> str | None:
    """The path of the first field a client sent that the protocol does not have."""
    if isinstance(obj, WireObject):
        for key in obj.extra:
            return f"{path}.{key}" if path else key
        for field in attrs.fields(type(obj)):
            if field.name == "extra":
                continue
            found = unknown_parameter(getattr(obj, field.name), f"{path}.{field.name}")
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            found = unknown_parameter(value, f"{path}[{index}]")
            if found:
                return found
    return None


def unknown_variant(obj: object, path: str) -> tuple[str, str] | None:
    """The path and tag of the first union member of a type the server does not know."""
    if isinstance(obj, (UnknownVariant, UnknownItem)):
        return f"{path}.type", obj.type
    if isinstance(obj, WireObject):
        for field in attrs.fields(type(obj)):
            if field.name != "extra":
                found = unknown_variant(getattr(obj, field.name), f"{path}.{field.name}")
                if found:
                    return found
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            found = unknown_variant(value, f"{path}[{index}]")
            if found:
                return found
    return None


def _set(value: object) -> bool:
    return value is not UNSET


# --- validation of the parts ----------------------------------------------------------


def check_format(fmt: object, param: str) -> object:
    """Validates an audio format and fills in its defaults."""
    if isinstance(fmt, AudioPCM):
        if fmt.rate not in (UNSET, None, 24000):
            raise invalid_value(f"{param}.rate", fmt.rate, ["24000"])
        return AudioPCM(type="audio/pcm", rate=24000)
    if isinstance(fmt, (AudioPCMU, AudioPCMA)):
        return fmt
    if isinstance(fmt, UnknownVariant):
        raise invalid_value(f"{param}.type", fmt.type, ["audio/pcm", "audio/pcmu", "audio/pcma"])
    raise invalid_value(param, None, ["audio/pcm", "audio/pcmu", "audio/pcma"])


def check_turn_detection(td: object, param: str) -> object:
    """Validates turn detection and fills in the defaults of its kind."""
    if td is None:
        return None
    if isinstance(td, ServerVad):
        base = default_server_vad()
        merged = attrs.evolve(
            base, **{f: getattr(td, f) for f in _fields(td) if getattr(td, f) is not UNSET}
        )
        threshold = merged.threshold
        if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise _range_error(f"{param}.threshold", threshold, 0.0, 1.0)
        for name in ("prefix_padding_ms", "silence_duration_ms"):
            value = getattr(merged, name)
            if not isinstance(value, int) or value < 0:
                raise _range_error(f"{param}.{name}", value, 0, None)
        idle = merged.idle_timeout_ms
        if idle is not None and (not isinstance(idle, int) or not 5000 <= idle <= 30000):
            raise _range_error(f"{param}.idle_timeout_ms", idle, 5000, 30000)
        if merged.create_response is None:
            merged = attrs.evolve(merged, create_response=True)
        if merged.interrupt_response is None:
            merged = attrs.evolve(merged, interrupt_response=True)
        return merged
    if isinstance(td, SemanticVad):
        eagerness = td.eagerness if td.eagerness not in (UNSET, None) else "auto"
        if eagerness not in ("low", "medium", "high", "auto"):
            raise invalid_value(f"{param}.eagerness", eagerness, ["low", "medium", "high", "auto"])
        return SemanticVad(
            eagerness=eagerness,
            create_response=td.create_response if isinstance(td.create_response, bool) else True,
            interrupt_response=(
                td.interrupt_response if isinstance(td.interrupt_response, bool) else True
            ),
        )
    if isinstance(td, UnknownVariant):
        raise invalid_value(f"{param}.type", td.type, ["server_vad", "semantic_vad"])
    raise invalid_value(param, td)


def check_noise_reduction(nr: object, current: object, param: str) -> object:
    if nr is None:
        return None
    assert isinstance(nr, NoiseReduction)
    kind = (
        nr.type
        if _set(nr.type)
        else (current.type if isinstance(current, NoiseReduction) else UNSET)
    )
    if kind not in ("near_field", "far_field"):
        raise invalid_value(
            f"{param}.type", kind if _set(kind) else None, ["near_field", "far_field"]
        )
    strength = nr.strength
    if not _set(strength) or strength is None:
        # Omitting strength keeps the current one; it is 1 when first enabled.
        strength = (
            current.strength
            if isinstance(current, NoiseReduction) and _set(current.strength)
            else 1.0
        )
    if not isinstance(strength, (int, float)) or strength < 0:
        raise _range_error(f"{param}.strength", strength, 0, None)
    return NoiseReduction(type=kind, strength=strength)


def check_transcription(tr: object, param: str) -> object:
    if tr is None:
        return None
    assert isinstance(tr, AudioTranscription)
    model = tr.model if isinstance(tr.model, str) else "gpt-4o-mini-transcribe"
    return attrs.evolve(tr, model=model)


def check_voice(voice: object, param: str) -> object:
    if isinstance(voice, VoiceID):
        return voice
    if voice not in VOICES:
        raise invalid_value(param, voice, list(VOICES))
    return voice


def check_tools(tools: Sequence[object], param: str) -> list[Any]:
    seen: set[str] = set()
    labels: set[str] = set()
    out: list[Any] = []
    for index, tool in enumerate(tools):
        where = f"{param}[{index}]"
        if isinstance(tool, RealtimeFunctionTool):
            name = tool.name
            if not isinstance(name, str):
                raise RequestError(
                    f"Missing required parameter: '{where}.name'.",
                    code="missing_required_parameter",
                    param=f"{where}.name",
                )
            if not _TOOL_NAME.match(name):
                raise RequestError(
                    f"Invalid '{where}.name': string does not match pattern. Expected a string "
                    "that matches the pattern '^[a-zA-Z0-9_-]+$' (at most 64 characters).",
                    code="invalid_value",
                    param=f"{where}.name",
                )
            if name in seen:
                raise RequestError(
                    f"Duplicate tool name: '{name}'.", code="invalid_value", param=f"{where}.name"
                )
            seen.add(name)
            if _set(tool.parameters) and tool.parameters is not None:
                if not isinstance(tool.parameters, dict):
                    raise RequestError(
                        f"Invalid type for '{where}.parameters': expected an object.",
                        code="invalid_type",
                        param=f"{where}.parameters",
                    )
                check_parameters(name, tool.parameters, f"{where}.parameters")
            out.append(attrs.evolve(tool, type="function"))
        elif isinstance(tool, McpTool):
            out.append(_check_mcp_tool(tool, where, labels))
        elif isinstance(tool, UnknownVariant):
            raise invalid_value(f"{where}.type", tool.type, ["function", "mcp"])
        else:  # pragma: no cover - the parser only produces the types above
            raise invalid_value(where, tool)
    return out


def check_parameters(name: str, schema: dict[str, Any], param: str) -> None:
    """Checks a function's ``parameters`` against the JSON Schema meta-schema.

    The hosted API refuses a schema its model could not follow; so does the
    engine, naming the tool and the place in its schema (draft 2020-12 unless
    the schema's ``$schema`` names another).

    Raises:
        RequestError: ``invalid_function_parameters``, ``param`` pointing into the schema.
    """
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as e:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path)
        reason = e.message if len(e.message) <= 200 else e.message[:197] + "..."
        raise RequestError(
            f"Invalid schema for function '{name}': {reason} (at '{where[1:] or '/'}').",
            code="invalid_function_parameters",
            param=param + where,
        ) from None
    except RecursionError:
        raise RequestError(
            f"Invalid schema for function '{name}': it is nested too deeply to check.",
            code="invalid_function_parameters",
            param=param,
        ) from None


_SOURCES = ("server_url", "connector_id", "tunnel_id")
_CONNECTORS = list(get_args(McpConnectorId))


def _check_mcp_tool(tool: McpTool, where: str, labels: set[str]) -> McpTool:
    """Validates a hosted MCP tool as the hosted API does (one source, known values)."""
    label = tool.server_label
    if not _TOOL_NAME.match(label):
        raise RequestError(
            f"Invalid '{where}.server_label': string does not match pattern. Expected a string "
            "that matches the pattern '^[a-zA-Z0-9_-]+$' (at most 64 characters).",
            code="invalid_value",
            param=f"{where}.server_label",
        )
    if label in labels:
        raise RequestError(
            f"Duplicate MCP server_label: '{label}'.",
            code="invalid_value",
            param=f"{where}.server_label",
        )
    labels.add(label)
    given = [name for name in _SOURCES if getattr(tool, name) not in (UNSET, None)]
    if not given:
        raise RequestError(
            f"Missing required parameter: one of '{where}.server_url', '{where}.connector_id' "
            f"or '{where}.tunnel_id' must be provided.",
            code="missing_required_parameter",
            param=f"{where}.server_url",
        )
    if len(given) > 1:
        raise RequestError(
            f"Invalid '{where}': only one of 'server_url', 'connector_id' or 'tunnel_id' may be "
            f"provided, got {' and '.join(repr(g) for g in given)}.",
            code="invalid_value",
            param=f"{where}.{given[1]}",
        )
    url = tool.server_url
    if isinstance(url, str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RequestError(
                f"Invalid '{where}.server_url': expected an http:// or https:// URL, got {url!r}.",
                code="invalid_value",
                param=f"{where}.server_url",
            )
    if tool.connector_id not in (UNSET, None) and tool.connector_id not in _CONNECTORS:
        raise invalid_value(f"{where}.connector_id", tool.connector_id, _CONNECTORS)
    policy = tool.require_approval
    if isinstance(policy, str) and policy not in ("always", "never"):
        raise invalid_value(f"{where}.require_approval", policy, ["always", "never"])
    callers = tool.allowed_callers
    if isinstance(callers, (list, tuple)):
        for index, caller in enumerate(callers):
            if caller not in ("direct", "programmatic"):
                raise invalid_value(
                    f"{where}.allowed_callers[{index}]", caller, ["direct", "programmatic"]
                )
    return tool


def check_tool_choice(choice: object, tools: Sequence[Any], param: str) -> object:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, ToolChoiceFunction):
        names = [t.name for t in tools if isinstance(t, RealtimeFunctionTool)]
        if choice.name not in names:
            raise RequestError(
                f"Tool choice '{choice.name}' not found in 'tools' parameter.",
                code="invalid_value",
                param=f"{param}.name",
            )
        return choice
    if isinstance(choice, ToolChoiceMcp):
        labels = [t.server_label for t in tools if isinstance(t, McpTool)]
        if choice.server_label not in labels:
            raise RequestError(
                f"Tool choice 'mcp' with server_label '{choice.server_label}' not found in "
                "'tools' parameter.",
                code="invalid_value",
                param=f"{param}.server_label",
            )
        return choice
    if isinstance(choice, UnknownVariant):
        raise invalid_value(f"{param}.type", choice.type, ["function", "mcp"])
    raise invalid_value(param, choice, ["none", "auto", "required"])


def check_modalities(modalities: object, param: str) -> list[str]:
    if not isinstance(modalities, list) or not modalities:
        raise invalid_value(param, modalities, ["text", "audio"])
    for index, value in enumerate(modalities):
        if value not in ("text", "audio"):
            raise invalid_value(f"{param}[{index}]", value, ["text", "audio"])
    if len(set(modalities)) > 1:
        raise RequestError(
            "Invalid modalities: ['text', 'audio'] cannot be requested together; "
            "use ['audio'] (audio with a transcript) or ['text'].",
            code="invalid_value",
            param=param,
        )
    return list(dict.fromkeys(modalities))


def check_max_output_tokens(value: object, param: str) -> object:
    if value == "inf":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise _range_error(param, value, 1, 4096)
    raise invalid_value(param, value, ["inf"])


def check_truncation(value: object, param: str) -> object:
    if value in ("auto", "disabled"):
        return value
    if isinstance(value, RealtimeTruncationRetentionRatio):
        if not 0.0 <= value.retention_ratio <= 1.0:
            raise _range_error(f"{param}.retention_ratio", value.retention_ratio, 0.0, 1.0)
        return value
    if isinstance(value, UnknownVariant):
        raise invalid_value(f"{param}.type", value.type, ["retention_ratio"])
    raise invalid_value(param, value, ["auto", "disabled"])


def check_reasoning(value: object, param: str) -> object:
    if value is None:
        return None
    assert isinstance(value, RealtimeReasoning)
    allowed = ["minimal", "low", "medium", "high", "xhigh"]
    if value.effort not in (UNSET, None, *allowed):
        raise invalid_value(f"{param}.effort", value.effort, allowed)
    return value


def _fields(obj: WireObject) -> list[str]:
    return [f.name for f in attrs.fields(type(obj)) if f.name not in ("extra", "type")]


# --- merging -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MergeContext:
    """What the session state contributes to validating an update."""

    audio_produced: bool = False
    """The model has spoken: the voice can no longer change."""
    response_active: bool = False
    """A response is running: the speed can only change between turns."""
    model_chosen: bool = True
    """The client chose the model (in the URL, a client secret or an earlier
    update); when not, the update's model is adopted."""


def merge_session(
    current: RealtimeSessionCreateRequest,
    update: RealtimeSessionCreateRequest,
    context: MergeContext,
) -> RealtimeSessionCreateRequest:
    """The effective configuration after applying a partial update.

    Raises:
        RequestError: an unknown parameter or an invalid value, with its path.
    """
    root = "session"
    found = unknown_parameter(update, root)
    if found:
        raise RequestError(f"Unknown parameter: '{found}'.", code="unknown_parameter", param=found)
    changes: dict[str, Any] = {}
    if _set(update.model) and update.model is not None and update.model != current.model:
        # Both Agents SDKs name their model only in session.update, never in a
        # URL they were given: a session whose URL named none takes it from there.
        if not context.model_chosen:
            changes["model"] = update.model
        else:
            raise RequestError(
                "Cannot update a session's model; open a new session with the model you want.",
                code="invalid_value",
                param=f"{root}.model",
            )
    if _set(update.instructions):
        changes["instructions"] = update.instructions or ""
    if _set(update.output_modalities):
        changes["output_modalities"] = check_modalities(
            update.output_modalities, f"{root}.output_modalities"
        )
    if _set(update.max_output_tokens):
        changes["max_output_tokens"] = check_max_output_tokens(
            update.max_output_tokens, f"{root}.max_output_tokens"
        )
    tools = current.tools if isinstance(current.tools, list) else []
    if update.tools is not UNSET:
        tools = check_tools(update.tools or [], f"{root}.tools")
        changes["tools"] = tools
    if _set(update.tool_choice):
        changes["tool_choice"] = check_tool_choice(update.tool_choice, tools, f"{root}.tool_choice")
    elif "tools" in changes and isinstance(
        current.tool_choice, (ToolChoiceFunction, ToolChoiceMcp)
    ):
        check_tool_choice(current.tool_choice, tools, f"{root}.tool_choice")
    if _set(update.parallel_tool_calls):
        changes["parallel_tool_calls"] = update.parallel_tool_calls
    if _set(update.tracing):
        if current.tracing not in (None, UNSET) and update.tracing != current.tracing:
            raise RequestError(
                "Tracing cannot be modified once it is enabled for a session.",
                code="invalid_value",
                param=f"{root}.tracing",
            )
        if not (
            update.tracing in ("auto", None) or isinstance(update.tracing, TracingConfiguration)
        ):
            raise invalid_value(f"{root}.tracing", update.tracing, ["auto"])
        changes["tracing"] = update.tracing
    if _set(update.truncation):
        changes["truncation"] = check_truncation(update.truncation, f"{root}.truncation")
    if _set(update.prompt):
        changes["prompt"] = update.prompt
    if _set(update.reasoning):
        changes["reasoning"] = check_reasoning(update.reasoning, f"{root}.reasoning")
    if update.include is not UNSET:
        include = update.include or []
        for index, value in enumerate(include):
            if value != "item.input_audio_transcription.logprobs":
                raise invalid_value(
                    f"{root}.include[{index}]", value, ["item.input_audio_transcription.logprobs"]
                )
        changes["include"] = update.include
    if isinstance(update.audio, RealtimeAudioConfig):
        changes["audio"] = _merge_audio(current.audio, update.audio, context, f"{root}.audio")
    return attrs.evolve(current, **changes)


def _merge_audio(
    current: object, update: RealtimeAudioConfig, context: MergeContext, param: str
) -> RealtimeAudioConfig:
    assert isinstance(current, RealtimeAudioConfig)
    cur_in = (
        current.input
        if isinstance(current.input, RealtimeAudioConfigInput)
        else RealtimeAudioConfigInput()
    )
    cur_out = (
        current.output
        if isinstance(current.output, RealtimeAudioConfigOutput)
        else RealtimeAudioConfigOutput()
    )
    new_in, new_out = cur_in, cur_out
    if isinstance(update.input, RealtimeAudioConfigInput):
        up = update.input
        changes: dict[str, Any] = {}
        if _set(up.format):
            changes["format"] = check_format(up.format, f"{param}.input.format")
        if _set(up.turn_detection):
            changes["turn_detection"] = check_turn_detection(
                up.turn_detection, f"{param}.input.turn_detection"
            )
        if _set(up.noise_reduction):
            changes["noise_reduction"] = check_noise_reduction(
                up.noise_reduction, cur_in.noise_reduction, f"{param}.input.noise_reduction"
            )
        if _set(up.transcription):
            changes["transcription"] = check_transcription(
                up.transcription, f"{param}.input.transcription"
            )
        new_in = attrs.evolve(cur_in, **changes)
    if isinstance(update.output, RealtimeAudioConfigOutput):
        up_out = update.output
        changes = {}
        if _set(up_out.format):
            changes["format"] = check_format(up_out.format, f"{param}.output.format")
        if _set(up_out.voice):
            voice = check_voice(up_out.voice, f"{param}.output.voice")
            if voice != cur_out.voice and context.audio_produced:
                raise RequestError(
                    "Cannot update a conversation's voice if assistant audio is present.",
                    code="cannot_update_voice",
                    param=f"{param}.output.voice",
                )
            changes["voice"] = voice
        if _set(up_out.speed):
            speed = up_out.speed
            if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 1.5:
                raise _range_error(f"{param}.output.speed", speed, 0.25, 1.5)
            if context.response_active and speed != cur_out.speed:
                raise RequestError(
                    "The speed can only be changed between turns, not while a response is in "
                    "progress.",
                    code="invalid_value",
                    param=f"{param}.output.speed",
                )
            changes["speed"] = speed
        new_out = attrs.evolve(cur_out, **changes)
    return RealtimeAudioConfig(input=new_in, output=new_out)


# --- transcription sessions ----------------------------------------------------------

DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"


def default_transcription_session(
    model: str, *, session_id: str, expires_at: int | None
) -> RealtimeSessionCreateRequest:
    """A transcription session's starting configuration, held in the realtime shape.

    The engine keeps one internal shape for both kinds of session; only the
    audio input and ``include`` matter to a transcription session, and
    :func:`transcription_view` shows them as its session object.
    """
    base = default_session(model, session_id=session_id, expires_at=expires_at)
    audio = base.audio
    assert isinstance(audio, RealtimeAudioConfig)
    assert isinstance(audio.input, RealtimeAudioConfigInput)
    audio_in = attrs.evolve(
        audio.input,
        transcription=AudioTranscription(
            model=DEFAULT_TRANSCRIPTION_MODEL, language=None, prompt=None
        ),
        turn_detection=attrs.evolve(
            default_server_vad(), create_response=False, interrupt_response=False
        ),
    )
    return attrs.evolve(
        base,
        audio=attrs.evolve(audio, input=audio_in),
        extra=_server_fields(session_id, "realtime.transcription_session", expires_at),
    )


def transcription_update(update: RealtimeTranscriptionSessionCreateRequest) -> Any:
    """A transcription session update as the realtime update :func:`merge_session` takes.

    Raises:
        RequestError: an unknown parameter, with its path.
    """
    found = unknown_parameter(update, "session")
    if found:
        raise RequestError(f"Unknown parameter: '{found}'.", code="unknown_parameter", param=found)
    audio: Any = UNSET
    if isinstance(update.audio, RealtimeTranscriptionSessionAudio):
        up = update.audio.input
        if isinstance(up, RealtimeTranscriptionSessionAudioInput):
            td = up.turn_detection
            if isinstance(td, (ServerVad, SemanticVad)):
                # Nothing to answer or interrupt in a transcription session.
                td = attrs.evolve(td, create_response=False, interrupt_response=False)
            audio = RealtimeAudioConfig(
                input=RealtimeAudioConfigInput(
                    format=up.format,
                    noise_reduction=up.noise_reduction,
                    transcription=up.transcription,
                    turn_detection=td,
                )
            )
    return RealtimeSessionCreateRequest(audio=audio, include=update.include)


def transcription_view(config: RealtimeSessionCreateRequest) -> Any:
    """A transcription session's object, as ``session.created``/``updated`` show it."""
    audio = config.audio
    assert isinstance(audio, RealtimeAudioConfig)
    audio_in = audio.input
    assert isinstance(audio_in, RealtimeAudioConfigInput)
    td = audio_in.turn_detection
    if isinstance(td, (ServerVad, SemanticVad)):
        td = attrs.evolve(td, create_response=UNSET, interrupt_response=UNSET)
    return RealtimeTranscriptionSessionCreateRequest(
        audio=RealtimeTranscriptionSessionAudio(
            input=RealtimeTranscriptionSessionAudioInput(
                format=audio_in.format,
                noise_reduction=audio_in.noise_reduction,
                transcription=audio_in.transcription,
                turn_detection=td,
            )
        ),
        include=config.include,
        extra=dict(config.extra),
    )


def transcription_response_view(config: RealtimeSessionCreateRequest) -> Any:
    """A transcription session as a client secret's answer describes it (the server object)."""
    audio = config.audio
    assert isinstance(audio, RealtimeAudioConfig)
    audio_in = audio.input
    assert isinstance(audio_in, RealtimeAudioConfigInput)
    td = audio_in.turn_detection
    shown_td: Any = None
    if isinstance(td, ServerVad):
        shown_td = RealtimeTranscriptionSessionTurnDetection(
            type="server_vad",
            threshold=td.threshold,
            prefix_padding_ms=td.prefix_padding_ms,
            silence_duration_ms=td.silence_duration_ms,
        )
    elif isinstance(td, SemanticVad):
        shown_td = RealtimeTranscriptionSessionTurnDetection(type="semantic_vad")
    extra = dict(config.extra)
    return RealtimeTranscriptionSessionCreateResponse(
        id=str(extra.get("id", "")),
        object="realtime.transcription_session",
        expires_at=extra.get("expires_at", UNSET),
        audio=TranscriptionSessionResponseAudio(
            input=TranscriptionSessionResponseAudioInput(
                format=audio_in.format,
                noise_reduction=audio_in.noise_reduction,
                transcription=audio_in.transcription,
                turn_detection=shown_td,
            )
        ),
        include=config.include,
    )
