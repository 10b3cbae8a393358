"""Two engines sharing a real ``redis-server`` (``serve --redis``), in one process.

The official SDK mints a client secret on one engine and opens a session with it
on the other; a call rung on one is accepted, refused an attach and hung up
through the other; Redis lost fails closed with a clear error and nothing else
breaks; and hostile ids and bodies on the new paths get clear errors.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import httpx2
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI, NotFoundError
from trio_websocket import ConnectionClosed

from framework.engine import Engine, RunningEngine, open_engine
from framework.engine._shared import KEY_PREFIX, open_shared_state
from framework.testing import redis_server
from framework.transport import HandshakeRefused, open_connection

from .helpers import connect
from .test_sdk import in_asyncio

KEY = "sk-shared"
AUTH = {"authorization": f"Bearer {KEY}"}
MODEL = "gpt-realtime"


@asynccontextmanager
async def two_engines(redis_url: str) -> AsyncIterator[tuple[RunningEngine, RunningEngine]]:
    """Two engines on their own ports, as on two hosts, sharing one Redis."""
    async with (
        open_engine(Engine(api_key=KEY), redis=redis_url) as a,
        open_engine(Engine(api_key=KEY), redis=redis_url) as b,
    ):
        yield a, b


async def refused(url: str, key: str) -> tuple[int, str]:
    """The status and message of a WebSocket handshake the engine refuses."""
    with pytest.raises(HandshakeRefused) as refusal:
        async with open_connection(url, api_key=key):
            pass
    return refusal.value.code, refusal.value.reason


async def still_serves(url: str) -> None:
    """A session with the API key takes a text turn to the end."""
    async with connect(url, headers=list(AUTH.items())) as client:
        done = (await client.turn("hello"))[-1]
        assert done["response"]["status"] == "completed"


async def test_a_secret_minted_on_one_engine_opens_a_session_on_another(redis_url: str) -> None:
    with trio.fail_after(30):
        async with two_engines(redis_url) as (a, b):
            minting_url, ws_base = a.http_url, b.url.removesuffix("/realtime")

            async def client() -> tuple[str, str | None]:
                async with AsyncOpenAI(api_key=KEY, base_url=minting_url, max_retries=0) as sdk:
                    secret = await sdk.realtime.client_secrets.create(
                        expires_after={"anchor": "created_at", "seconds": 60},
                        session={"type": "realtime", "instructions": "Be brief.", "model": MODEL},
                    )
                async with (
                    AsyncOpenAI(api_key=secret.value, websocket_base_url=ws_base) as browser,
                    browser.realtime.connect(model=MODEL) as conn,
                ):
                    created = await conn.recv()
                    assert created.type == "session.created"
                    return secret.value, created.session.instructions

            value, instructions = await in_asyncio(client)
            assert instructions == "Be brief."
            assert value in b.engine.rest.client_secrets  # it came from Redis
            # The key expires with the secret (60 s), whichever engine reads it.
            assert a.engine.shared is not None
            ttl = await a.engine.shared.client.ttl(f"{KEY_PREFIX}secret:{value}")
            assert 55 <= ttl <= 60
            status, error = await refused(b.url, "ek_never_minted")
            assert (status, error) == (401, "Incorrect API key provided: ek_...nted.")


async def test_a_call_rung_on_one_engine_is_driven_through_another(redis_url: str) -> None:
    with trio.fail_after(30):
        async with two_engines(redis_url) as (a, b), httpx2.AsyncClient(timeout=10) as http:
            rung = await http.post(f"{a.http_url.removesuffix('/v1')}/operator/calls", headers=AUTH)
            call_id = rung.json()["call_id"]
            other_url = b.http_url

            async def accept_through_b() -> None:
                async with AsyncOpenAI(api_key=KEY, base_url=other_url, max_retries=0) as sdk:
                    await sdk.realtime.calls.accept(call_id, type="realtime", instructions="Hi.")
                    with pytest.raises(NotFoundError):
                        await sdk.realtime.calls.accept("rtc_nobody_holds_it", type="realtime")

            await in_asyncio(accept_through_b)
            call = a.engine.rest.calls[call_id]
            assert call.state == "accepted" and call.session is not None
            assert call.session.instructions == "Hi."
            assert call_id not in b.engine.rest.calls

            # B lists A's call, and names who holds it.
            b_base = b.http_url.removesuffix("/v1")
            listed = await http.get(f"{b_base}/operator/calls", headers=AUTH)
            assert listed.status_code == 200, listed.text
            (record,) = [c for c in listed.json()["calls"] if c["id"] == call_id]
            assert (record["state"], record["engine"]["address"]) == ("accepted", a.url)

            # An attach at B is told where the call is; at A it attaches.
            status, error = await refused(f"{b.url}?call_id={call_id}", KEY)
            assert status == 421
            assert f"Call '{call_id}' is held by the engine at {a.url}" in error
            async with connect(f"{a.url}?call_id={call_id}", headers=list(AUTH.items())) as ws:
                await a.engine.wait_until(lambda _: call.attachment is not None)
                await a.engine.registry.flush()
                listed = await http.get(f"{b_base}/operator/calls", headers=AUTH)
                assert [c["attached"] for c in listed.json()["calls"]] == [True]
                # The keypad, pressed through B, reaches the session A holds.
                pressed = await http.post(
                    f"{b_base}/operator/calls/{call_id}/dtmf", headers=AUTH, json={"digits": "1#"}
                )
                assert pressed.json() == {"session_id": call.session_id, "sent": 2}
                keys = [(await ws.until("input_audio_buffer.dtmf_event_received"))[-1]]
                keys.append(await ws.recv())
                assert [key["event"] for key in keys] == ["1", "#"]
                hangup = await http.post(
                    f"{b.http_url}/realtime/calls/{call_id}/hangup", headers=AUTH
                )
                assert hangup.status_code == 200, hangup.text
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.ws.get_message()
            assert closed.value.reason.code == 1000
            assert call.state == "ended"
            again = await http.post(f"{b.http_url}/realtime/calls/{call_id}/hangup", headers=AUTH)
            assert again.status_code == 409  # A's answer, forwarded as it gave it
            assert "it has ended" in again.json()["error"]["message"]
        # Stopped, A forgot its calls: nobody names it any more.
        async with open_shared_state(redis_url) as store:
            assert await store.calls() == []
            assert await store.holder_of(call_id) is None


async def test_malformed_entries_in_an_inbox_are_skipped(redis_url: str) -> None:
    with trio.fail_after(30):
        async with two_engines(redis_url) as (a, b), httpx2.AsyncClient(timeout=10) as http:
            assert a.engine.shared is not None
            call = a.engine.ring()
            inbox = f"{KEY_PREFIX}inbox:{a.engine.shared.me.id}"
            junk = [
                b"not json",
                b"[]",
                b'{"reply": "somewhere:else", "verb": "hangup", "call_id": "x", "body": ""}',
                orjson.dumps({"reply": f"{KEY_PREFIX}reply:j", "verb": "nope", "call_id": call.id}),
            ]
            await a.engine.shared.client.rpush(inbox, junk)
            rejected = await http.post(
                f"{b.http_url}/realtime/calls/{call.id}/reject", headers=AUTH, json={}
            )
            assert rejected.status_code == 200, rejected.text
            assert call.state == "rejected"
            assert not await a.engine.shared.client.exists([f"{KEY_PREFIX}reply:j"])


async def _lose_redis() -> None:
    with trio.fail_after(40), ExitStack() as server:
        url = server.enter_context(redis_server())  # a server of its own, to stop
        async with two_engines(url) as (a, b), httpx2.AsyncClient(timeout=10) as http:
            minted = await http.post(f"{a.http_url}/realtime/client_secrets", headers=AUTH)
            known = minted.json()["value"]
            async with connect(b.url, headers=[("Authorization", f"Bearer {known}")]) as before:
                server.close()  # Redis goes away while both engines run
                # A secret B has already seen is still taken; one it never saw is not.
                async with connect(b.url, headers=[("Authorization", f"Bearer {known}")]):
                    pass
                status, error = await refused(b.url, "ek_minted_elsewhere_meanwhile")
                assert status == 503
                assert "Redis at" in error and "fails closed" in error
                lost = await http.post(f"{a.http_url}/realtime/client_secrets", headers=AUTH)
                assert lost.status_code == 503, lost.text
                assert len(a.engine.rest.client_secrets) == 1  # the unshared one was not kept
                forwarded = await http.post(
                    f"{b.http_url}/realtime/calls/rtc_somewhere/hangup", headers=AUTH
                )
                assert forwarded.status_code == 503
                # Sessions go on, and plain ones still open.
                await before.send({"type": "input_audio_buffer.clear"})
                await before.until("input_audio_buffer.cleared")
                await still_serves(b.url)


# coredis (6.9) leaves a failed connection's buffers to the collector, which warns of
# each; they are swept at the end, under this test's filters (as the fleet's tests do).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_redis_lost_fails_closed_and_ends_nothing_else() -> None:
    trio.run(_lose_redis)
    gc.collect()


async def _hostile(redis_url: str, call_id: str, secret: str, body: bytes) -> None:
    async with two_engines(redis_url) as (a, b), httpx2.AsyncClient(timeout=10) as http:
        held = a.engine.ring()
        await a.engine.registry.flush()
        for target in (call_id, held.id):
            for verb in ("accept", "reject", "refer", "hangup"):
                answer = await http.post(
                    f"{b.http_url}/realtime/calls/{target}/{verb}", headers=AUTH, content=body
                )
                assert answer.status_code in (200, 400, 404, 409), answer.text
                if answer.status_code != 200:
                    assert answer.json()["error"]["message"]
        status, _ = await refused(b.url, f"ek_{secret}")
        assert status == 401
        status, _ = await refused(f"{b.url}?call_id=rtc_{call_id}", KEY)
        assert status == 404
        await still_serves(b.url)  # the engine is unharmed


# Characters a URL path segment and a header value carry as they are.
HOSTILE = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
    min_size=1,
    max_size=300,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call_id=HOSTILE, secret=HOSTILE, body=st.binary(max_size=2048))
def test_hostile_ids_and_bodies_get_clear_errors(
    redis_url: str, call_id: str, secret: str, body: bytes
) -> None:
    async def run() -> None:
        with trio.fail_after(30):
            await _hostile(redis_url, call_id, secret, body)

    trio.run(run)
