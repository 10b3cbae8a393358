"""The real ``redis-server`` fixture the fleet's tests stand on."""

from __future__ import annotations

import coredis
import trio


async def test_each_test_starts_from_an_empty_database(redis_url: str) -> None:
    with trio.fail_after(10):
        client = coredis.Redis.from_url(redis_url, decode_responses=True)
        async with client:
            assert await client.dbsize() == 0
            await client.xadd("jobs", {"call_id": "rtc_1"})
            assert await client.xlen("jobs") == 1


async def test_the_next_test_does_not_see_the_last_ones_keys(redis_url: str) -> None:
    with trio.fail_after(10):
        client = coredis.Redis.from_url(redis_url, decode_responses=True)
        async with client:
            assert await client.exists(["jobs"]) == 0
