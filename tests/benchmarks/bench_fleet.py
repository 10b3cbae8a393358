"""Fleet benchmark: calls per worker process at p99 event latency under 50 ms, 1 to N workers.

Each level runs, all on this machine: a ``redis-server`` for the fleet (and
another for the benchmark's own figures, so that the fleet's command counts
are its own), the local engine in a child process (``cantata serve``, the
engine's builtin parts, the bot's rules), and W ``cantata worker`` processes
of capacity S running ``_fleet_bot.py``. This process rings W x S simulated
SIP calls through the engine's operator interface, accepts each as an
ingress would, and adds its attach job to ``P:jobs``; the workers take them
by their free slots (S each).

Each call talks (see ``_fleet_bot.py``): ``--turns`` text lines ``--gap-s``
apart, every other one a tool turn; its worker times, on its own clock, the
first reply text after a plain line, the tool call after a tool line and the
first reply text after the tool's output. A level passes when the p99 of
those, pooled over every call, is under ``--limit-ms`` with no turn missing.

Every call is up before any talks (the time to ring, accept, take and
attach them all is reported apart). Also measured, while the calls talk: the
workers', the engine's and everything else's CPU (from /proc; "other" is the
machine's noise, this process and the two Redis servers included), the load
average; and over the whole level, the fleet's Redis commands per call
(``INFO commandstats`` before the first ring and after the last call's
figures are in; commands run by the lease scripts count one each; the
workers' beats, renewals and scans are included). Run it on demand::

    python tests/benchmarks/bench_fleet.py [--workers 1 2 4] [--sessions 25 50 100]
        [--turns 6] [--gap-s 2] [--repeats 3] [--limit-ms 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import coredis
import httpx2
import orjson
import trio
from bench_engine import _die_with_parent, cpu_seconds, machine_cpu_seconds

from framework.engine import OperatorClient
from framework.fleet import AttachJob, FleetKeys, dump
from framework.protocol import RealtimeSessionCreateRequest
from framework.testing import redis_server
from framework.transport import open_rest_client, resolve_base_url

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BOT = HERE / "_fleet_bot.py"
RULES = """
fallback = "Sorry, I did not catch that."

[[rule]]
when = "weather in (?P<city>[A-Za-z ]+)"
call = "get_weather"
args = { city = "{city}" }

[[rule]]
after = "get_weather"
say = "In {city} it is {output}."

[[rule]]
when = "^hello"
say = "Hello! How can I help you today?"
"""
RINGING = 16
"""Calls rung at once (the operator interface is HTTP)."""


@contextlib.asynccontextmanager
async def child(
    command: list[str], ready: bytes, env: dict[str, str]
) -> AsyncIterator[tuple[subprocess.Popen[bytes], bytes]]:
    """A child process, once ``ready`` is in its output; SIGINT then kill on the way out."""
    proc = _start(command, env)
    assert proc.stdout is not None
    stream = trio.lowlevel.FdStream(os.dup(proc.stdout.fileno()))
    proc.stdout.close()
    out = b""
    try:
        with trio.fail_after(60):
            while not re.search(ready, out):
                chunk = await stream.receive_some()
                if not chunk:
                    raise RuntimeError(f"{command[3]} did not start: {out.decode()[-500:]}")
                out += chunk
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, stream)
            yield proc, out
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.send_signal(signal.SIGINT)  # a worker drains on the first
            with trio.move_on_after(10):
                await trio.to_thread.run_sync(proc.wait, abandon_on_cancel=True)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            await stream.aclose()


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Forked on the main thread (see bench_engine's _spawn): it dies with this process.
    return subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )


async def _drain(stream: trio.lowlevel.FdStream) -> None:
    """Reads a child's stderr so that it never blocks on a full pipe."""
    while await stream.receive_some():
        pass


@attrs.frozen(kw_only=True)
class Level:
    workers: int
    sessions: int
    latencies_s: list[float]
    missing: int
    worker_cpu: float
    engine_cpu: float
    other_cpu: float
    load: float
    commands: int
    commands_by_name: dict[str, int]
    wall_s: float
    attach_s: float
    gc_pauses_s: list[float]
    """The workers' full garbage collections over the level."""
    """From the first ring to every call up (rung, accepted, taken and attached)."""

    @property
    def calls(self) -> int:
        return self.workers * self.sessions

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return float("inf")
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def passes(self, limit_ms: float) -> bool:
        return self.missing == 0 and self.percentile(0.99) < limit_ms


def command_counts(info: dict[str, object]) -> dict[str, int]:
    """``INFO commandstats`` as calls by command."""
    counts = {}
    for name, value in info.items():
        if name.startswith("cmdstat_") and isinstance(value, dict):
            counts[name.removeprefix("cmdstat_")] = int(value["calls"])
    return counts


async def run_level(args: argparse.Namespace, workers: int, sessions: int) -> Level:
    with redis_server() as fleet_url, redis_server() as figures_url, _rules_file() as rules:
        env = {"BENCH_REDIS": figures_url, "BENCH_TURNS": str(args.turns)}
        env["BENCH_GAP_S"] = str(args.gap_s)
        serve = [sys.executable, "-m", "framework.apps.cli", "serve", "--port", "0"]
        serve += ["--rules", str(rules)]
        for kind in ("vad", "transcriber", "synthesizer"):
            serve += [f"--{kind}", "builtin"]
        async with child(serve, rb"ws://\S+", env) as (engine, banner):
            url = re.search(rb"ws://\S+", banner).group().decode()  # type: ignore[union-attr]
            work = [sys.executable, "-m", "framework.apps.cli", "worker", str(BOT)]
            work += ["--redis", fleet_url, "--url", url, "--capacity", str(sessions)]
            work += ["--prefix", "bench"]
            async with contextlib.AsyncExitStack() as stack:
                procs = [
                    (await stack.enter_async_context(child(work, rb"slots, calls on", env)))[0]
                    for _ in range(workers)
                ]
                return await _drive(fleet_url, figures_url, url, engine, procs, workers, sessions)


@contextlib.contextmanager
def _rules_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as directory:
        path = Path(directory) / "rules.toml"
        path.write_text(RULES)
        yield path


async def _drive(
    fleet_url: str,
    figures_url: str,
    url: str,
    engine: subprocess.Popen[bytes],
    procs: list[subprocess.Popen[bytes]],
    workers: int,
    sessions: int,
) -> Level:
    keys = FleetKeys("bench")
    calls = workers * sessions
    fleet = coredis.Redis.from_url(fleet_url, decode_responses=True)
    figures = coredis.Redis.from_url(figures_url, decode_responses=True)
    async with (
        fleet,
        figures,
        httpx2.AsyncClient(timeout=60) as http,
        open_rest_client(resolve_base_url(url), api_key=None) as rest,
    ):
        operator = OperatorClient(http, resolve_base_url(url).removesuffix("/v1"), api_key=None)
        before = command_counts(await fleet.info("commandstats"))
        started = time.perf_counter()
        limiter = trio.CapacityLimiter(RINGING)

        async def ring() -> None:
            async with limiter:
                rung = await operator.ring(caller="sip:+14155550123@carrier.example")
                call_id = rung["call_id"]
                config = RealtimeSessionCreateRequest(type="realtime")
                await rest.accept_call(call_id, session=config)
                job = AttachJob(call_id=call_id, event=rung["webhook"])
                await fleet.xadd(keys.jobs, {"json": dump(job)})

        async with trio.open_nursery() as nursery:
            for _ in range(calls):
                nursery.start_soon(ring)
        with trio.fail_after(60 + calls / 10):
            for _ in range(calls):
                await figures.blpop(["bench:up"], timeout=0)
        attached = time.perf_counter() - started
        # From here on the calls talk: what the level's CPU and latency are about.
        worker0 = sum(cpu_seconds(p.pid) for p in procs)
        engine0, all0, mine0 = cpu_seconds(engine.pid), machine_cpu_seconds(), _mine()
        talking = time.perf_counter()
        await figures.xadd("bench:go", {"go": "1"})
        found = []
        with trio.fail_after(120 + 3 * calls / RINGING):
            while len(found) < calls:
                _, raw = await figures.blpop(["bench:latency"], timeout=0)
                found.append(orjson.loads(raw))
        wall = time.perf_counter() - talking
        worker_cpu = sum(cpu_seconds(p.pid) for p in procs) - worker0
        engine_cpu = cpu_seconds(engine.pid) - engine0
        other = (machine_cpu_seconds() - all0) - worker_cpu - engine_cpu - (_mine() - mine0)
        after = command_counts(await fleet.info("commandstats"))
        counted = {
            name: after.get(name, 0) - before.get(name, 0)
            for name in after
            if name != "info" and after.get(name, 0) != before.get(name, 0)
        }
        latencies: list[float] = []
        missing = 0
        pauses = {f["pid"]: f["gc_pauses_s"] for f in found}  # each process's last word
        for figure in found:
            latencies += figure["latency_s"]
            missing += figure["missing"]
        return Level(
            workers=workers,
            sessions=sessions,
            latencies_s=latencies,
            missing=missing,
            worker_cpu=100 * worker_cpu / wall,
            engine_cpu=100 * engine_cpu / wall,
            other_cpu=max(0.0, 100 * other / wall),
            load=os.getloadavg()[0],
            commands=sum(counted.values()),
            commands_by_name=counted,
            wall_s=wall,
            attach_s=attached,
            gc_pauses_s=[p for each in pauses.values() for p in each],
        )


def _mine() -> float:
    return sum(os.times()[:2])


def report(level: Level, limit_ms: float) -> None:
    ok = "pass" if level.passes(limit_ms) else "FAIL"
    top = sorted(level.commands_by_name.items(), key=lambda kv: -kv[1])[:6]
    print(
        f"{level.workers} x {level.sessions:>4} = {level.calls:>4} calls: p50 "
        f"{level.percentile(0.5):6.1f} ms, p99 {level.percentile(0.99):7.1f} ms, "
        f"missing {level.missing}, {len(level.latencies_s)} events; all up in "
        f"{level.attach_s:.1f} s; {len(level.gc_pauses_s)} full collections, longest "
        f"{1000 * max(level.gc_pauses_s, default=0):.0f} ms; workers CPU "
        f"{level.worker_cpu:.0f}%, engine {level.engine_cpu:.0f}%, other {level.other_cpu:.0f}%, "
        f"load {level.load:.2f}; Redis {level.commands / level.calls:.1f} commands/call "
        f"over {level.wall_s:.0f} s ({', '.join(f'{k} {v}' for k, v in top)}) {ok}",
        flush=True,
    )


async def main_async(args: argparse.Namespace) -> None:
    results: dict[tuple[int, int], list[Level]] = {}
    for workers in args.workers:
        for sessions in args.sessions:
            for _ in range(args.repeats):
                level = await run_level(args, workers, sessions)
                report(level, args.limit_ms)
                results.setdefault((workers, sessions), []).append(level)
    print("\nsummary (p99 ms over repeats: median [min-max]; passes / repeats)")
    for (workers, sessions), levels in results.items():
        p99s = [lv.percentile(0.99) for lv in levels]
        per_call = [lv.commands / lv.calls for lv in levels]
        passed = sum(lv.passes(args.limit_ms) for lv in levels)
        print(
            f"{workers} workers x {sessions:>4}: p99 {statistics.median(p99s):.1f} "
            f"[{min(p99s):.1f}-{max(p99s):.1f}] ms, {passed}/{len(levels)} pass; Redis "
            f"{statistics.median(per_call):.1f} commands/call; workers CPU "
            f"{statistics.median(lv.worker_cpu for lv in levels):.0f}%, engine "
            f"{statistics.median(lv.engine_cpu for lv in levels):.0f}%, other "
            f"{statistics.median(lv.other_cpu for lv in levels):.0f}%, load "
            f"{statistics.median(lv.load for lv in levels):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--sessions", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--gap-s", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit-ms", type=float, default=50.0)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)
    trio.run(main_async, args)


if __name__ == "__main__":
    main()
