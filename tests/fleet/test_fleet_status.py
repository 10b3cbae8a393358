"""``cantata fleet`` and the fleet roles of ``cantata serve``, as commands in their own processes.

The status is read from a real Redis holding what workers would have
written; the ingress and the engine's operations port are started as a user
starts them, and stopped with a signal.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import trio
from prometheus_client.parser import text_string_to_metric_families

from framework.fleet import FleetKeys, WorkerBeat, dump, open_redis, read_status

KEYS = FleetKeys("status")
NOW = 1_800_000_000.0
COMMAND = [sys.executable, "-m", "framework.apps.cli"]


async def cantata(*args: str, env: dict[str, str] | None = None) -> trio.CompletedProcess[bytes]:
    return await trio.run_process(
        [*COMMAND, *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


async def populate(redis_url: str) -> None:
    """Three workers (up, draining, gone), two calls (one whose lease expired), jobs."""
    async with open_redis(redis_url) as redis:
        up = WorkerBeat(worker_id="w-up", capacity=4, active=2, loop_lag_ms=3.5, beat_at=NOW - 1)
        leaving = WorkerBeat(
            worker_id="w-leaving", capacity=4, active=1, draining=True, beat_at=NOW - 2
        )
        for beat in (up, leaving):
            await redis.zadd(KEYS.workers, {beat.worker_id: beat.beat_at})
            await redis.set(KEYS.worker(beat.worker_id), dump(beat), ex=60)
        await redis.zadd(KEYS.workers, {"w-gone": NOW - 30})  # registered, beat expired
        await redis.hset(KEYS.calls, {"rtc_live": "w-up", "rtc_orphan": "w-gone"})
        await redis.set(KEYS.lease("rtc_live"), "w-up", ex=60)
        for n in range(3):
            await redis.xadd(KEYS.jobs, {"json": f"job {n}"})
        await redis.xgroup_create(KEYS.jobs, "workers", "0")
        await redis.xreadgroup("workers", "w-up", streams={KEYS.jobs: ">"}, count=1)


async def test_the_status_reads_workers_calls_and_jobs(redis_url: str) -> None:
    with trio.fail_after(20):
        await populate(redis_url)
        async with open_redis(redis_url) as redis:
            status = await read_status(redis, KEYS, now=NOW)
            bounded = await read_status(redis, KEYS, now=NOW, calls_listed=1)
    states = {w.worker_id: (w.state, round(w.beat_age_s)) for w in status.workers}
    assert states == {"w-up": ("up", 1), "w-leaving": ("draining", 2), "w-gone": ("gone", 30)}
    assert (status.active, status.capacity) == (3, 8)
    assert {(c.call_id, c.worker_id, c.leased) for c in status.calls} == {
        ("rtc_live", "w-up", True),
        ("rtc_orphan", "w-gone", False),
    }
    assert (status.jobs, status.jobs_pending, status.jobs_lag) == (3, 1, 2)
    text = status.render()
    assert "3/8 calls, jobs 3 (pending 1, waiting 2)" in text
    assert re.search(r"rtc_orphan\s+w-gone\s+expired: awaiting recovery", text)
    assert (len(bounded.calls), bounded.calls_total) == (1, 2)
    assert "... and 1 more calls" in bounded.render()


async def test_cantata_fleet_prints_json(redis_url: str) -> None:
    with trio.fail_after(30):
        await populate(redis_url)
        result = await cantata("fleet", "--redis", redis_url, "--prefix", "status", "--json")
    assert result.returncode == 0, result.stderr.decode()
    status = json.loads(result.stdout)
    # Oldest beat first: the ones to look at lead.
    assert [w["id"] for w in status["workers"]] == ["w-gone", "w-leaving", "w-up"]
    assert [w["state"] for w in status["workers"]] == ["gone", "draining", "up"]
    assert status["workers"][2]["loop_lag_ms"] == 3.5
    assert status["jobs"] == {"length": 3, "pending": 1, "lag": 2}
    assert status["calls_total"] == 2


async def test_cantata_fleet_with_redis_unreachable_is_one_line() -> None:
    with trio.fail_after(30):
        result = await cantata("fleet", "--redis", "redis://:hunter2@127.0.0.1:1/0")
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cantata fleet: cannot reach Redis at redis://:***@127.0.0.1:1/0")
    assert "hunter2" not in lines[0]  # never the password


async def test_the_ingress_role_says_what_it_needs_in_one_line() -> None:
    with trio.fail_after(30):
        no_secret = await cantata(
            "serve", "--role", "ingress", "--redis", "redis://127.0.0.1:1/0",
            env={"OPENAI_WEBHOOK_SECRET": "", "TWILIO_AUTH_TOKEN": ""},
        )  # fmt: skip
        no_redis = await cantata(
            "serve", "--role", "ingress", "--redis", "redis://127.0.0.1:1/0",
            env={"TWILIO_AUTH_TOKEN": "token"},
        )  # fmt: skip
        with_tls = await cantata(
            "serve", "--role", "ingress", "--certfile", "c.pem", "--keyfile", "k.pem",
            env={"TWILIO_AUTH_TOKEN": "token"},
        )  # fmt: skip
    assert with_tls.returncode == 2
    assert "load balancer" in with_tls.stderr.decode()
    assert no_secret.returncode == 2
    assert no_secret.stderr.decode().count("\n") == 1
    assert "OPENAI_WEBHOOK_SECRET" in no_secret.stderr.decode()
    assert no_redis.returncode == 1
    assert no_redis.stderr.decode().count("\n") == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in no_redis.stderr.decode()


@asynccontextmanager
async def running(*args: str, env: dict[str, str], ready: str) -> AsyncIterator[list[str]]:
    """A ``cantata`` command running until the block ends (then SIGTERM); yields its
    output lines up to the one matching ``ready``."""
    process = await trio.lowlevel.open_process(
        [*COMMAND, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    assert process.stdout is not None
    lines: list[str] = []
    buffer = b""
    try:
        while not any(re.search(ready, line) for line in lines):
            chunk = await process.stdout.receive_some()
            assert chunk, f"the command ended before it was ready: {lines}"
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            lines.extend(line.decode() for line in done)
        yield lines
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stdout.aclose()


def url_in(lines: list[str], pattern: str) -> str:
    for line in lines:
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise AssertionError(f"{pattern!r} not in {lines}")


async def test_the_ingress_starts_serves_its_health_and_stops_on_sigterm(redis_url: str) -> None:
    with trio.fail_after(40):
        async with (
            running(
                "serve", "--role", "ingress", "--redis", redis_url, "--port", "0",
                env={"TWILIO_AUTH_TOKEN": "token", "OPENAI_WEBHOOK_SECRET": ""},
                ready="Ready",
            ) as lines,
            httpx2.AsyncClient() as http,
        ):  # fmt: skip
            base = url_in(lines, r"Cantata ingress on (http://\S+)")
            health = await http.get(base + "/healthz")
            assert health.status_code == 200
            assert health.json()["checks"] == {"redis": "ok"}
            sip = await http.post(base + "/sip/webhook", content=b"{}")
            assert sip.status_code == 403  # SIP is not served without its secret
            assert "OPENAI_WEBHOOK_SECRET" in sip.text


async def test_the_engine_serves_its_metrics_on_the_ops_port() -> None:
    with trio.fail_after(40):
        async with (
            running("serve", "--port", "0", "--ops-port", "0", env={}, ready="Ready") as lines,
            httpx2.AsyncClient() as http,
        ):
            ops = url_in(lines, r"Health and metrics on (http://\S+)/healthz")
            assert (await http.get(ops + "/healthz")).json()["role"] == "engine"
            text = (await http.get(ops + "/metrics")).text
    found = {
        (s.name, s.labels.get("role")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert found[("cantata_active_sessions", "engine")] == 0.0
    assert found[("cantata_connections", "engine")] >= 0.0
    assert found[("cantata_info", "engine")] == 1.0
