"""Bad input never kills the server or the session: each gets the hosted API's error."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx2
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from framework.engine import Engine, Rules, open_engine

from .helpers import WEATHER_RULES, connect, speech
from .served import user_text


@pytest.fixture
async def engine() -> AsyncIterator[tuple[Engine, str]]:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES))
    async with open_engine(engine) as running:
        yield engine, running.url


@pytest.fixture
async def url(engine: tuple[Engine, str]) -> str:
    return engine[1]


async def _still_alive(client: object) -> None:
    # The session keeps serving after the error.
    await client.send({"type": "input_audio_buffer.clear"})  # type: ignore[attr-defined]
    await client.until("input_audio_buffer.cleared")  # type: ignore[attr-defined]


BAD_FRAMES = [
    ("{not json", "invalid_json", None),
    ("[1, 2, 3]", "invalid_json", None),
    ('{"event_id": "e1"}', "missing_required_parameter", "type"),
    ('{"type": "response.make", "event_id": "e2"}', "invalid_value", "type"),
    (
        '{"type": "conversation.item.create", "event_id": "e3"}',
        "missing_required_parameter",
        "item",
    ),
    (
        '{"type": "conversation.item.truncate", "event_id": "e4", "item_id": "x", '
        '"content_index": 0, "audio_end_ms": "10"}',
        "invalid_type",
        "audio_end_ms",
    ),
    (
        '{"type": "session.update", "event_id": "e5", "session": {"type": "realtime", '
        '"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}}}',
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        '{"type": "session.update", "event_id": "e6", '
        '"session": {"type": "realtime", "voices": "x"}}',
        "unknown_parameter",
        "session.voices",
    ),
    (
        '{"type": "session.update", "event_id": "e7", "session": {"type": "realtime", '
        '"output_modalities": ["text", "audio"]}}',
        "invalid_value",
        "session.output_modalities",
    ),
    (
        '{"type": "session.update", "event_id": "e8", "session": {"type": "realtime", '
        '"audio": {"output": {"voice": "robot"}}}}',
        "invalid_value",
        "session.audio.output.voice",
    ),
    (
        '{"type": "session.update", "event_id": "e9", "session": {"type": "realtime", '
        '"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}',
        "invalid_value",
        "session.audio.input.format.rate",
    ),
    (
        '{"type": "session.update", "event_id": "e10", "session": {"type": "realtime", '
        '"max_output_tokens": 0}}',
        "invalid_value",
        "session.max_output_tokens",
    ),
    (
        '{"type": "session.update", "event_id": "e11", "session": {"type": "realtime", '
        '"tools": [{"type": "function", "name": "bad name!"}]}}',
        "invalid_value",
        "session.tools[0].name",
    ),
    (
        '{"type": "session.update", "event_id": "e12", "session": {"type": "realtime", '
        '"tool_choice": {"type": "function", "name": "nope"}}}',
        "invalid_value",
        "session.tool_choice.name",
    ),
    (
        '{"type": "input_audio_buffer.append", "event_id": "e13", "audio": "%%%"}',
        "invalid_value",
        "audio",
    ),
    (
        '{"type": "conversation.item.create", "event_id": "e14", "item": {"type": "message", '
        '"role": "assistant", "content": [{"type": "output_audio", "audio": "AAAA"}]}}',
        "invalid_value",
        "item.content[0].type",
    ),
    (
        '{"type": "conversation.item.create", "event_id": "e15", "item": {"type": "mcp_call", '
        '"id": "m", "server_label": "s", "name": "n", "arguments": "{}"}}',
        "invalid_value",
        "item.type",
    ),
    (
        '{"type": "conversation.item.create", "event_id": "e16", "item": {"type": "message", '
        '"role": "wizard", "content": []}}',
        "invalid_value",
        "item.type",
    ),
    (
        '{"type": "response.create", "event_id": "e17", "response": {"conversation": "other"}}',
        "invalid_value",
        "response.conversation",
    ),
    ('{"type": "output_audio_buffer.clear", "event_id": "e18"}', "invalid_value", "type"),
    (
        '{"type": "response.create", "event_id": "e19", "response": {"metadata": {"a": 1}}}',
        "invalid_type",
        "response.metadata.a",
    ),
]


@pytest.mark.parametrize(("frame", "code", "param"), BAD_FRAMES)
async def test_bad_frames_get_error_events(
    url: str, frame: str, code: str, param: str | None
) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.send_raw(frame)
            error = await client.error()
            assert error["type"] == "invalid_request_error"
            assert error["code"] == code, error
            assert error["param"] == param
            sent = json.loads(frame) if frame.startswith("{") and not frame.startswith("{n") else {}
            assert error["event_id"] == (sent.get("event_id") if isinstance(sent, dict) else None)
            await _still_alive(client)


async def test_binary_frames_get_an_error(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.ws.send_message(b"\x00\x01binary")
            error = await client.error()
            assert error["code"] == "invalid_frame"
            await _still_alive(client)


async def test_oversized_frames_get_an_error(url: str) -> None:
    with trio.fail_after(30):
        async with connect(url) as client:
            huge = base64.b64encode(bytes(17 * 1024 * 1024)).decode()
            await client.send({"type": "input_audio_buffer.append", "audio": huge})
            error = await client.error()
            assert error["code"] == "message_too_large"
            assert error["event_id"] is None
            # With its event_id at the head, the refusal names the event it refuses.
            await client.send(
                {"type": "input_audio_buffer.append", "event_id": "evt_big", "audio": huge}
            )
            error = await client.error()
            assert (error["code"], error["event_id"]) == ("message_too_large", "evt_big")
            await _still_alive(client)


# A rejected handshake leaves trio-websocket's client socket open (it raises
# ConnectionRejected before anything can close it); that warning is the
# client library's, not the engine's.
_client_leaks_on_rejection = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)


@_client_leaks_on_rejection
async def test_wrong_key_is_refused_at_the_handshake() -> None:
    with trio.fail_after(10):
        async with open_engine(Engine(api_key="sk-right-key-1234")) as running:
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(
                    running.url, extra_headers=[("Authorization", "Bearer sk-wrong-key-9876")]
                ):
                    pass
            assert info.value.status_code == 401
            body = json.loads(info.value.body)
            assert body["error"]["code"] == "invalid_api_key"
            assert (
                "9876" in body["error"]["message"]
                and "sk-wrong-key-9876" not in body["error"]["message"]
            )
            with pytest.raises(ConnectionRejected) as missing:
                async with open_websocket_url(running.url):
                    pass
            assert missing.value.status_code == 401
            async with connect(
                running.url, headers=[("Authorization", "Bearer sk-right-key-1234")]
            ) as ok:
                assert ok.received[0]["type"] == "session.created"


@_client_leaks_on_rejection
async def test_wrong_path_is_refused(url: str) -> None:
    with trio.fail_after(10), pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(url.replace("/v1/realtime", "/v2/realtime")):
            pass
    assert info.value.status_code == 404


async def test_beta_clients_are_told_the_beta_is_gone(url: str) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(url, extra_headers=[("OpenAI-Beta", "realtime=v1")]) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
            assert info.value.reason.code == 4000
            assert info.value.reason.reason == "beta_api_shape_disabled"
        await ws._stream.aclose()  # see helpers.connect


async def test_client_vanishing_mid_response_frees_the_session(engine: tuple[Engine, str]) -> None:
    server, url = engine
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.send(user_text("tell me a story"))
            await client.send({"type": "response.create"})
            await client.until("response.output_audio.delta")
            assert len(server.sessions) == 1
        await server.wait_until(lambda engine: not engine.sessions)
        # ... and the engine still serves others.
        async with connect(url) as again:
            await _still_alive(again)


async def test_max_session_duration_closes_like_the_hosted_api() -> None:
    with trio.fail_after(10):
        async with (
            open_engine(Engine(max_session_s=0.3)) as running,
            connect(running.url) as client,
        ):
            error = await client.error()
            assert error["code"] == "session_expired"
            assert error["message"] == "Your session hit the maximum duration of 0.3 seconds."
            with pytest.raises(ConnectionClosed) as info:
                await client.recv()
            assert info.value.reason.code == 1001


async def test_drop_after_events_knob() -> None:
    with trio.fail_after(10):
        async with (
            open_engine(Engine(drop_after_events=3)) as running,
            connect(running.url) as client,
        ):
            await client.send({"type": "input_audio_buffer.clear"})
            await client.send({"type": "input_audio_buffer.clear"})
            await client.until("input_audio_buffer.cleared")
            await client.until("input_audio_buffer.cleared")
            with pytest.raises(ConnectionClosed) as info:
                await client.recv()
            assert info.value.reason.code == 1011


async def test_latency_knob_delays_every_event() -> None:
    with trio.fail_after(10):
        async with open_engine(Engine(latency_ms=150)) as running, connect(running.url) as client:
            start = trio.current_time()
            await client.send({"type": "input_audio_buffer.clear"})
            await client.until("input_audio_buffer.cleared")
            assert trio.current_time() - start >= 0.15


async def test_speech_keeps_working_after_errors(url: str) -> None:
    from .helpers import appends, silence

    with trio.fail_after(20):
        async with connect(url) as client:
            await client.send_raw("{oops")
            await client.error()
            import numpy as np

            for event in appends(np.concatenate([silence(200), speech(300), silence(700)])):
                await client.send(event)
            events = await client.until("input_audio_buffer.committed")
            assert events[0]["type"] == "input_audio_buffer.speech_started"


def _arrays(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize(
    "frame",
    [
        # An echoed config 300 levels deep used to break the writer of session.updated.
        '{"type": "session.update", "event_id": "deep1", "session": {"type": "realtime", '
        '"tools": [{"type": "function", "name": "f", "parameters": {"d": @}}]}}'.replace(
            "@", _arrays(300)
        ),
        '{"type": "session.update", "event_id": "deep2", "session": {"type": "realtime", '
        '"prompt": {"id": "p", "variables": {"v": {"x": @}}}}}'.replace("@", _arrays(300)),
        # A tagged field 1,000 levels deep used to raise RecursionError in the parser.
        '{"type": "conversation.item.create", "event_id": "deep3", "item": {"type": @}}'.replace(
            "@", _arrays(1000)
        ),
    ],
)
async def test_deeply_nested_events_get_an_error_and_the_session_lives(
    url: str, frame: str
) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.send_raw(frame)
            events = await client.until("error")
            error = events[-1]["error"]
            assert error["code"] == "invalid_value"
            assert error["message"].startswith(f"Invalid value at '{error['param']}': nested")
            assert "nested deeper than 64 levels, more than this server reads" in error["message"]
            assert error["event_id"] == json.loads(frame.replace(_arrays(1000), "1"))["event_id"]
            assert [e["type"] for e in events] == ["error"]  # nothing applied, nothing echoed
            await _still_alive(client)


async def test_a_deeply_nested_rest_body_is_a_400(url: str) -> None:
    base = url.replace("ws://", "http://").removesuffix("/realtime")
    body = '{"session": {"type": "realtime", "tracing": {"metadata": {"x": @}}}}'.replace(
        "@", _arrays(300)
    )
    with trio.fail_after(10):
        async with httpx2.AsyncClient(timeout=5) as http:
            response = await http.post(
                f"{base}/realtime/client_secrets",
                content=body,
                headers={"content-type": "application/json"},
            )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_value" and error["param"].startswith("session.tracing.")
    assert "nested deeper than 64 levels" in error["message"]
