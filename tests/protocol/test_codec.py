"""The converter's promises: forgiving on input, strict on what users build."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import framework.protocol as p
from framework.protocol import (
    UNSET,
    ProtocolError,
    ValidationError,
    parse_client_event,
    parse_server_event,
    to_dict,
    to_json,
)

SEED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "seed-realtime-api.md"


def test_every_seed_name_is_importable() -> None:
    assert SEED.exists(), f"{SEED} is missing: the repository expects ../shared beside it"
    names = re.findall(r"^    (\w+),$", SEED.read_text(), re.M)
    assert len(names) == 100
    missing = [n for n in names if not hasattr(p, n)]
    assert not missing


@pytest.mark.parametrize(
    "name",
    [
        "RealtimeSession",
        "ConversationItemWithReference",
        "TranscriptionSessionUpdate",
        "TranscriptionSessionUpdatedEvent",
    ],
)
def test_legacy_names_say_so(name: str) -> None:
    doc = getattr(p, name).__doc__ or ""
    assert doc.startswith("Legacy")


def test_ga_wire_types_behind_beta_class_names() -> None:
    pairs = {
        p.ResponseTextDeltaEvent: "response.output_text.delta",
        p.ResponseTextDoneEvent: "response.output_text.done",
        p.ResponseAudioDeltaEvent: "response.output_audio.delta",
        p.ResponseAudioDoneEvent: "response.output_audio.done",
        p.ResponseAudioTranscriptDeltaEvent: "response.output_audio_transcript.delta",
        p.ResponseAudioTranscriptDoneEvent: "response.output_audio_transcript.done",
        p.ResponseMcpCallArgumentsDelta: "response.mcp_call_arguments.delta",
        p.RealtimeErrorEvent: "error",
    }
    for cls, wire in pairs.items():
        assert p.SERVER_EVENT_TYPES[wire] is cls


# --- forward compatibility ---------------------------------------------------------


def test_unknown_server_event_is_kept_whole() -> None:
    raw = {"type": "response.future_thing.delta", "event_id": "e1", "payload": [1, {"a": None}]}
    event = parse_server_event(json.dumps(raw))
    assert isinstance(event, p.UnknownServerEvent)
    assert event.type == "response.future_thing.delta"
    assert event.raw == raw
    assert to_dict(event) == raw


def test_unknown_client_event_is_kept_whole() -> None:
    raw = {"type": "session.close", "event_id": "c1"}
    event = parse_client_event(raw)
    assert isinstance(event, p.UnknownClientEvent)
    assert to_json(event) == json.dumps(raw, separators=(",", ":"))


def test_beta_event_names_are_unknown_not_misparsed() -> None:
    # The SDK's own parse_event turns these into ConversationCreatedEvent.
    event = parse_server_event({"type": "response.audio.delta", "event_id": "e", "delta": "AA"})
    assert isinstance(event, p.UnknownServerEvent)


def test_unknown_fields_survive_at_every_depth() -> None:
    raw = {
        "type": "response.done",
        "event_id": "e1",
        "brand_new": {"x": 1},
        "response": {
            "id": "resp_1",
            "status": "completed",
            "latency_ms": 12,
            "output": [
                {"type": "message", "role": "assistant", "content": [], "tone": "warm"},
            ],
            "usage": {"total_tokens": 3, "input_token_details": {"video_tokens": 9}},
        },
    }
    event = parse_server_event(json.dumps(raw))
    assert isinstance(event, p.ResponseDoneEvent)
    assert event.extra == {"brand_new": {"x": 1}}
    assert event.response.extra == {"latency_ms": 12}
    assert to_dict(event) == raw


def test_unknown_enum_values_parse() -> None:
    raw = {
        "type": "session.updated",
        "event_id": "e",
        "session": {
            "type": "realtime",
            "output_modalities": ["hologram"],
            "audio": {
                "input": {
                    "noise_reduction": {"type": "underwater"},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "whenever"},
                },
                "output": {"voice": "a-voice-from-2027"},
            },
            "tool_choice": "sometimes",
            "truncation": "aggressive",
        },
    }
    event = parse_server_event(raw)
    assert isinstance(event, p.SessionUpdatedEvent)
    session = event.session
    assert isinstance(session, p.RealtimeSessionCreateRequest)
    assert session.output_modalities == ["hologram"]
    assert to_dict(event) == raw


def test_unknown_union_members_fall_back() -> None:
    raw = {
        "type": "session.created",
        "event_id": "e",
        "session": {
            "type": "realtime",
            "tools": [{"type": "code_interpreter", "container": "auto"}],
            "audio": {
                "input": {
                    "format": {"type": "audio/opus", "rate": 48000},
                    "turn_detection": {"type": "neural_vad"},
                }
            },
        },
    }
    event = parse_server_event(raw)
    session = event.session  # type: ignore[union-attr]
    assert isinstance(session.tools[0], p.UnknownVariant)
    assert session.tools[0].type == "code_interpreter"
    assert isinstance(session.audio.input.format, p.UnknownVariant)
    assert isinstance(session.audio.input.turn_detection, p.UnknownVariant)
    assert to_dict(event) == raw

    item = parse_server_event(
        {
            "type": "conversation.item.added",
            "event_id": "e",
            "item": {"type": "message", "role": "developer", "content": []},
        }
    )
    assert isinstance(item.item, p.UnknownItem)  # type: ignore[union-attr]


def test_real_server_shapes_the_sdk_rejects() -> None:
    # Assistant content typed "audio"/"text" with a "format", as real servers send.
    raw = {
        "type": "response.output_item.done",
        "event_id": "e",
        "response_id": "r",
        "output_index": 0,
        "item": {
            "id": "item_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "audio", "format": "pcm16", "transcript": "Hello"},
                {"type": "text", "text": "Hi"},
            ],
        },
    }
    event = parse_server_event(raw)
    assert isinstance(event, p.ResponseOutputItemDoneEvent)
    item = event.item
    assert isinstance(item, p.RealtimeConversationItemAssistantMessage)
    assert item.content[0].type == "audio"
    assert item.content[0].transcript == "Hello"
    assert item.content[0].extra == {"format": "pcm16"}
    assert to_dict(event) == raw


def test_function_call_done_without_name_from_older_servers() -> None:
    event = parse_server_event(
        {
            "type": "response.function_call_arguments.done",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "call_id": "c",
            "arguments": "{}",
        }
    )
    assert isinstance(event, p.ResponseFunctionCallArgumentsDoneEvent)
    assert event.name is UNSET


# --- not set vs null ------------------------------------------------------------------


def test_unset_is_omitted_and_null_is_kept() -> None:
    manual = p.SessionUpdateEvent(
        session=p.RealtimeSessionCreateRequest(
            audio=p.RealtimeAudioConfig(input=p.RealtimeAudioConfigInput(turn_detection=None))
        )
    )
    assert to_dict(manual) == {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
    }
    untouched = p.SessionUpdateEvent(
        session=p.RealtimeSessionCreateRequest(
            audio=p.RealtimeAudioConfig(input=p.RealtimeAudioConfigInput())
        )
    )
    assert to_dict(untouched)["session"]["audio"]["input"] == {}
    back = parse_client_event(to_json(manual))
    assert back == manual
    assert back.session.audio.input.turn_detection is None  # type: ignore[union-attr]
    assert parse_client_event(to_json(untouched)).session.audio.input.turn_detection is UNSET  # type: ignore[union-attr]


def test_item_references_in_response_input() -> None:
    event = p.ResponseCreateEvent(
        response=p.RealtimeResponseCreateParams(
            conversation="none",
            input=[
                p.ResponseItemReference(id="item_1"),
                p.RealtimeConversationItemUserMessage(
                    content=[p.UserMessageContent(type="input_text", text="Summarize.")]
                ),
            ],
            metadata={"topic": "summary"},
        )
    )
    wire = to_dict(event)
    assert wire["response"]["input"][0] == {"type": "item_reference", "id": "item_1"}
    assert parse_client_event(wire) == event


# --- strictness on what users build --------------------------------------------------------


def test_wrong_type_names_the_path() -> None:
    event = p.SessionUpdateEvent(
        session=p.RealtimeSessionCreateRequest(
            audio=p.RealtimeAudioConfig(
                input=p.RealtimeAudioConfigInput(
                    turn_detection=p.ServerVad(silence_duration_ms="500")  # type: ignore[arg-type]
                )
            )
        )
    )
    with pytest.raises(ValidationError) as info:
        to_json(event)
    assert str(info.value) == (
        "session.audio.input.turn_detection.silence_duration_ms: expected int, got str"
    )
    assert info.value.path == "session.audio.input.turn_detection.silence_duration_ms"


def test_list_index_in_the_path() -> None:
    event = p.ConversationItemCreateEvent(
        item=p.RealtimeConversationItemUserMessage(
            content=[p.UserMessageContent(text="ok"), p.UserMessageContent(text=3)]  # type: ignore[arg-type]
        )
    )
    with pytest.raises(ValidationError, match=r"^item\.content\[1\]\.text: expected str, got int$"):
        to_dict(event)


def test_bool_is_not_an_int_and_none_is_not_required() -> None:
    with pytest.raises(ValidationError, match=r"audio_end_ms: expected int, got bool"):
        to_dict(p.ConversationItemTruncateEvent(item_id="i", content_index=0, audio_end_ms=True))
    with pytest.raises(ValidationError, match=r"item_id: expected str, got null"):
        to_dict(p.ConversationItemTruncateEvent(item_id=None, content_index=0, audio_end_ms=5))  # type: ignore[arg-type]


def test_dict_where_a_class_belongs_is_refused() -> None:
    event = p.SessionUpdateEvent(session={"type": "realtime"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^session: expected one of"):
        to_dict(event)


def test_missing_required_field_fails_at_construction() -> None:
    with pytest.raises(TypeError, match="item"):
        p.ConversationItemCreateEvent()  # type: ignore[call-arg]


def test_wrong_tag_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"^type: expected 'server_vad'"):
        to_dict(p.ServerVad(type="semantic_vad"))  # type: ignore[arg-type]


def test_to_dict_refuses_foreign_objects() -> None:
    with pytest.raises(ValidationError):
        to_dict({"type": "session.update"})


# --- malformed frames -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "path", "reason"),
    [
        ("{not json", "", "malformed JSON"),
        (b"\xff\xfe", "", "malformed JSON"),
        ("[1, 2]", "", "expected a JSON object, got list"),
        ('"text"', "", "expected a JSON object, got str"),
        ('{"event_id": "e"}', "type", "missing required field"),
        ('{"type": 7}', "type", "expected str, got int"),
        ('{"type": ["x"]}', "type", "expected str, got list"),
        ('{"type": "response.done", "event_id": "e"}', "response", "missing required field"),
        (
            '{"type": "error", "event_id": "e", "error": {"message": "m"}}',
            "error.type",
            "missing required field",
        ),
        (
            '{"type": "response.output_audio.delta", "event_id": "e", "response_id": "r", '
            '"item_id": "i", "output_index": "0", "content_index": 0, "delta": ""}',
            "output_index",
            "expected int, got str",
        ),
        (
            '{"type": "conversation.item.added", "event_id": "e", "item": {"role": "user"}}',
            "item.type",
            "missing required field",
        ),
        (
            '{"type": "conversation.item.added", "event_id": "e", "item": "hello"}',
            "item",
            "expected",
        ),
        (
            '{"type": "rate_limits.updated", "event_id": "e", "rate_limits": {}}',
            "rate_limits",
            "expected list, got object",
        ),
        (
            '{"type": "session.created", "event_id": "e", "session": {"type": "realtime", '
            '"tools": [{"type": "mcp"}]}}',
            "session.tools[0].server_label",
            "missing required field",
        ),
    ],
)
def test_malformed_server_frames_raise_protocol_error(
    frame: str | bytes, path: str, reason: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_event(frame)
    assert info.value.path == path
    assert info.value.reason.startswith(reason)
    assert info.value.raw == frame


def test_protocol_error_is_the_only_error() -> None:
    # Garbage of many shapes never escapes as KeyError/TypeError/AttributeError.
    frames = [
        "null",
        "1",
        "{}",
        '{"type": null}',
        '{"type": "session.created"}',
        '{"type": "session.created", "event_id": "e", "session": null}',
        '{"type": "session.created", "event_id": "e", "session": {"type": 5}}',
        '{"type": "response.done", "event_id": "e", "response": {"output": [null]}}',
        '{"type": "response.done", "event_id": "e", "response": {"output": [{"type": {}}]}}',
        '{"type": "response.done", "event_id": "e", "response": {"metadata": {"a": 1}}}',
    ]
    for frame in frames:
        with pytest.raises(ProtocolError):
            parse_server_event(frame)


def test_malformed_client_frames_name_the_param() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_event(
            '{"type": "session.update", "event_id": "c7", "session": {"type": "realtime", '
            '"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "high"}}}}}'
        )
    assert info.value.path == "session.audio.input.turn_detection.threshold"


# --- conveniences --------------------------------------------------------------------------------


def test_repr_shows_what_is_set_and_hides_credentials() -> None:
    tool = p.McpTool(server_label="docs", server_url="http://localhost/mcp", authorization="sk-123")
    text = repr(tool)
    assert "sk-123" not in text
    assert "authorization='***'" in text
    assert "headers" not in text  # unset fields stay out of the repr


def test_from_dict_for_nested_payloads() -> None:
    vad = p.from_dict({"type": "server_vad", "threshold": 0.7}, p.ServerVad)
    assert vad == p.ServerVad(threshold=0.7)
    with pytest.raises(ProtocolError, match="threshold"):
        p.from_dict({"type": "server_vad", "threshold": "x"}, p.ServerVad)


def test_the_converter_is_a_cattrs_converter_with_our_hooks() -> None:
    import cattrs

    assert isinstance(p.converter, cattrs.Converter)
    vad = p.converter.structure({"type": "server_vad", "prefix_padding_ms": 300}, p.ServerVad)
    assert p.converter.unstructure(vad) == {"type": "server_vad", "prefix_padding_ms": 300}


# --- nesting depth ----------------------------------------------------------------------


def _nested(depth: int, inner: str = "1") -> str:
    """JSON text of arrays nested ``depth`` levels deep."""
    return "[" * depth + inner + "]" * depth


def _deep_session_update(depth: int) -> str:
    # event (1), session (2), tools (3), tool (4), parameters (5), then arrays.
    return (
        '{"type": "session.update", "session": {"type": "realtime", "tools": [{"type": '
        f'"function", "name": "f", "parameters": {{"d": {_nested(depth - 5)}}}}}]}}}}'
    )


@pytest.mark.parametrize("depth", [p.MAX_DEPTH + 1, 300, 1000])
def test_parsing_refuses_nesting_past_the_bound(depth: int) -> None:
    frames = [
        (parse_client_event, _deep_session_update(depth)),
        # In a tagged field: the tag's value itself is the deep object.
        (
            parse_client_event,
            '{"type": "conversation.item.create", "item": {"type": @}}'.replace(
                "@", _nested(depth - 2)
            ),
        ),
        (
            parse_server_event,
            '{"type": "conversation.item.added", "event_id": "e", "item": {"type": "message", '
            '"role": @, "content": []}}'.replace("@", _nested(depth - 2)),
        ),
        (
            parse_server_event,
            '{"type": "no.such.event", "deep": @}'.replace("@", _nested(depth - 1)),
        ),
    ]
    for parse, frame in frames:
        with pytest.raises(ProtocolError) as info:
            parse(frame)
        if depth < 1024:  # orjson's own limit is past ours; beyond it, malformed JSON
            assert info.value.reason == f"nested deeper than {p.MAX_DEPTH} levels"
            assert len(str(info.value)) < 200


def test_nesting_up_to_the_bound_parses_and_writes_back() -> None:
    event = parse_client_event(_deep_session_update(p.MAX_DEPTH))
    assert isinstance(event, p.SessionUpdateEvent)
    # What the engine echoes (the session in session.updated) nests no deeper than that.
    echoed = p.SessionUpdatedEvent(event_id="e", session=event.session)  # type: ignore[arg-type]
    assert json.loads(to_json(echoed))["session"]["tools"][0]["parameters"]["d"]


def test_from_dict_refuses_nesting_past_the_bound() -> None:
    deep = json.loads(_nested(p.MAX_DEPTH))
    with pytest.raises(ProtocolError, match="nested deeper than 64 levels"):
        p.from_dict({"type": "realtime", "tracing": {"x": deep}}, p.RealtimeSessionCreateRequest)


def test_values_in_error_messages_are_short() -> None:
    # Unknown string tags parse (as Unknown* fallbacks); a tag of another JSON type is refused.
    big_object = json.dumps(list(range(100_000)))
    frames = [
        '{"type": "session.update", "session": {"type": @}}'.replace("@", big_object),
        '{"type": "conversation.item.create", "item": {"type": @}}'.replace("@", big_object),
        '{"type": "conversation.item.create", "item": {"type": "message", "role": @, '
        '"content": []}}'.replace("@", big_object),
    ]
    for frame in frames:
        with pytest.raises(ProtocolError) as info:
            parse_client_event(frame)
        assert len(str(info.value)) < 200


def test_writing_what_json_cannot_hold_is_a_validation_error() -> None:
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    tracing = p.TracingConfiguration(metadata={"x": deep})
    event = p.SessionUpdateEvent(session=p.RealtimeSessionCreateRequest(tracing=tracing))
    with pytest.raises(ValidationError) as info:
        to_json(event)
    assert info.value.reason == "nested deeper than the 254 levels JSON is written with"
    assert info.value.path.startswith("session.tracing.metadata.x[0]")


@settings(max_examples=200, deadline=None)
@given(shape=st.lists(st.sampled_from(["list", "dict"]), min_size=1, max_size=90))
def test_what_the_parser_accepts_the_writer_writes(shape: list[str]) -> None:
    inner = "1"
    for kind in reversed(shape):
        inner = f"[{inner}]" if kind == "list" else f'{{"k": {inner}}}'
    frame = (
        '{"type": "session.update", "session": {"type": "realtime", "tools": [{"type": '
        '"function", "name": "f", "parameters": @}]}}'
    ).replace("@", inner)
    depth = 4 + len(shape)  # event, session, tools, the tool; then the shape
    if depth > p.MAX_DEPTH:
        with pytest.raises(ProtocolError, match="nested deeper than 64 levels"):
            parse_client_event(frame)
        return
    event = parse_client_event(frame)
    assert isinstance(event, p.SessionUpdateEvent)
    echoed = p.SessionUpdatedEvent(event_id="e", session=event.session)  # type: ignore[arg-type]
    assert json.loads(to_json(echoed))["session"] == json.loads(frame)["session"]


_FIRST_PARSE = """
import framework.protocol._codec as codec
from framework.protocol import parse_server_event

parse_server_event('{"type": "error", "event_id": "e1", "error": {"type": "x", "message": "m"}}')

def refuse(cls):
    raise AssertionError(f"structurer built late for {cls.__name__}")

codec._codegen._build_structurer = refuse
event = parse_server_event(
    '{"type": "response.output_audio.delta", "event_id": "e2", "response_id": "r", "item_id": "i",'
    ' "output_index": 0, "content_index": 0, "delta": "AAAA"}'
)
print(type(event).__name__)
"""


def test_the_first_server_event_builds_every_server_event_structurer() -> None:
    # A session's first response must not generate code while its audio streams:
    # after the first event a process parses, no event type builds its structurer.
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_PARSE], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ResponseAudioDeltaEvent"
