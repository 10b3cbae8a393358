"""Client secrets shared through a real ``redis-server``: minted by one store, read by another."""

from __future__ import annotations

import gc
import time
from contextlib import ExitStack

import pytest
import trio

from framework.engine._rest import ClientSecret
from framework.engine._shared import SharedStoreError, open_shared_state
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
