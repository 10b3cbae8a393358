"""The shared store on a real ``redis-server``: client secrets and the registry of calls,
written by one store and read by another."""

from __future__ import annotations

import gc
import time
from contextlib import ExitStack

import pytest
import trio

from framework.engine import _shared
from framework.engine._rest import ClientSecret, HttpError, RestState
from framework.engine._shared import (
    CALL_TTL_S,
    KEY_PREFIX,
    MAX_FORWARDED_BYTES,
    MAX_ID_CHARS,
    Instance,
    SharedStoreError,
    open_shared_state,
)
from framework.protocol import RealtimeSessionCreateRequest, from_dict
from framework.testing import redis_server


def _secret(value: str, lifetime_s: int = 60) -> ClientSecret:
    now = int(time.time())
    session = from_dict(
        {"type": "realtime", "instructions": "Be brief."}, RealtimeSessionCreateRequest
    )
    return ClientSecret(value=value, created_at=now, expires_at=now + lifetime_s, session=session)


async def test_a_secret_minted_by_one_store_is_read_by_another(redis_url: str) -> None:
    with trio.fail_after(10):
        async with (
            open_shared_state(redis_url) as minting,
            open_shared_state(redis_url) as checking,
        ):
            await minting.put(_secret("ek_shared1"))
            found = await checking.get("ek_shared1")
            assert found is not None
            assert found.session.instructions == "Be brief."
            assert await checking.get("ek_unknown") is None


async def test_a_secret_expires_with_its_key(redis_url: str) -> None:
    with trio.fail_after(10):
        async with open_shared_state(redis_url) as store:
            await store.put(_secret("ek_short", lifetime_s=1))
            ttl = await store.client.ttl(store._key("ek_short"))
            assert 0 < ttl <= 1


# coredis (6.9) leaves a refused connection's buffers to the collector, which warns of
# each; nothing is kept (the same sweep as the fleet's Redis-down test).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_unreachable_redis_fails_closed_with_a_clear_error() -> None:
    with trio.fail_after(10):
        with pytest.raises(SharedStoreError, match="did not answer"):
            async with open_shared_state("redis://127.0.0.1:1"):
                pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_redis_lost_later_fails_closed_rather_than_accepting() -> None:
    with trio.fail_after(20), ExitStack() as server:
        url = server.enter_context(redis_server())  # a server of its own, to stop
        async with open_shared_state(url) as store:
            await store.put(_secret("ek_before"))
            assert await store.get("ek_before") is not None
            server.close()  # Redis goes away while the store is open
            with pytest.raises(SharedStoreError, match="unreachable"):
                await store.get("ek_before")
    gc.collect()  # coredis's buffers of the lost connection, swept under these filters


async def test_past_the_bound_the_secrets_nearest_expiry_are_forgotten(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_shared, "MAX_SHARED_SECRETS", 3)
    with trio.fail_after(10):
        async with open_shared_state(redis_url) as store:
            for n in range(5):
                await store.put(_secret(f"ek_bound{n}", lifetime_s=60 + n))
            kept = [n for n in range(5) if await store.get(f"ek_bound{n}") is not None]
            assert kept == [2, 3, 4]
            assert await store.client.zcard(f"{KEY_PREFIX}secrets") == 3


async def test_a_call_is_registered_with_its_holder_until_it_is_forgotten(redis_url: str) -> None:
    rest = RestState()
    with trio.fail_after(10):
        async with open_shared_state(redis_url) as holding, open_shared_state(redis_url) as other:
            holding.me = Instance(address="ws://holder.invalid/v1/realtime")
            call = rest.ring()
            holding.note(call)
            await holding.flush()
            assert await other.holder_of(call.id) == holding.me
            assert 0 < await other.client.ttl(f"{KEY_PREFIX}call:{call.id}") <= CALL_TTL_S
            (record,) = await other.calls()
            assert (record["id"], record["state"], record["engine"]["id"]) == (
                call.id,
                "ringing",
                holding.me.id,
            )
            del rest.calls[call.id]  # forgotten here: gone from Redis at the next beat
            await holding._publish(rest.calls.values(), every=True)
            assert await other.holder_of(call.id) is None
            assert await other.calls() == []
            assert await other.holder_of("rtc_" + "x" * MAX_ID_CHARS) is None  # never asked


async def test_an_action_for_a_holder_that_does_not_answer_times_out_clearly(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_shared, "FORWARD_TIMEOUT_S", 1.0)
    gone = Instance(address="ws://gone.invalid/v1/realtime")  # its inbox is never read
    with trio.fail_after(10):
        async with open_shared_state(redis_url) as store:
            with pytest.raises(HttpError) as late:
                await store.forward(gone, "hangup", "rtc_abc", b"")
            assert late.value.status == 504
            assert "ws://gone.invalid/v1/realtime" in late.value.message
            with pytest.raises(HttpError) as large:
                await store.forward(gone, "accept", "rtc_abc", b" " * (MAX_FORWARDED_BYTES + 1))
            assert large.value.status == 413
            # Unread actions do not pile up: the inbox keeps the newest, and expires.
            inbox = f"{KEY_PREFIX}inbox:{gone.id}"
            assert await store.client.llen(inbox) == 1
            assert 0 < await store.client.ttl(inbox) <= 30
