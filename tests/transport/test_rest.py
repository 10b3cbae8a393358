"""The REST client against the local engine over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from framework.engine import Engine, RunningEngine, open_engine
from framework.protocol import (
    AudioPCMU,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeSessionCreateRequest,
    SessionCreatedEvent,
    ValidationError,
)
from framework.transport import (
    ConnectionClosed,
    HandshakeRefused,
    RestError,
    open_connection,
    open_rest_client,
    resolve_base_url,
)

KEY = "sk-test-rest-correct-horse"
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
SESSION = RealtimeSessionCreateRequest(
    instructions="You are the front desk.",
    output_modalities=["text"],
    audio=RealtimeAudioConfig(
        input=RealtimeAudioConfigInput(format=AudioPCMU()),
        output=RealtimeAudioConfigOutput(voice="ash"),
    ),
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def running(clock: FakeClock) -> AsyncIterator[RunningEngine]:
    async with open_engine(Engine(api_key=KEY, clock=clock)) as running:
        yield running


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "https://api.openai.com/v1"),
        ("http://127.0.0.1:8765/v1/", "http://127.0.0.1:8765/v1"),
        ("ws://127.0.0.1:8765/v1/realtime", "http://127.0.0.1:8765/v1"),
        ("wss://x.example/v1", "https://x.example/v1"),
    ],
)
def test_resolve_base_url(url: str | None, expected: str) -> None:
    assert resolve_base_url(url) == expected


def test_resolve_base_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="not an HTTP URL"):
        resolve_base_url("ftp://127.0.0.1/v1")


async def test_hosted_api_without_a_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        async with open_rest_client():
            pass


async def test_a_secret_opens_a_websocket(running: RunningEngine) -> None:
    with trio.fail_after(10):
        async with open_rest_client(running.http_url, api_key=KEY) as rest:
            secret = await rest.create_client_secret(session=SESSION, expires_after_seconds=60)
        assert secret.value.startswith("ek_")
        assert secret.expires_at == 1_800_000_060
        assert isinstance(secret.session, RealtimeSessionCreateRequest)
        assert secret.session.instructions == "You are the front desk."
        assert secret.session.extra["object"] == "realtime.session"
        assert secret.value not in repr(secret) and KEY not in repr(rest)
        async with open_connection(running.url, api_key=secret.value) as conn:
            created = await conn.receive()
    assert isinstance(created, SessionCreatedEvent)
    session = created.session
    assert isinstance(session, RealtimeSessionCreateRequest)
    assert session.instructions == "You are the front desk."
    assert session.output_modalities == ["text"]
    assert isinstance(session.audio, RealtimeAudioConfig)
    assert isinstance(session.audio.input, RealtimeAudioConfigInput)
    assert isinstance(session.audio.input.format, AudioPCMU)
    assert isinstance(session.audio.output, RealtimeAudioConfigOutput)
    assert session.audio.output.voice == "ash"


async def test_an_expired_secret_is_refused(running: RunningEngine, clock: FakeClock) -> None:
    with trio.fail_after(10):
        async with open_rest_client(running.url, api_key=KEY) as rest:
            secret = await rest.create_client_secret(expires_after_seconds=10)
        clock.now += 10
        with pytest.raises(HandshakeRefused) as refused:
            async with open_connection(running.url, api_key=secret.value):
                pass
    assert refused.value.code == 401
    assert "expired" in refused.value.reason
    assert secret.value not in str(refused.value)


async def test_refusals_are_rest_errors(running: RunningEngine) -> None:
    with trio.fail_after(10):
        async with open_rest_client(running.http_url, api_key=KEY) as rest:
            with pytest.raises(RestError) as short:
                await rest.create_client_secret(expires_after_seconds=5)
            with pytest.raises(ValidationError, match="instructions"):
                bad = RealtimeSessionCreateRequest(instructions=3)  # type: ignore[arg-type]
                await rest.create_client_secret(session=bad)
            with pytest.raises(RestError) as unknown:
                await rest.hangup_call("rtc_nope")
    assert (short.value.status, short.value.code) == (400, "integer_below_min_value")
    assert short.value.param == "expires_after.seconds"
    assert "400" in str(short.value) and "integer_below_min_value" in str(short.value)
    assert (unknown.value.status, unknown.value.code) == (404, "call_not_found")


async def test_a_wrong_key_is_not_echoed(running: RunningEngine) -> None:
    wrong = "sk-test-wrong-key-0123456789"
    with trio.fail_after(10):
        async with open_rest_client(running.http_url, api_key=wrong) as rest:
            with pytest.raises(RestError) as refused:
                await rest.create_client_secret()
    assert (refused.value.status, refused.value.code) == (401, "invalid_api_key")
    assert wrong not in str(refused.value) and wrong not in repr(refused.value)


async def test_nothing_listening_is_a_rest_error() -> None:
    with trio.socket.socket() as sock:  # a port that is surely closed
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(10):
        async with open_rest_client(f"http://127.0.0.1:{port}/v1", api_key="x") as rest:
            with pytest.raises(RestError) as failed:
                await rest.create_client_secret()
    assert (failed.value.status, failed.value.code) == (0, "connection_error")


async def test_accept_attach_and_hang_up(running: RunningEngine) -> None:
    call = running.engine.ring()
    with trio.fail_after(10):
        async with open_rest_client(running.http_url, api_key=KEY) as rest:
            await rest.accept_call(call.id, session=SESSION)
            async with open_connection(f"{running.url}?call_id={call.id}", api_key=KEY) as conn:
                created = await conn.receive()
                assert isinstance(created, SessionCreatedEvent)
                assert isinstance(created.session, RealtimeSessionCreateRequest)
                assert created.session.instructions == "You are the front desk."
                await rest.hangup_call(call.id)
                # A hangup is a normal close: iteration just ends.
                assert [event async for event in conn] == []
                with pytest.raises(ConnectionClosed) as closed:
                    await conn.receive()
            with pytest.raises(RestError) as again:
                await rest.hangup_call(call.id)
    assert (closed.value.code, closed.value.reason) == (1000, "The call has ended.")
    assert (again.value.status, again.value.code) == (409, "invalid_call_state")


async def test_reject_and_refer(running: RunningEngine) -> None:
    declined, busy, transferred = (running.engine.ring() for _ in range(3))
    with trio.fail_after(10):
        async with open_rest_client(running.http_url, api_key=KEY) as rest:
            await rest.reject_call(declined.id)
            await rest.reject_call(busy.id, status_code=486)
            await rest.accept_call(transferred.id)
            await rest.refer_call(transferred.id, "tel:+14155550123")
            with pytest.raises(RestError) as bad_target:
                await rest.refer_call(transferred.id, "mailto:agent@example.com")
            with pytest.raises(RestError) as late:
                await rest.accept_call(declined.id)
    assert (declined.state, declined.status_code) == ("rejected", 603)
    assert (busy.state, busy.status_code) == ("rejected", 486)
    assert transferred.referred_to == ["tel:+14155550123"]
    assert (bad_target.value.status, bad_target.value.param) == (400, "target_uri")
    assert late.value.status == 409


async def test_a_webrtc_call(running: RunningEngine) -> None:
    with trio.fail_after(10):
        async with open_rest_client(running.http_url, api_key=KEY) as rest:
            plain = await rest.create_call(OFFER)
            configured = await rest.create_call(OFFER, session=SESSION)
            async with open_connection(
                f"{running.url}?call_id={configured.call_id}", api_key=KEY
            ) as conn:
                created = await conn.receive()
                await rest.hangup_call(configured.call_id)
            with pytest.raises(RestError) as bad:
                await rest.create_call("not sdp")
    assert plain.call_id.startswith("rtc_") and plain.sdp.startswith("v=0\r\n")
    assert plain.call_id != configured.call_id
    assert isinstance(created, SessionCreatedEvent)
    assert isinstance(created.session, RealtimeSessionCreateRequest)
    assert created.session.instructions == "You are the front desk."
    assert (bad.value.status, bad.value.code) == (400, "invalid_offer")
