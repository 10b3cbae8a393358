"""What the fleet's process tests share: an engine, worker processes, calls, and the bot's reports.

The engine runs in the test's own process on a loopback port (so that a test
can read the conversation the engine holds for a call); each worker is a
``cantata worker`` process of its own, running :mod:`tests.fleet.fleet_bot`.
A call is rung through the engine's operator interface, accepted as an
ingress would, and handed to the fleet as an :class:`AttachJob` on ``P:jobs``.
The caller speaks through the keypad (``press``); what the bot did comes back
on a Redis stream that :meth:`Fleet.next_report` reads with blocking reads.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import coredis
import httpx2
import trio

from framework.engine import (
    BrainOutput,
    BrainRequest,
    Engine,
    EngineSession,
    OperatorClient,
    Rules,
    Say,
    ScriptedBrain,
    open_engine,
)
from framework.fleet import AttachJob, FleetKeys, WorkerBeat, dump, load
from framework.fleet._control import SAY
from framework.fleet._worker import BEAT_EVERY_S
from framework.protocol import RealtimeSessionCreateRequest
from framework.transport import open_rest_client, resolve_base_url

from .fleet_bot import EVENTS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BOT = HERE / "fleet_bot.py"
PREFIX = "fleet-test"
LATENCY_MS = 5
"""Before every event the engine sends: a reply is still streaming while the next key comes."""
_BANNER = re.compile(r"worker (\S+): \d+ slots, calls on ")
_OPS = re.compile(r", ops at (\S+)")
STARTUP_S = 30.0
"""A worker process's start (imports) on a loaded machine."""


@attrs.define(eq=False)
class WorkerProcess:
    """One ``cantata worker`` process."""

    process: trio.Process
    worker_id: str = ""
    ops_url: str | None = None
    log: list[str] = attrs.Factory(list)
    _ready: trio.Event = attrs.Factory(trio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def read_log(self) -> None:
        """Keeps the worker's stderr (its log); its first line names the worker."""
        assert self.process.stderr is not None
        pending = b""
        async for chunk in self.process.stderr:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode(errors="replace")
                self.log.append(text)
                banner = _BANNER.search(text)
                if banner is not None and not self._ready.is_set():
                    self.worker_id = banner.group(1)
                    ops = _OPS.search(text)
                    self.ops_url = ops.group(1) if ops else None
                    self._ready.set()
        self._ready.set()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)


@attrs.define(eq=False)
class Fleet:
    """The engine, the Redis, the workers and a report reader."""

    engine: Engine
    realtime_url: str
    redis_url: str
    redis: Any
    operator: OperatorClient
    rest: Any
    http: httpx2.AsyncClient
    nursery: trio.Nursery
    keys: FleetKeys = attrs.Factory(lambda: FleetKeys(PREFIX))
    workers: list[WorkerProcess] = attrs.Factory(list)
    _last_report: str = "0-0"

    async def start_worker(
        self, *, capacity: int, grace_s: float = 30.0, ops: bool = False
    ) -> WorkerProcess:
        """Starts a worker process; returns once it serves (its banner is logged).

        ``ops``: it serves ``/healthz`` and ``/metrics`` (at ``worker.ops_url``).
        """
        env = {**os.environ, "FLEET_TEST_REDIS": self.redis_url, "PYTHONPATH": str(ROOT)}
        env.pop("OPENAI_API_KEY", None)
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "framework.apps.cli",
                "worker",
                str(BOT),
                "--redis",
                self.redis_url,
                "--url",
                self.realtime_url,
                "--prefix",
                PREFIX,
                "--capacity",
                str(capacity),
                "--grace-s",
                str(grace_s),
                *(["--ops-port", "0"] if ops else []),
            ],
            env=env,
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        worker = WorkerProcess(process)
        self.workers.append(worker)
        self.nursery.start_soon(worker.read_log)
        with trio.fail_after(STARTUP_S):
            await worker._ready.wait()
        assert worker.worker_id, f"the worker did not start: {worker.log[-5:]}"
        return worker

    async def call(self, *, job: bool = True) -> str:
        """Rings a call, accepts it as an ingress would, and (``job``) adds its attach job."""
        rung = await self.operator.ring(caller="sip:+14155550123@carrier.example")
        call_id: str = rung["call_id"]
        await self.rest.accept_call(call_id, session=RealtimeSessionCreateRequest(type="realtime"))
        if job:
            await self.add_job(call_id, rung["webhook"])
        return call_id

    async def add_job(self, call_id: str, event: Mapping[str, Any] | None = None) -> None:
        job = AttachJob(call_id=call_id, caller="+14155550123", event=dict(event or {}))
        await self.redis.xadd(self.keys.jobs, {"json": dump(job)})

    async def press(self, call_id: str, digits: str) -> None:
        """The caller presses keys (the bot turns each into a line it says)."""
        await self.operator.dtmf(call_id, digits)

    async def next_report(
        self, kind: str, *, where: Callable[[dict[str, str]], bool] = lambda r: True
    ) -> dict[str, str]:
        """The bot's next report of ``kind`` (earlier ones of other kinds are passed over)."""
        while True:
            read = await self.redis.xread({EVENTS: self._last_report}, count=1, block=0)
            for entries in read.values():
                for entry in entries:
                    self._last_report = entry.identifier
                    report = dict(entry.field_values)
                    if report["kind"] == kind and where(report):
                        return report

    async def owner(self, call_id: str) -> str | None:
        found: str | None = await self.redis.hget(self.keys.calls, call_id)
        return found

    async def beat(self, worker: WorkerProcess) -> WorkerBeat | None:
        raw = await self.redis.get(self.keys.worker(worker.worker_id))
        return load(WorkerBeat, raw) if raw else None

    async def beat_until(
        self, worker: WorkerProcess, condition: Callable[[WorkerBeat], bool]
    ) -> WorkerBeat:
        """The worker's beat, once it says ``condition`` (read at each beat's interval)."""
        while True:
            beat = await self.beat(worker)
            if beat is not None and condition(beat):
                return beat
            await trio.sleep(BEAT_EVERY_S / 4)  # beats are values, not a stream to block on

    def engine_session(self, call_id: str) -> EngineSession:
        """The engine's live session attached to the call."""
        call = self.engine.rest.calls[call_id]
        (session,) = [s for s in self.engine.sessions if s.id == call.session_id]
        return session

    async def stop(self) -> None:
        for worker in self.workers:
            if worker.process.returncode is None:
                worker.process.kill()
        with trio.move_on_after(10):
            for worker in self.workers:
                await worker.process.wait()


class ObedientBrain(ScriptedBrain):
    """The scripted model, which also does what a ``say`` order's instructions ask.

    The hosted model follows a response's instructions; the scripted one
    answers by its rules only, so this much of the model is played here.
    """

    async def respond(self, request: BrainRequest) -> Sequence[BrainOutput]:
        asked = _SAY.search(request.instructions)
        if asked is not None:
            return [Say(asked.group(1))]
        return await super().respond(request)


_SAY = re.compile(re.escape(SAY.format(text="")) + "(.+)$")


def engine() -> Engine:
    rules = Rules.from_file(HERE / "fleet_bot.toml")
    return Engine(brain=ObedientBrain(rules), latency_ms=LATENCY_MS)


@asynccontextmanager
async def open_fleet(redis_url: str) -> AsyncIterator[Fleet]:
    """The engine and an empty fleet; worker processes are killed at the end."""
    redis = coredis.Redis.from_url(redis_url, decode_responses=True)
    the_engine = engine()
    async with (
        redis,
        open_engine(the_engine) as running,
        httpx2.AsyncClient(timeout=30) as http,
        open_rest_client(resolve_base_url(running.url), api_key=None) as rest,
        trio.open_nursery() as nursery,
    ):
        operator = OperatorClient(http, running.http_url.removesuffix("/v1"), api_key=None)
        fleet = Fleet(the_engine, running.url, redis_url, redis, operator, rest, http, nursery)
        try:
            yield fleet
        finally:
            with trio.CancelScope(shield=True):
                await fleet.stop()
            nursery.cancel_scope.cancel()


def terminate(worker: WorkerProcess) -> None:
    worker.signal(signal.SIGTERM)
