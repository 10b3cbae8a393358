"""The engine's REST endpoints: client secrets and calls, on the wire and through the SDK.

Expiry is wall time (epoch seconds); the engine takes its clock from the test,
which moves it by hand. The official SDK (asyncio, in a worker thread) is the
oracle for the response shapes and for the calls methods.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx2
import pytest
import trio
from openai import AsyncOpenAI, BadRequestError, NotFoundError
from openai.types.realtime import ClientSecretCreateResponse
from openai.types.webhooks import RealtimeCallIncomingWebhookEvent
from trio_websocket import ConnectionClosed

from framework.engine import Engine, RunningEngine, _rest, open_engine
from framework.transport import HandshakeRefused, open_connection

from ..protocol import oracle
from .helpers import connect

T = TypeVar("T")

KEY = "sk-cantata-rest-test"
START = 1_800_000_000.0
OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n"
)


class FakeClock:
    """Wall time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def running(clock: FakeClock) -> AsyncIterator[RunningEngine]:
    async with open_engine(Engine(clock=clock)) as running:
        yield running


@pytest.fixture
async def http(running: RunningEngine) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=running.http_url + "/", timeout=5) as client:
        yield client


async def in_asyncio(client: Callable[[], Awaitable[T]], *, seconds: float = 8) -> T:
    """Runs an SDK client on a fresh asyncio loop in a worker thread."""

    async def bounded() -> T:
        async with asyncio.timeout(seconds):
            return await client()

    return await trio.to_thread.run_sync(lambda: asyncio.run(bounded()), abandon_on_cancel=True)


def check_secret(payload: dict[str, Any]) -> ClientSecretCreateResponse:
    """The SDK's model of the response: right branch, nothing unknown, lossless."""
    parsed = ClientSecretCreateResponse.model_validate_json(json.dumps(payload), strict=True)
    assert not oracle.unknown_keys(parsed)
    assert parsed.model_dump(mode="json", exclude_unset=True) == payload
    return parsed


def error_of(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    return body["error"]  # type: ignore[no-any-return]


SESSION = {
    "type": "realtime",
    "instructions": "You are the front desk.",
    "output_modalities": ["text"],
    "audio": {"output": {"voice": "ash"}},
}


# --- client secrets -----------------------------------------------------------------------


async def test_a_secret_has_the_hosted_shape(http: httpx2.AsyncClient) -> None:
    with trio.fail_after(10):
        response = await http.post(
            "realtime/client_secrets",
            json={"expires_after": {"anchor": "created_at", "seconds": 60}, "session": SESSION},
        )
    assert response.status_code == 200, response.text
    secret = check_secret(response.json())
    assert secret.value.startswith("ek_")
    assert secret.expires_at == START + 60
    session = secret.session
    assert session.type == "realtime"
    assert session.id.startswith("sess_") and session.object == "realtime.session"
    assert session.instructions == "You are the front desk."
    assert session.output_modalities == ["text"]
    assert session.audio is not None and session.audio.output is not None
    assert session.audio.output.voice == "ash"
    assert session.model == "gpt-realtime"


async def test_an_empty_request_gets_the_defaults(http: httpx2.AsyncClient) -> None:
    with trio.fail_after(10):
        response = await http.post("realtime/client_secrets")
    secret = check_secret(response.json())
    assert secret.expires_at == START + 600
    assert secret.session.output_modalities == ["audio"]


async def test_the_secret_opens_a_session_with_its_config(
    running: RunningEngine, http: httpx2.AsyncClient
) -> None:
    with trio.fail_after(10):
        minted = await http.post(
            "realtime/client_secrets",
            json={"session": {**SESSION, "model": "gpt-realtime-mini"}},
        )
        value = minted.json()["value"]
        # The secret's model wins over the one in the URL.
        async with connect(
            running.url + "?model=gpt-realtime", headers=[("Authorization", f"Bearer {value}")]
        ) as client:
            (created,) = client.received
            session = created["session"]
            assert session["instructions"] == "You are the front desk."
            assert session["output_modalities"] == ["text"]
            assert session["audio"]["output"]["voice"] == "ash"
            assert session["model"] == "gpt-realtime-mini"
            # A session of its own, not the id shown when the secret was minted.
            assert session["id"] != minted.json()["session"]["id"]
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "hello"}],
                    },
                }
            )
            await client.send({"type": "response.create"})
            done = (await client.until("response.done"))[-1]
            assert done["response"]["output"][0]["content"][0]["type"] == "output_text"


async def test_an_expired_secret_is_refused(
    running: RunningEngine, http: httpx2.AsyncClient, clock: FakeClock
) -> None:
    with trio.fail_after(10):
        minted = await http.post("realtime/client_secrets", json={"expires_after": {"seconds": 10}})
        value = minted.json()["value"]
        clock.now += 9
        async with open_connection(running.url, api_key=value) as conn:
            await conn.receive()
        clock.now += 1
        with pytest.raises(HandshakeRefused) as refused:
            async with open_connection(running.url, api_key=value):
                pass
    assert refused.value.code == 401
    assert "expired" in refused.value.reason
    assert value not in refused.value.reason


async def test_an_unknown_ephemeral_key_is_refused(running: RunningEngine) -> None:
    # Even an engine that takes any key checks the ones that claim to be its own.
    with trio.fail_after(10), pytest.raises(HandshakeRefused) as refused:
        async with open_connection(running.url, api_key="ek_0123456789abcdef"):
            pass
    assert refused.value.code == 401
    assert "Incorrect API key" in refused.value.reason


async def test_keys_on_an_engine_with_an_api_key(clock: FakeClock) -> None:
    with trio.fail_after(10):
        async with (
            open_engine(Engine(api_key=KEY, clock=clock)) as running,
            httpx2.AsyncClient(base_url=running.http_url + "/", timeout=5) as http,
        ):
            anonymous = await http.post("realtime/client_secrets", json={})
            assert error_of(anonymous, 401)["code"] == "invalid_api_key"
            auth = {"Authorization": f"Bearer {KEY}"}
            value = (await http.post("realtime/client_secrets", json={}, headers=auth)).json()[
                "value"
            ]
            # A client secret opens a session, but does not mint more of itself.
            minting = await http.post(
                "realtime/client_secrets", json={}, headers={"Authorization": f"Bearer {value}"}
            )
            assert "only open a realtime session" in error_of(minting, 401)["message"]
            async with open_connection(running.url, api_key=value) as conn:
                await conn.receive()


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", None, None),
        (b"[1]", None, None),
        ({"expires": 10}, "unknown_parameter", "expires"),
        ({"expires_after": {"seconds": 5}}, "integer_below_min_value", "expires_after.seconds"),
        ({"expires_after": {"seconds": 7201}}, "integer_above_max_value", "expires_after.seconds"),
        ({"expires_after": {"seconds": "60"}}, "invalid_type", "expires_after.seconds"),
        ({"expires_after": {"seconds": True}}, "invalid_type", "expires_after.seconds"),
        ({"expires_after": {"anchor": "now"}}, "invalid_value", "expires_after.anchor"),
        ({"expires_after": 60}, "invalid_type", "expires_after"),
        ({"session": {"instructions": "x"}}, "missing_required_parameter", "session.type"),
        ({"session": {"type": "voice"}}, "invalid_value", "session.type"),
        (
            {"session": {"type": "transcription", "instructions": "x"}},
            "unknown_parameter",
            "session.instructions",
        ),
        (
            {"session": {"type": "realtime", "instructions": 5}},
            "invalid_type",
            "session.instructions",
        ),
        ({"session": {"type": "realtime", "extra": 1}}, "unknown_parameter", "session.extra"),
        (
            {"session": {"type": "realtime", "audio": {"output": {"voice": "nobody"}}}},
            "invalid_value",
            "session.audio.output.voice",
        ),
        (
            {"session": {"type": "realtime", "max_output_tokens": 5000}},
            "invalid_value",
            "session.max_output_tokens",
        ),
    ],
)
async def test_bad_secret_requests(
    http: httpx2.AsyncClient, body: bytes | dict[str, Any], code: str | None, param: str | None
) -> None:
    with trio.fail_after(10):
        if isinstance(body, bytes):
            response = await http.post(
                "realtime/client_secrets",
                content=body,
                headers={"content-type": "application/json"},
            )
        else:
            response = await http.post("realtime/client_secrets", json=body)
    error = error_of(response, 400)
    assert (error["code"], error["param"]) == (code, param)
    assert error["message"]


async def test_other_routes_are_not_found(http: httpx2.AsyncClient) -> None:
    with trio.fail_after(10):
        wrong_method = await http.get("realtime/client_secrets")
        wrong_path = await http.post("realtime/sessions", json={})
    assert error_of(wrong_method, 404)["code"] == "not_found"
    assert "POST /v1/realtime/sessions" in error_of(wrong_path, 404)["message"]


# --- calls ----------------------------------------------------------------------------------


def test_the_incoming_call_webhook_has_the_sdk_shape() -> None:
    engine = Engine()
    call = engine.ring(caller="sip:+15550001111@trunk.example", headers=(("X-Ticket", "42"),))
    assert call.id.startswith("rtc_") and call.state == "ringing"
    payload = call.webhook_event()
    event = RealtimeCallIncomingWebhookEvent.model_validate_json(json.dumps(payload), strict=True)
    assert not oracle.unknown_keys(event)
    assert event.data.call_id == call.id
    headers = {h.name: h.value for h in event.data.sip_headers}
    assert headers["From"].startswith("<sip:+15550001111@trunk.example>")
    assert headers["X-Ticket"] == "42"


async def test_accept_then_attach_by_call_id_then_hang_up(
    running: RunningEngine, http: httpx2.AsyncClient
) -> None:
    call = running.engine.ring()
    with trio.fail_after(10):
        accepted = await http.post(
            f"realtime/calls/{call.id}/accept",
            json={**SESSION, "instructions": "Answer the phone."},
        )
        assert (accepted.status_code, accepted.content) == (200, b"")
        assert call.state == "accepted"
        async with connect(f"{running.url}?call_id={call.id}") as client:
            (created,) = client.received
            assert created["session"]["instructions"] == "Answer the phone."
            assert created["session"]["audio"]["output"]["voice"] == "ash"
            assert created["session"]["id"] == call.session_id
            await client.send({"type": "input_audio_buffer.clear"})
            await client.until("input_audio_buffer.cleared")
            hung_up = await http.post(f"realtime/calls/{call.id}/hangup")
            assert (hung_up.status_code, hung_up.content) == (200, b"")
            with pytest.raises(ConnectionClosed) as closed:
                await client.recv()
        assert closed.value.reason is not None
        assert (closed.value.reason.code, closed.value.reason.reason) == (
            1000,
            "The call has ended.",
        )
        assert call.state == "ended" and call.attachment is None
        with pytest.raises(HandshakeRefused) as refused:
            async with open_connection(f"{running.url}?call_id={call.id}"):
                pass
    assert refused.value.code == 409
    assert "has ended" in refused.value.reason


async def test_a_call_takes_one_socket_at_a_time(
    running: RunningEngine, http: httpx2.AsyncClient
) -> None:
    call = running.engine.ring()
    with trio.fail_after(10):
        await http.post(f"realtime/calls/{call.id}/accept", json={"type": "realtime"})
        async with open_connection(f"{running.url}?call_id={call.id}") as first:
            await first.receive()
            with pytest.raises(HandshakeRefused) as refused:
                async with open_connection(f"{running.url}?call_id={call.id}"):
                    pass
            assert refused.value.code == 409
        # Once the engine has seen the first go, the call's session can be joined again.
        for _ in range(200):
            try:
                async with open_connection(f"{running.url}?call_id={call.id}") as again:
                    created = await again.receive()
                break
            except HandshakeRefused as e:
                assert e.code == 409
                await trio.sleep(0.01)
        assert created.session.extra["id"] == call.session_id  # type: ignore[union-attr]


@pytest.mark.parametrize("call_id", ["rtc_unknown", None])
async def test_attaching_needs_an_accepted_call(
    running: RunningEngine, call_id: str | None
) -> None:
    target = call_id or running.engine.ring().id
    with trio.fail_after(10), pytest.raises(HandshakeRefused) as refused:
        async with open_connection(f"{running.url}?call_id={target}"):
            pass
    if call_id is None:
        assert refused.value.code == 409
        assert "still ringing; accept it first" in refused.value.reason
    else:
        assert refused.value.code == 404
        assert "rtc_unknown" in refused.value.reason


async def test_reject(running: RunningEngine, http: httpx2.AsyncClient) -> None:
    first, second = running.engine.ring(), running.engine.ring()
    with trio.fail_after(10):
        assert (await http.post(f"realtime/calls/{first.id}/reject")).status_code == 200
        busy = await http.post(f"realtime/calls/{second.id}/reject", json={"status_code": 486})
        assert busy.status_code == 200
        assert (first.state, first.status_code) == ("rejected", 603)
        assert (second.state, second.status_code) == ("rejected", 486)
        again = await http.post(f"realtime/calls/{first.id}/reject", json={})
        accept = await http.post(f"realtime/calls/{first.id}/accept", json={"type": "realtime"})
        third = running.engine.ring()
        not_sip = await http.post(f"realtime/calls/{third.id}/reject", json={"status_code": 200})
    assert error_of(again, 409)["code"] == "invalid_call_state"
    assert "was rejected" in error_of(accept, 409)["message"]
    assert error_of(not_sip, 400)["param"] == "status_code"
    assert third.state == "ringing"


async def test_hangup_needs_an_accepted_call(
    running: RunningEngine, http: httpx2.AsyncClient
) -> None:
    call = running.engine.ring()
    with trio.fail_after(10):
        ringing = await http.post(f"realtime/calls/{call.id}/hangup")
        await http.post(f"realtime/calls/{call.id}/accept", json={"type": "realtime"})
        assert (await http.post(f"realtime/calls/{call.id}/hangup")).status_code == 200
        twice = await http.post(f"realtime/calls/{call.id}/hangup")
        unknown = await http.post("realtime/calls/rtc_nope/hangup")
    assert "reject it instead" in error_of(ringing, 409)["message"]
    assert "has ended" in error_of(twice, 409)["message"]
    assert error_of(unknown, 404)["code"] == "call_not_found"


async def test_ended_calls_are_forgotten_after_a_while(
    running: RunningEngine, http: httpx2.AsyncClient, clock: FakeClock
) -> None:
    rest = running.engine.rest
    rejected, hung_up = running.engine.ring(), running.engine.ring()
    with trio.fail_after(10):
        await http.post(f"realtime/calls/{rejected.id}/reject")
        await http.post(f"realtime/calls/{hung_up.id}/accept", json={"type": "realtime"})
        await http.post(f"realtime/calls/{hung_up.id}/hangup")
        clock.now += _rest.ENDED_CALL_KEPT_S - 1
        ringing = running.engine.ring()
        assert {rejected.id, hung_up.id, ringing.id} <= set(rest.calls)  # still known: "ended"
        clock.now += 2
        running.engine.ring()
        gone = await http.post(f"realtime/calls/{hung_up.id}/hangup")
    assert rejected.id not in rest.calls and hung_up.id not in rest.calls
    assert ringing.id in rest.calls  # a live call is not forgotten by age
    assert error_of(gone, 404)["code"] == "call_not_found"


async def test_the_engine_keeps_a_bounded_number_of_calls(
    running: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rest, "MAX_CALLS", 5)
    engine = running.engine
    first = engine.ring()
    engine.rest.accept_call(first.id, b'{"type": "realtime"}')
    first.attachment = trio.CancelScope()  # a WebSocket is attached: it must stay
    calls = [engine.ring() for _ in range(20)]
    assert len(engine.rest.calls) == 5
    assert first.id in engine.rest.calls
    assert [c.id for c in calls[-4:]] == [c for c in engine.rest.calls if c != first.id]


async def test_api_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(_rest.hmac, "compare_digest", spy)
    rest = _rest.RestState()
    assert rest.authorize("sk-right", api_key="sk-right", ephemeral_ok=True) is None
    with pytest.raises(_rest.HttpError):
        rest.authorize("sk-wrong", api_key="sk-right", ephemeral_ok=True)
    assert compared == [(b"sk-right", b"sk-right"), (b"sk-wrong", b"sk-right")]


async def test_refer(running: RunningEngine, http: httpx2.AsyncClient) -> None:
    call = running.engine.ring()
    with trio.fail_after(10):
        early = await http.post(
            f"realtime/calls/{call.id}/refer", json={"target_uri": "tel:+14155550123"}
        )
        await http.post(f"realtime/calls/{call.id}/accept", json={"type": "realtime"})
        for target in ("tel:+14155550123", "sip:agent@example.com"):
            ok = await http.post(f"realtime/calls/{call.id}/refer", json={"target_uri": target})
            assert ok.status_code == 200
        bad = await http.post(
            f"realtime/calls/{call.id}/refer", json={"target_uri": "https://example.com"}
        )
        missing = await http.post(f"realtime/calls/{call.id}/refer", json={})
    assert "still ringing" in error_of(early, 409)["message"]
    assert call.referred_to == ["tel:+14155550123", "sip:agent@example.com"]
    assert (error_of(bad, 400)["code"], error_of(missing, 400)["code"]) == (
        "invalid_value",
        "missing_required_parameter",
    )


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "missing_required_parameter", "type"),
        ({"type": "realtime", "voice": "ash"}, "unknown_parameter", "voice"),
        (
            {"type": "realtime", "audio": {"output": {"voice": "nobody"}}},
            "invalid_value",
            "audio.output.voice",
        ),
        (
            {"type": "realtime", "tools": [{"type": "function"}]},
            "missing_required_parameter",
            "tools[0].name",
        ),
    ],
)
async def test_bad_accepts_leave_the_call_ringing(
    running: RunningEngine,
    http: httpx2.AsyncClient,
    body: dict[str, Any],
    code: str,
    param: str,
) -> None:
    call = running.engine.ring()
    with trio.fail_after(10):
        response = await http.post(f"realtime/calls/{call.id}/accept", json=body)
    error = error_of(response, 400)
    assert (error["code"], error["param"]) == (code, param)
    assert "session." not in error["message"]
    assert call.state == "ringing"


async def test_a_webrtc_call_from_an_offer(
    running: RunningEngine, http: httpx2.AsyncClient
) -> None:
    with trio.fail_after(10):
        response = await http.post(
            "realtime/calls", content=OFFER, headers={"content-type": "application/sdp"}
        )
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/sdp"
        call_id = response.headers["location"].rsplit("/", 1)[-1]
        assert response.headers["location"] == f"/v1/realtime/calls/{call_id}"
        answer = response.text.split("\r\n")
        assert answer[0] == "v=0"
        assert "a=group:BUNDLE 0 1" in answer
        assert any(line.startswith("m=audio 9 UDP/TLS/RTP/SAVPF 111") for line in answer)
        assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" in answer
        call = running.engine.rest.calls[call_id]
        assert (call.transport, call.state) == ("webrtc", "accepted")
        # The server's sideband socket joins the browser's call.
        async with open_connection(f"{running.url}?call_id={call_id}") as conn:
            await conn.receive()
            await http.post(f"realtime/calls/{call_id}/hangup")
            assert [event async for event in conn] == []
        assert conn.closed is not None and conn.closed.code == 1000
        refer = await http.post(f"realtime/calls/{call_id}/refer", json={"target_uri": "tel:+1555"})
        assert error_of(refer, 409)["code"] == "invalid_call_state"


@pytest.mark.parametrize(
    ("content", "ctype", "code"),
    [
        ("", "application/sdp", "missing_required_parameter"),
        ("hello", "application/sdp", "invalid_offer"),
        ("v=0\r\nm=video 9 RTP/AVP 96\r\n", "application/sdp", "invalid_offer"),
        (OFFER, "application/json", "unsupported_content_type"),
    ],
)
async def test_bad_offers(http: httpx2.AsyncClient, content: str, ctype: str, code: str) -> None:
    with trio.fail_after(10):
        response = await http.post(
            "realtime/calls", content=content, headers={"content-type": ctype}
        )
    assert error_of(response, 400)["code"] == code


# --- the SDK as the oracle ------------------------------------------------------------------


async def test_the_sdk_mints_and_uses_a_secret(clock: FakeClock) -> None:
    async with open_engine(Engine(api_key=KEY, clock=clock)) as running:
        http_url, ws_base = running.http_url, running.url.removesuffix("/realtime")

        async def client() -> None:
            async with AsyncOpenAI(api_key=KEY, base_url=http_url, max_retries=0) as sdk:
                secret = await sdk.realtime.client_secrets.create(
                    expires_after={"anchor": "created_at", "seconds": 120},
                    session={
                        "type": "realtime",
                        "instructions": "Be brief.",
                        "model": "gpt-realtime",
                    },
                )
                assert type(secret) is ClientSecretCreateResponse
                assert secret.expires_at == START + 120
                assert secret.session.type == "realtime"
                assert secret.session.instructions == "Be brief."
                with pytest.raises(BadRequestError) as bad:
                    await sdk.realtime.client_secrets.create(expires_after={"seconds": 1})
                assert bad.value.code == "integer_below_min_value"
            async with (
                AsyncOpenAI(
                    api_key=secret.value, websocket_base_url=ws_base, max_retries=0
                ) as browser,
                browser.realtime.connect(model="gpt-realtime") as conn,
            ):
                created = await conn.recv()
                assert created.type == "session.created"
                assert created.session.instructions == "Be brief."

        with trio.fail_after(15):
            await in_asyncio(client)


async def test_the_sdk_drives_the_calls(clock: FakeClock) -> None:
    engine = Engine(api_key=KEY, clock=clock)
    async with open_engine(engine) as running:
        ringing = [engine.ring() for _ in range(2)]
        http_url = running.http_url

        async def client() -> str:
            async with AsyncOpenAI(api_key=KEY, base_url=http_url, max_retries=0) as sdk:
                calls = sdk.realtime.calls
                first, second = ringing
                assert (
                    await calls.accept(first.id, type="realtime", instructions="Hi there.")
                ) is None
                assert await calls.refer(first.id, target_uri="sip:agent@example.com") is None
                assert await calls.hangup(first.id) is None
                assert await calls.reject(second.id, status_code=486) is None
                with pytest.raises(NotFoundError):
                    await calls.hangup("rtc_nope")
                raw = await calls.with_raw_response.create(
                    sdp=OFFER, session={"type": "realtime", "instructions": "From the browser."}
                )
                assert raw.status_code == 201
                assert raw.content.startswith(b"v=0\r\n")
                return str(raw.headers["location"]).rsplit("/", 1)[-1]

        with trio.fail_after(15):
            webrtc_id = await in_asyncio(client)
        first, second = ringing
        assert first.state == "ended" and first.referred_to == ["sip:agent@example.com"]
        assert first.session is not None and first.session.instructions == "Hi there."
        assert (second.state, second.status_code) == ("rejected", 486)
        webrtc = engine.rest.calls[webrtc_id]
        assert webrtc.session is not None
        assert webrtc.session.instructions == "From the browser."


async def test_a_browser_call_with_a_secret_starts_from_its_session(
    running: RunningEngine, http: httpx2.AsyncClient
) -> None:
    with trio.fail_after(10):
        minted = await http.post("realtime/client_secrets", json={"session": SESSION})
        value = minted.json()["value"]
        response = await http.post(
            "realtime/calls",
            content=OFFER,
            headers={"content-type": "application/sdp", "authorization": f"Bearer {value}"},
        )
    assert response.status_code == 201
    call = running.engine.rest.calls[response.headers["location"].rsplit("/", 1)[-1]]
    assert call.session is not None
    assert call.session.instructions == "You are the front desk."
