"""Every role's operations: Prometheus metrics that parse, and a health check that tells why.

The metrics are read back through ``prometheus_client``'s own parser (what a
scraper sees); turn latencies come from a real session's ``TurnMeasured`` on
trio's MockClock, so their buckets are known exactly; the health endpoint is
served over a real socket and checked against a live Redis and a stopped one.
"""

from __future__ import annotations

import gc
import time
from urllib.parse import urlsplit

import coredis
import httpx2
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio.testing import MockClock

from framework import ClockSink, open_session
from framework.fleet import (
    JOB_GROUP,
    FleetKeys,
    LoopLag,
    Ops,
    RoleMetrics,
    open_ops_server,
    queue_depth,
    redis_probe,
    sample_queue,
    watch_loop,
)
from framework.runtime import TurnMeasured
from framework.testing import ScriptedServer, redis_server
from tests.runtime.test_timing import Talker


def samples(metrics: RoleMetrics | str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels, as a scraper parses it."""
    text = metrics if isinstance(metrics, str) else metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: RoleMetrics | str, name: str, **labels: str) -> float | None:
    key = (name, tuple(sorted({"role": "worker", **labels}.items())))
    return samples(metrics).get(key)


def test_gauges_appear_once_set_and_counters_start_at_zero() -> None:
    metrics = RoleMetrics("worker")
    assert value(metrics, "cantata_active_sessions") is None  # never set: not shown as 0
    assert value(metrics, "cantata_fleet_free") is None
    assert value(metrics, "cantata_jobs_taken_total") == 0.0
    assert value(metrics, "cantata_info") == 1.0
    metrics.set_sessions(active=3, capacity=8)
    metrics.set_queue(pending=2, lag=5)
    metrics.jobs_taken.inc()
    metrics.rejected_busy.inc(2)
    assert value(metrics, "cantata_active_sessions") == 3.0
    assert value(metrics, "cantata_capacity") == 8.0
    assert (value(metrics, "cantata_jobs_pending"), value(metrics, "cantata_jobs_lag")) == (2, 5)
    assert value(metrics, "cantata_jobs_taken_total") == 1.0
    assert value(metrics, "cantata_calls_rejected_busy_total") == 2.0


def test_no_label_but_the_role_whatever_happens() -> None:
    metrics = RoleMetrics("ingress")
    for _ in range(50):  # fifty calls must not make fifty series
        metrics.calls_accepted.inc()
        metrics.webhooks_deduplicated.inc()
        metrics.set_sessions(active=1)
    labels = {labels for _, labels in samples(metrics)}
    assert {dict(pairs).get("role") for pairs in labels} == {"ingress"}
    assert {key for pairs in labels for key, _ in pairs} <= {"role", "le"}


def test_two_roles_in_one_process_keep_their_own_registries() -> None:
    engine, worker = RoleMetrics("engine"), RoleMetrics("worker")
    engine.set_sessions(active=4)
    assert value(worker, "cantata_active_sessions") is None
    assert samples(engine)[("cantata_active_sessions", (("role", "engine"),))] == 4.0


async def test_turn_latencies_come_from_the_sessions_turns(autojump_clock: MockClock) -> None:
    metrics = RoleMetrics("worker")
    server = ScriptedServer()
    async with open_session(Talker(), connection=server, audio_out=ClockSink()) as session:
        session.observe(metrics.observe)
        measured = trio.Event()
        session.observe(lambda event: measured.set() if isinstance(event, TurnMeasured) else None)
        await server.send(server.speech_started(0))
        await trio.sleep(1.0)
        await server.send(server.speech_stopped(1000))
        await trio.sleep(0.437)  # the server thinks: 437 ms, then 100 ms to the first audio
        created, *rest = server.audio_response(bytes(48 * 500))
        await server.send(created)
        await trio.sleep(0.1)
        await server.send(*rest)
        await measured.wait()
    # 537 ms from the end of speech to the first audio: above 0.5 s, within 0.75 s.
    assert value(metrics, "cantata_turn_first_audio_seconds_count") == 1.0
    assert value(metrics, "cantata_turn_first_audio_seconds_bucket", le="0.5") == 0.0
    assert value(metrics, "cantata_turn_first_audio_seconds_bucket", le="0.75") == 1.0
    assert abs((value(metrics, "cantata_turn_first_audio_seconds_sum") or 0) - 0.537) < 1e-9
    assert value(metrics, "cantata_turn_first_text_seconds_count") == 0.0  # no transcript came


async def test_the_loop_lag_is_sampled(autojump_clock: MockClock) -> None:
    metrics = RoleMetrics("engine")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_loop, metrics, LoopLag())
        await trio.sleep(0.5)
        deadline = time.perf_counter() + 0.03
        while time.perf_counter() < deadline:
            pass  # a task step that keeps the loop 30 ms, as a big parse would
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    lag = samples(metrics)[("cantata_loop_lag_seconds", (("role", "engine"),))]
    assert 0.03 <= lag < 1.0


async def test_queue_depth_reads_the_workers_group(redis_url: str) -> None:
    keys = FleetKeys("q")
    metrics = RoleMetrics("ingress")
    with trio.fail_after(10):
        async with coredis.Redis.from_url(redis_url, decode_responses=True) as redis:
            assert await queue_depth(redis, keys) == (0, 0)  # no stream yet
            for n in range(5):
                await redis.xadd(keys.jobs, {"json": f"job {n}"})
            assert await queue_depth(redis, keys) == (0, 5)  # no group yet: all unread
            await redis.xgroup_create(keys.jobs, JOB_GROUP, "0")
            await redis.xreadgroup(JOB_GROUP, "w1", streams={keys.jobs: ">"}, count=2)
            assert await sample_queue(redis, keys, metrics) == (2, 3)
    assert value(metrics, "cantata_jobs_pending", role="ingress") == 2.0
    assert value(metrics, "cantata_jobs_lag", role="ingress") == 3.0


async def test_healthz_and_metrics_over_http(redis_url: str) -> None:
    metrics = RoleMetrics("worker")
    refreshed = []

    async def refresh() -> None:
        refreshed.append(1)
        metrics.set_sessions(active=len(refreshed), capacity=4)

    with trio.fail_after(20):
        async with (
            coredis.Redis.from_url(redis_url, decode_responses=True) as redis,
            httpx2.AsyncClient() as http,
        ):
            ops = Ops(metrics=metrics, probes={"redis": redis_probe(redis)}, refresh=refresh)
            async with open_ops_server(ops) as base:
                healthy = await http.get(base + "/healthz")
                assert healthy.status_code == 200
                assert healthy.json() == {
                    "status": "ok",
                    "role": "worker",
                    "checks": {"redis": "ok"},
                }

                scraped = await http.get(base + "/metrics")
                assert scraped.status_code == 200
                assert scraped.headers["content-type"].startswith("text/plain")
                assert value(scraped.text, "cantata_active_sessions") == 1.0  # refreshed first
                assert value(scraped.text, "cantata_capacity") == 4.0

                ops.draining = True
                draining = await http.get(base + "/healthz")
                assert draining.status_code == 503
                assert draining.json()["reason"] == "draining"
                assert (await http.get(base + "/livez")).status_code == 200  # alive all the same
                assert value((await http.get(base + "/metrics")).text, "cantata_draining") == 1.0

                assert (await http.get(base + "/nowhere")).status_code == 404
                assert (await http.post(base + "/healthz")).status_code == 405


# coredis (6.9) makes a connection's buffers before it connects and closes them only
# once it ran: each connection attempt to a stopped server leaves three for the
# collector, which warns of each. Nothing is kept; the warnings are swept here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_healthz_is_503_with_the_reason_when_redis_is_down() -> None:
    with trio.fail_after(30), redis_server() as url:  # a server of its own, to stop
        async with (
            coredis.Redis.from_url(url, decode_responses=True) as redis,
            httpx2.AsyncClient() as http,
        ):
            ops = Ops(metrics=RoleMetrics("ingress"), probes={"redis": redis_probe(redis)})
            async with open_ops_server(ops) as base:
                assert (await http.get(base + "/healthz")).status_code == 200
                await _shut_down(url)
                down = await http.get(base + "/healthz")
                assert down.status_code == 503
                report = down.json()
                assert report["reason"].startswith("redis: unreachable")
                assert report["checks"]["redis"].startswith("unreachable")
                # The process itself is fine, and still says so.
                assert (await http.get(base + "/livez")).status_code == 200
    gc.collect()  # coredis's abandoned buffers warn now, under this test's filters


async def _shut_down(url: str) -> None:
    """Stops a Redis server as an outage would: SHUTDOWN NOSAVE, then its hang-up."""
    address = urlsplit(url)
    assert address.hostname is not None and address.port is not None
    stream = await trio.open_tcp_stream(address.hostname, address.port)
    async with stream:
        await stream.send_all(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        while await stream.receive_some():
            pass  # the server closes the connection as it exits


async def test_a_probe_that_hangs_fails_in_time(autojump_clock: MockClock) -> None:
    async def hangs() -> str | None:
        await trio.sleep_forever()
        return None

    ops = Ops(metrics=RoleMetrics("engine"), probes={"slow": hangs}, probe_timeout_s=2.0)
    started = trio.current_time()
    ready, report = await ops.health()
    assert not ready
    assert report["reason"] == "slow: no answer in 2 s"
    assert trio.current_time() - started == 2.0
