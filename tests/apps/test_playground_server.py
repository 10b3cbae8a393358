"""The playground's server side: what faces the network, fuzzed, and the page's sink on MockClock.

The WebSocket and HTTP tests talk to a real playground in front of a real
engine over loopback, each under ``trio.fail_after``.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import httpx2
import numpy as np
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import WebSocketConnection, open_websocket_url

from framework.apps.playground import BrowserSink, Playground, audio_frame, serve_playground
from framework.apps.playground._bridge import ITEMS_KEPT, BadMessage
from framework.audio import pcm16_to_ulaw
from framework.engine import Engine, Rules, open_engine
from framework.protocol import AudioPCMU

from .serving import open_playground
from .test_playground_browser import RULES, WeatherBot

LIMIT_S = 30


def _ws(page: str) -> str:
    return "ws" + page.removeprefix("http") + "ws"


async def _handshake(page: str, **headers: str) -> httpx2.Response:
    """A WebSocket opening handshake to ``/ws`` that is expected to be refused.

    (trio-websocket leaves the socket of a refused handshake to the garbage
    collector, so refusals are read over plain HTTP.)
    """
    upgrade = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        **headers,
    }
    async with httpx2.AsyncClient() as http:
        return await http.get(page + "ws", headers=upgrade)


async def _next(ws: WebSocketConnection, kind: str, **match: Any) -> dict[str, Any]:
    """The next JSON message of ``kind`` (an ``event`` kind or a message type)."""
    while True:
        frame = await ws.get_message()
        if isinstance(frame, bytes):
            continue
        message: dict[str, Any] = orjson.loads(frame)
        if kind in (message["type"], message.get("kind")) and all(
            message.get("data", message).get(k) == v for k, v in match.items()
        ):
            return message


BAD: list[tuple[str | bytes, str]] = [
    ("not json", "not JSON"),
    ("[1, 2]", 'JSON object with a "type"'),
    ('{"no": "type"}', 'JSON object with a "type"'),
    ('{"type": "launch"}', "unknown message type 'launch'"),
    ('{"type": "text"}', "needs 'text'"),
    ('{"type": "text", "text": 5}', "text.text: expected str"),
    ('{"type": "text", "text": "   "}', "text: empty"),
    ('{"type": "approve", "call_id": "call_nothing"}', "no approval waits"),
    ('{"type": "approve", "call_id": "c", "always": "yes"}', "approve.always: expected bool"),
    ('{"type": "reject", "call_id": ["c"]}', "reject.call_id: expected str"),
    ('{"type": "played", "item": "item_x", "ms": 5}', "no audio was sent for item"),
    ('{"type": "played", "item": "item_x", "ms": -1}', "played.ms: out of range"),
    ('{"type": "played", "item": "item_x", "ms": true}', "played.ms: expected"),
    ('{"type": "mode", "mode": "loud"}', "mode: hands-free or push-to-talk"),
    ('{"type": "elicitation", "id": "q", "action": "maybe"}', "accept, decline or cancel"),
    ('{"type": "elicitation", "id": "q", "action": "decline"}', "no question waits under 'q'"),
    ('{"type": "elicitation", "id": "q", "action": "accept", "content": 1}', "expected dict"),
    ('{"type": "text", "text": "' + "a" * 70_000 + '"}', "at most 65536 bytes"),
    (b"\x01\x02\x03", "an even number of bytes"),
    (bytes(48_002), "at most 1000 ms"),
]


async def test_bad_messages_get_an_error_each_and_the_session_goes_on() -> None:
    with trio.fail_after(LIMIT_S):
        async with (
            open_playground(WeatherBot(), RULES) as (page, _),
            open_websocket_url(_ws(page)) as ws,
        ):
            hello = await _next(ws, "hello")
            assert hello["agent"] == "WeatherBot"
            for frame, expected in BAD:
                await ws.send_message(frame)
                error = await _next(ws, "error")
                assert expected in error["message"], (frame[:60], error)
            await ws.send_message(
                orjson.dumps({"type": "text", "text": "weather in Paris?"}).decode()
            )
            reply = await _next(ws, "AssistantMessage")
            assert "sunny and 21 degrees" in reply["data"]["text"]


async def test_random_frames_never_end_the_session_or_the_server() -> None:
    rng = random.Random(17)
    pieces = ['"type"', '"text"', '"approve"', '"played"', '"ms"', "1e999", "-0", "null", "{", "}"]
    with trio.fail_after(LIMIT_S):
        async with open_playground(WeatherBot(), RULES) as (page, playground):
            async with open_websocket_url(_ws(page)) as ws:
                await _next(ws, "hello")
                for _ in range(300):
                    if rng.random() < 0.3:
                        await ws.send_message(rng.randbytes(rng.randrange(0, 64)))
                    else:
                        text = "".join(rng.choice([*pieces, ":", ","]) for _ in range(12))
                        await ws.send_message(text)
                # Still the same session, still answering.
                await ws.send_message('{"type": "text", "text": "weather in Paris?"}')
                reply = await _next(ws, "AssistantMessage")
                assert "sunny" in reply["data"]["text"]
            await playground.wait_until_sessions(0)
            async with httpx2.AsyncClient() as http:
                health = (await http.get(page + "health")).json()
            assert health == {"status": "ok", "sessions": 0}


async def test_other_origins_are_refused_and_tabs_are_bounded() -> None:
    with trio.fail_after(LIMIT_S):
        async with open_playground(WeatherBot(), RULES) as (page, playground):
            refused = await _handshake(page, origin="http://evil.example")
            assert refused.status_code == 403
            assert "its own page only" in refused.json()["error"]["message"]
            # A foreign name resolved to loopback (DNS rebinding): origin and host agree,
            # and still neither the socket nor the page answers it.
            port = page.rsplit(":", 1)[1].rstrip("/")
            rebound = {"host": f"evil.example:{port}", "origin": f"http://evil.example:{port}"}
            assert (await _handshake(page, **rebound)).status_code == 403
            async with httpx2.AsyncClient() as http:
                for path in ("", "recordings/x.wav"):
                    answer = await http.get(page + path, headers={"host": f"evil.example:{port}"})
                    assert answer.status_code == 403
                assert (
                    await http.get(page, headers={"host": f"localhost:{port}"})
                ).status_code == 200

            playground.max_sessions = 1
            host = page.removeprefix("http://").rstrip("/")
            mine = [(b"origin", f"http://{host}".encode())]
            async with open_websocket_url(_ws(page), extra_headers=mine) as first:
                await _next(first, "hello")
                full = await _handshake(page)
                assert full.status_code == 503
                assert "close one" in full.json()["error"]["message"]
            await playground.wait_until_sessions(0)  # the first tab's session closes with it


async def test_http_requests_of_every_shape_are_answered_and_the_server_stays_up() -> None:
    rng = random.Random(15)
    with trio.fail_after(LIMIT_S):
        async with open_playground(WeatherBot(), RULES) as (page, _):
            async with httpx2.AsyncClient() as http:
                index = await http.get(page)
                assert index.status_code == 200
                assert "default-src 'self'" in index.headers["content-security-policy"]
                assert b'src="/static/app.js"' in index.content
                for name in ("app.js", "worklet.js", "style.css"):
                    asset = await http.get(page + "static/" + name)
                    assert asset.status_code == 200 and asset.content
                    assert b"http://" not in asset.content and b"https://" not in asset.content
                for _ in range(60):
                    method = rng.choice(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
                    path = rng.choice(["", "static/", "static/../_app.py", "api/", "ws", "%00"])
                    path += "".join(rng.choice("abc./%?&=") for _ in range(rng.randrange(8)))
                    answer = await http.request(method, page + path, content=rng.randbytes(20))
                    assert answer.status_code in (200, 403, 404, 405), (method, path)
                too_big = await http.post(page + "api/client-secret", content=bytes(70_000))
                assert too_big.status_code == 413
            # Bytes that are not HTTP at all, and a connection dropped mid-request.
            for garbage in (b"\x16\x03\x01\x00\xff" + bytes(300), b"GET / HTTP/1.1\r\nHost"):
                stream = await trio.open_tcp_stream("127.0.0.1", int(page.rsplit(":", 1)[1][:-1]))
                await stream.send_all(garbage)
                await stream.aclose()
            async with httpx2.AsyncClient() as http:
                assert (await http.get(page + "health")).status_code == 200


async def test_an_ephemeral_key_is_minted_for_the_direct_mode() -> None:
    with trio.fail_after(LIMIT_S):
        async with open_playground(WeatherBot(), RULES, api_key="sk-engine") as (page, _):
            async with httpx2.AsyncClient() as http:
                answer = await http.post(page + "api/client-secret")
                assert answer.status_code == 200, answer.text
                secret = answer.json()
                assert secret["value"].startswith("ek_") and secret["value"] != "sk-engine"
                forged = await http.post(
                    page + "api/client-secret", headers={"origin": "http://evil.example"}
                )
                assert forged.status_code == 403
            # The browser's way in: the key as a subprotocol, accepted by the engine.
            protocols = ["realtime", "openai-insecure-api-key." + secret["value"]]
            async with open_websocket_url(secret["url"], subprotocols=protocols) as direct:
                created = orjson.loads(await direct.get_message())
                assert created["type"] == "session.created"


# --- the page's sink, on MockClock -------------------------------------------------------


async def test_the_sink_knows_what_the_page_played(autojump_clock: trio.testing.MockClock) -> None:
    frames: list[bytes | str] = []
    sink = BrowserSink(lambda frame: frames.append(frame) is None)
    sink.write("item_a", bytes(48 * 1000))  # one second sent
    assert frames[0] == audio_frame("item_a", bytes(48 * 1000))
    assert sink.playing and sink.playing_item == "item_a"
    sink.report("item_a", 200.0, True)
    await trio.sleep(0.1)
    assert sink.played_ms("item_a") == 300  # runs on with the clock between reports
    await trio.sleep(5)
    assert sink.played_ms("item_a") == 1000  # never past what was sent
    sink.report("item_a", 640.0, True)
    await trio.sleep(0.05)
    sink.clear()  # a barge-in: frozen where the page stood
    assert sink.played_ms("item_a") == 690
    assert orjson.loads(frames[-1]) == {"type": "clear"}
    await trio.sleep(1)
    assert sink.played_ms("item_a") == 690 and not sink.playing
    sink.report("item_a", 700.0, False)
    assert sink.played_ms("item_a") == 700 and sink.playing_item is None
    with pytest.raises(BadMessage):
        sink.report("item_never_sent", 10.0, True)


async def test_audio_the_page_cannot_take_is_dropped_and_counted() -> None:
    sink = BrowserSink(lambda frame: False)
    sink.write("item_a", bytes(480))
    assert sink.dropped_bytes == 480 and sink.played_ms("item_a") == 0


async def test_a_dropped_line_is_shown_to_the_page_and_the_session_goes_on() -> None:
    engine = Engine(rules=Rules.from_toml(RULES))
    with trio.fail_after(LIMIT_S):
        async with open_engine(engine) as running, trio.open_nursery() as nursery:
            app = Playground(agent=WeatherBot(), url=running.url, described="the engine")
            page = await nursery.start(partial(serve_playground, app, port=0))
            async with open_websocket_url(_ws(page)) as ws:
                await _next(ws, "hello")
                await ws.send_message('{"type": "text", "text": "weather in Paris?"}')
                await _next(ws, "AssistantMessage")
                [session] = engine.sessions
                await session.drop()
                reconnecting = await _next(ws, "Reconnecting")
                assert reconnecting["data"]["attempt"] == 1
                reconnected = await _next(ws, "Reconnected")
                assert reconnected["data"]["replayed"] >= 2  # the turn so far, replayed
                await ws.send_message('{"type": "text", "text": "weather in Oslo?"}')
                reply = await _next(ws, "AssistantMessage")
                assert "In Oslo it is cloudy" in reply["data"]["text"]
            nursery.cancel_scope.cancel()


async def test_a_phone_agent_s_audio_is_converted_for_the_page() -> None:
    frames: list[bytes | str] = []
    sink = BrowserSink(lambda frame: frames.append(frame) is None, AudioPCMU(type="audio/pcmu"))
    assert sink.bytes_per_ms == 8
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    sink.write("item_a", pcm16_to_ulaw(tone.tobytes()))  # one second of mu-law at 8 kHz
    sent = b"".join(f[len(audio_frame("item_a", b"")) :] for f in frames if isinstance(f, bytes))
    # The page gets PCM16 at 24 kHz (less the resampler's look-ahead), the same tone.
    assert 47_000 <= len(sent) <= 48_000
    pcm = np.frombuffer(sent, dtype="<i2")
    assert 7000 < np.abs(pcm[1000:20000]).max() < 9000
    sink.report("item_a", 400.0, False)
    assert sink.played_ms("item_a") == 400


async def test_the_sink_remembers_a_bounded_number_of_items() -> None:
    sink = BrowserSink(lambda frame: True)
    for n in range(ITEMS_KEPT + 6):
        sink.write(f"item_{n}", bytes(48))
    with pytest.raises(BadMessage):
        sink.report("item_0", 1.0, False)  # the oldest are forgotten
    sink.report(f"item_{ITEMS_KEPT + 5}", 1.0, False)
    assert sink.played_ms(f"item_{ITEMS_KEPT + 5}") == 1
