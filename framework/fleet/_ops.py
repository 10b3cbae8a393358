"""Operations for every role: ``GET /healthz``, ``GET /livez`` and Prometheus ``GET /metrics``.

Each process (the engine of ``cantata serve``, an ingress, a worker) makes
one :class:`RoleMetrics` and one :class:`Ops`, and serves them with
:func:`serve_ops` on a port of its own, or mounts the :class:`Ops` ASGI app
beside its own routes (the ingress does). How a role wires it::

    metrics = RoleMetrics("worker")
    ops = Ops(metrics=metrics, probes={"redis": redis_probe(redis)}, refresh=refresh)
    nursery.start_soon(watch_loop, metrics)          # or metrics.set_loop_lag() at each beat
    ops_url = await nursery.start(partial(serve_ops, ops, host="0.0.0.0", port=9100))
    ...
    metrics.set_sessions(active=len(calls), capacity=capacity)   # as calls come and go
    metrics.jobs_taken.inc()                                     # each job read off P:jobs
    session.observe(metrics.observe)                             # turn latencies
    ops.draining = True                                          # SIGTERM: /healthz turns 503

What it answers:

* ``/healthz`` (readiness): 200 ``{"status": "ok", "role": ..., "checks": {...}}``
  when every probe passes and the process is not draining; 503
  ``{"status": "unavailable", "reason": "...", ...}`` otherwise, the reason
  one line (``redis: unreachable (...)``, ``draining``). Probes run at once,
  each within :data:`PROBE_TIMEOUT_S`.
* ``/livez`` (liveness): 200 while the event loop answers at all. A worker
  that drains or lost Redis is not ready, but restarting it would only cut
  its calls short.
* ``/metrics``: the exposition format, after ``refresh`` (if any) has
  sampled what is read rather than counted (queue depth, fleet capacity).

Every metric carries one label, ``role`` (``engine``, ``ingress`` or
``worker``), and nothing else: no label grows with calls. Gauges appear once
set (a worker never shows the ingress's fleet view as zeros); counters and
histograms start at zero. Times are in seconds, as Prometheus names them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import attrs
import orjson
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from framework.engine import (
    LinkLimits,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    respond,
    serve_links,
    server_config,
)
from framework.errors import CantataError
from framework.runtime import SessionEvent, TurnMeasured, TurnMetrics

from ._lag import LoopLag
from ._schema import JOB_GROUP, FleetKeys

_log = logging.getLogger("cantata.fleet")

Role: TypeAlias = Literal["engine", "ingress", "worker"]
Probe: TypeAlias = Callable[[], Awaitable[str | None]]
"""A health check: ``None`` when fine, else why not (one line)."""

PROBE_TIMEOUT_S = 2.0
"""How long a probe may take before it counts as failed."""
LOOP_SAMPLE_S = 1.0
"""How often :func:`watch_loop` reads the loop lag."""
LATENCY_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Turn latency buckets: fine below a second, where a voice agent's users notice."""
TOOL_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Tool run buckets: from a lookup to a slow backend."""


class RoleMetrics:
    """The Prometheus metrics of one process, in a registry of its own.

    Args:
        role: which role the process plays; every sample is labelled with it.
        registry: where the metrics live (default: a new one, never the
            library's global registry, so that several roles can share a
            process in tests).
    """

    def __init__(self, role: Role, *, registry: CollectorRegistry | None = None) -> None:
        self.role = role
        self.registry = registry if registry is not None else CollectorRegistry()
        gauge = partial(Gauge, labelnames=("role",), registry=self.registry)
        counter = partial(Counter, labelnames=("role",), registry=self.registry)
        self._active = gauge("cantata_active_sessions", "Sessions (calls) held now.")
        self._capacity = gauge("cantata_capacity", "Sessions this process may hold at once.")
        self._draining = gauge("cantata_draining", "1 while draining: no new calls taken.")
        self._loop_lag = gauge(
            "cantata_loop_lag_seconds",
            "Longest event-loop stretch without I/O since the last sample.",
        )
        self._pending = gauge(
            "cantata_jobs_pending", "Attach jobs delivered to a worker, not yet acknowledged."
        )
        self._lag = gauge("cantata_jobs_lag", "Attach jobs in the stream no worker has read yet.")
        self._connections = gauge("cantata_connections", "Client connections open now.")
        self._calls = gauge(
            "cantata_calls", "SIP calls in the engine's registry (the operator interface's)."
        )
        self._fleet_workers = gauge("cantata_fleet_workers", "Workers with a live beat.")
        self._fleet_capacity = gauge(
            "cantata_fleet_capacity", "Sessions the live workers hold at most."
        )
        self._fleet_free = gauge("cantata_fleet_free", "Free slots of the live workers.")
        self.jobs_taken = counter("cantata_jobs_taken", "Attach jobs read off the stream.").labels(
            role
        )
        self.calls_accepted = counter("cantata_calls_accepted", "Calls accepted.").labels(role)
        self.rejected_busy = counter(
            "cantata_calls_rejected_busy", "Calls turned away busy: no free slot."
        ).labels(role)
        self.webhooks_deduplicated = counter(
            "cantata_webhooks_deduplicated", "Webhook deliveries dropped as already handled."
        ).labels(role)
        self.webhooks_refused = counter(
            "cantata_webhooks_refused", "Webhooks refused: a bad signature, body or form."
        ).labels(role)
        self.interruptions = counter(
            "cantata_turn_interruptions", "Barge-ins into the assistant's turns."
        ).labels(role)
        histogram = partial(Histogram, labelnames=("role",), registry=self.registry)
        self.first_audio = histogram(
            "cantata_turn_first_audio_seconds",
            "From the end of the user's speech (or message) to the first assistant audio.",
            buckets=LATENCY_BUCKETS_S,
        ).labels(role)
        self.first_text = histogram(
            "cantata_turn_first_text_seconds",
            "From the end of the user's speech (or message) to the first assistant text.",
            buckets=LATENCY_BUCKETS_S,
        ).labels(role)
        self.tool_time = histogram(
            "cantata_tool_seconds", "A function tool's own run.", buckets=TOOL_BUCKETS_S
        ).labels(role)
        Gauge(
            "cantata_info", "The role this process plays.", ["role"], registry=self.registry
        ).labels(role).set(1)

    # --- gauges ----------------------------------------------------------------------

    def _set(self, gauge: Gauge, value: float) -> None:
        gauge.labels(self.role).set(value)

    def set_sessions(self, *, active: int, capacity: int | None = None) -> None:
        """The sessions held now and, when the role has one, its capacity."""
        self._set(self._active, active)
        if capacity is not None:
            self._set(self._capacity, capacity)

    def set_engine(self, *, connections: int, calls: int) -> None:
        """The engine's connections and its calls (the operator interface's)."""
        self._set(self._connections, connections)
        self._set(self._calls, calls)

    def set_draining(self, draining: bool) -> None:
        self._set(self._draining, 1 if draining else 0)

    def set_loop_lag(self, seconds: float) -> None:
        """The longest busy stretch of the loop lately (:meth:`LoopLag.take`)."""
        self._set(self._loop_lag, seconds)

    def set_queue(self, *, pending: int, lag: int) -> None:
        """The jobs stream for the workers' group: unacknowledged, and not yet read."""
        self._set(self._pending, pending)
        self._set(self._lag, lag)

    def set_fleet(self, *, workers: int, capacity: int, free: int) -> None:
        """The fleet as its live beats tell it."""
        self._set(self._fleet_workers, workers)
        self._set(self._fleet_capacity, capacity)
        self._set(self._fleet_free, free)

    # --- turns -----------------------------------------------------------------------

    def observe_turn(self, measured: TurnMeasured | TurnMetrics) -> None:
        """Feeds one turn's latencies (and its tools' run times) to the histograms."""
        turn = measured.metrics if isinstance(measured, TurnMeasured) else measured
        if turn.first_audio_ms is not None:
            self.first_audio.observe(turn.first_audio_ms / 1000)
        if turn.first_text_ms is not None:
            self.first_text.observe(turn.first_text_ms / 1000)
        for tool in turn.tools:
            if tool.latency_ms is not None:
                self.tool_time.observe(tool.latency_ms / 1000)
        if turn.interruptions:
            self.interruptions.inc(turn.interruptions)

    def observe(self, event: SessionEvent) -> None:
        """A session observer (``session.observe(metrics.observe)``): takes its turns."""
        if isinstance(event, TurnMeasured):
            self.observe_turn(event)

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)


# --- Redis --------------------------------------------------------------------------------


class RedisUnreachable(CantataError):
    """The fleet's Redis does not answer; the message says where and what to do."""


def redacted(url: str) -> str:
    """A Redis URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


@asynccontextmanager
async def open_redis(url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> AsyncIterator[Any]:
    """A ``coredis`` client of the fleet's Redis for the block, once it has answered a PING.

    Raises:
        RedisUnreachable: the URL is not a Redis URL, or nothing answers there.
    """
    import coredis

    def unreachable(detail: str) -> RedisUnreachable:
        return RedisUnreachable(
            f"cannot reach Redis at {redacted(url)} ({detail}); start it, or pass --redis"
        )

    try:
        client = coredis.Redis.from_url(
            url, decode_responses=True, connect_timeout=timeout_s, stream_timeout=timeout_s
        )
        probe = redis_probe(client, timeout_s=timeout_s)
        async with client:
            failure = await probe()
    except (Exception, BaseExceptionGroup) as e:  # a bad URL, or the connection refused
        raise unreachable(one_line(e)) from None
    if failure is not None:
        raise unreachable(failure.removeprefix("unreachable (").removesuffix(")"))
    async with coredis.Redis.from_url(url, decode_responses=True) as redis:
        yield redis


# --- health -------------------------------------------------------------------------------


def redis_probe(redis: Any, *, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """A probe that pings ``redis`` (a ``coredis`` client, already entered)."""

    async def probe() -> str | None:
        try:
            with trio.fail_after(timeout_s):
                await redis.ping()
        except trio.TooSlowError:
            return f"unreachable (no answer in {timeout_s:g} s)"
        except Exception as e:  # coredis's ConnectionError, TimeoutError, OSError...
            return f"unreachable ({one_line(e)})"
        return None

    return probe


@attrs.define(kw_only=True, eq=False)
class Ops:
    """What ``/healthz`` and ``/metrics`` answer from; an ASGI app that answers them.

    Args:
        metrics: the process's metrics.
        probes: named health checks (``{"redis": redis_probe(client)}``).
        refresh: sampled before each ``/metrics`` (queue depth, fleet view);
            a failure is logged and the last values are served.
        probe_timeout_s: a probe slower than this has failed.
    """

    metrics: RoleMetrics
    probes: Mapping[str, Probe] = attrs.field(factory=dict)
    refresh: Callable[[], Awaitable[None]] | None = None
    probe_timeout_s: float = PROBE_TIMEOUT_S
    _draining: bool = attrs.field(default=False, init=False)

    @property
    def draining(self) -> bool:
        """Set on SIGTERM: ``/healthz`` says 503 so that no new work is routed here."""
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._draining = value
        self.metrics.set_draining(value)

    async def health(self) -> tuple[bool, dict[str, object]]:
        """Runs the probes; returns whether the process is ready, and the report."""
        results: dict[str, str | None] = {}

        async def run(name: str, probe: Probe) -> None:
            with trio.move_on_after(self.probe_timeout_s):
                results[name] = await probe()
                return
            results[name] = f"no answer in {self.probe_timeout_s:g} s"

        async with trio.open_nursery() as nursery:
            for name, probe in self.probes.items():
                nursery.start_soon(run, name, probe)
        failed = [f"{name}: {results[name]}" for name in self.probes if results[name] is not None]
        if self._draining:
            failed.insert(0, "draining")
        report: dict[str, object] = {
            "status": "unavailable" if failed else "ok",
            "role": self.metrics.role,
            "checks": {name: results[name] or "ok" for name in self.probes},
        }
        if failed:
            report["reason"] = "; ".join(failed)
        return not failed, report

    async def answer(self, method: str, path: str) -> tuple[int, str, bytes] | None:
        """The answer to an ops request (status, content type, body), or ``None``
        when the path is not one of ours (for an app that mounts these routes)."""
        route = _ROUTES.get(path.rstrip("/") or "/")
        if route is None:
            return None
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", f"{path} answers GET only".encode()
        return await route(self)

    async def _healthz(self) -> tuple[int, str, bytes]:
        ok, report = await self.health()
        return (200 if ok else 503), "application/json", orjson.dumps(report)

    async def _livez(self) -> tuple[int, str, bytes]:
        return 200, "application/json", orjson.dumps({"status": "ok", "role": self.metrics.role})

    async def _metrics(self) -> tuple[int, str, bytes]:
        if self.refresh is not None:
            try:
                with trio.fail_after(self.probe_timeout_s):
                    await self.refresh()
            except Exception as e:  # a scrape still gets what was sampled last
                _log.warning("metrics: could not sample the fleet: %s", one_line(e))
        return 200, CONTENT_TYPE_LATEST, self.metrics.exposition()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await receive()  # a WebSocket's connect: refused by closing
            await send({"type": "websocket.close", "code": 1008, "reason": "no such stream"})
            return
        answer = await self.answer(scope["method"], scope["path"])
        if answer is None:
            answer = 404, "text/plain", f"no such endpoint: {scope['path']}".encode()
        await respond(send, *answer)


_ROUTES: dict[str, Callable[[Ops], Awaitable[tuple[int, str, bytes]]]] = {
    "/healthz": Ops._healthz,
    "/livez": Ops._livez,
    "/metrics": Ops._metrics,
}


# --- sampling -----------------------------------------------------------------------------


async def sample_queue(redis: Any, keys: FleetKeys, metrics: RoleMetrics) -> tuple[int, int]:
    """Reads the jobs stream's pending and lag for the workers' group into ``metrics``.

    Returns:
        ``(pending, lag)``; both 0 while the stream or the group does not exist.
    """
    pending, lag = await queue_depth(redis, keys)
    metrics.set_queue(pending=pending, lag=lag)
    return pending, lag


async def queue_depth(redis: Any, keys: FleetKeys) -> tuple[int, int]:
    """The workers' group on ``P:jobs``: jobs delivered but unacknowledged, and jobs unread.

    Redis reports the lag as unknown (``None``) after entries were deleted
    from the middle of the stream; it is then counted from the stream's
    length and the entries the group has read, which is what Redis does when
    it can.
    """
    import coredis

    try:
        groups = await redis.xinfo_groups(keys.jobs)
    except coredis.exceptions.ResponseError:
        return 0, 0  # no stream yet: nothing queued
    for group in groups:
        if group.get("name") == JOB_GROUP:
            lag = group.get("lag")
            if lag is None:
                length = await redis.xlen(keys.jobs)
                lag = max(0, length - int(group.get("entries-read") or 0))
            return int(group.get("pending") or 0), int(lag)
    return 0, await redis.xlen(keys.jobs)  # no worker has made the group: all unread


async def watch_loop(
    metrics: RoleMetrics,
    lag: LoopLag | None = None,
    *,
    interval_s: float = LOOP_SAMPLE_S,
) -> None:
    """Samples the loop lag into ``metrics`` every ``interval_s`` until cancelled.

    For roles that do not read :class:`LoopLag` themselves (the engine, the
    ingress); a worker that takes it for its beat sets the gauge there
    instead, since each :meth:`LoopLag.take` starts the measure over.
    """
    lag = lag if lag is not None else LoopLag()
    lag.install()
    try:
        while True:
            await trio.sleep(interval_s)
            metrics.set_loop_lag(lag.take())
    finally:
        lag.remove()


# --- serving ------------------------------------------------------------------------------


async def serve_asgi(
    app: Any,
    *,
    host: str,
    port: int,
    log: logging.Logger = _log,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves an ASGI app on the engine's guarded accept loop (a connection's failure
    ends that connection only) until cancelled; reports its base URL (``http://host:port``).

    Raises:
        OSError: the address cannot be bound.
    """
    limits = LinkLimits()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve_links, app, server_config(host, port, limits, log), limits)
        )
        task_status.started(binds[0])


async def serve_ops(
    ops: Ops,
    *,
    host: str = "127.0.0.1",
    port: int = 9100,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves ``/healthz``, ``/livez`` and ``/metrics`` until cancelled; reports the base URL.

    Raises:
        OSError: the address cannot be bound.
    """
    await serve_asgi(ops, host=host, port=port, task_status=task_status)


@asynccontextmanager
async def open_ops_server(
    ops: Ops, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serves ``ops`` for the block (port 0: any free one); yields its base URL."""
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(partial(serve_ops, ops, host=host, port=port))
        try:
            yield url
        finally:
            nursery.cancel_scope.cancel()


def one_line(error: BaseException) -> str:
    """An error as one short line (a group of one is its member)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    text = (
        f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    )
    return text[:200]
