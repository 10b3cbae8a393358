"""A fleet worker: takes calls off ``P:jobs`` while it has room, and keeps them alive.

One trio process, many calls. Its tasks, all in :meth:`Worker.run`'s nursery:

* **intake**: reads attach jobs (``XREADGROUP`` on ``P:jobs``, group
  ``workers``) only while it has free slots, as many as it has free; a full
  or draining worker does not read at all, so the stream itself is the
  dispatcher. Each job is taken by its lease (:func:`~._leases.claim`), the
  session attached to the call by ``call_id`` (telephony's SIP leg), and
  only then acknowledged (``XACK``);
* **beat**: every :data:`BEAT_EVERY_S`, ``P:worker:ID`` (a :class:`WorkerBeat`
  with a TTL of :data:`BEAT_TTL_S`: active, capacity, draining, the loop lag
  from :class:`LoopLag`) and its score in ``P:workers``;
* **leases**: every :data:`~._leases.RENEW_EVERY_S`, one script renews every
  lease held; a call another worker owns now is stopped here at once;
* **recovery**: every :data:`~._leases.SCAN_EVERY_S`, while it has room,
  jobs another worker read and never acknowledged (``XAUTOCLAIM``) and calls
  whose lease lapsed (their owner died) are taken over, the latter from
  their checkpoint (``open_session(resume=...)``: the history replayed, a
  tool call that was in flight answered once);
* **control**: the :class:`ControlReader` of the calls held.

Each call runs in a task of its own, in the context of its
:class:`~framework.telephony.PhoneCall`, and checkpoints its session
(``P:checkpoint:CALL``) whenever a turn ends, a tool starts or ends, or an
approval is asked, one write per burst. When the call ends its keys go;
when it is lost to another worker they stay (they are the new owner's).

**Shutdown.** The first SIGTERM (or SIGINT) drains: intake stops, the beat
says ``draining``, ``/healthz`` turns 503, and the calls have ``grace_s`` to
end by themselves; those still running are then hung up in order. A second
signal ends at once: the leases are let go (not waited out) so that other
workers take the calls over from their checkpoints straight away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, TypeAlias

import attrs
import coredis
import trio

from framework.errors import ConnectionClosed, HandshakeRefused, RestError
from framework.runtime import (
    ApprovalRequested,
    Checkpoint,
    HandedOff,
    ResponseFinished,
    Session,
    SessionEvent,
    ToolCallFinished,
    ToolCallStarted,
    open_session,
)
from framework.telephony import PhoneCall, SipLeg, greeting_of
from framework.telephony._call import enter_phone_call
from framework.telephony._server import AgentSource, agent_for
from framework.telephony._sip import call_from_event, with_call_id
from framework.transport import RestClient, open_rest_client, resolve_base_url

from ._control import ControlReader
from ._lag import LoopLag
from ._leases import (
    CLAIM_IDLE_S,
    RENEW_EVERY_S,
    SCAN_EVERY_S,
    STATE_TTL_S,
    claim,
    let_go,
    orphans,
    release,
    renew,
)
from ._ops import Ops, RoleMetrics, redis_probe, sample_queue, serve_ops
from ._schema import DEFAULT_PREFIX, JOB_GROUP, AttachJob, FleetKeys, WorkerBeat, dump, load

_log = logging.getLogger("cantata.fleet")

OnCall: TypeAlias = Callable[[PhoneCall], Awaitable[None]]

BEAT_EVERY_S = 1.0
"""How often a worker says it is alive."""
BEAT_GAP_S = 0.1
"""The least time between two beats (a burst of calls coming and going is one beat)."""
BEAT_TTL_S = 3.0
"""A beat not renewed for this long is gone: the worker is taken for dead."""
READ_BLOCK_S = 1.0
"""How long one read of the jobs stream waits (then the worker looks at its room again)."""
GRACE_S = 30.0
"""How long a draining worker lets its calls run before it hangs them up."""
ATTACH_RETRY_S = 3.0
"""How long a take-over keeps trying to attach while the old owner's socket is still on."""
ATTACH_RETRY_EVERY_S = 0.2
CLOSE_S = 5.0
"""How long a call's clean-up (hang-up, keys) may take."""
WORKERS_KEPT_S = 3600.0
"""Workers whose last beat is older than this are dropped from ``P:workers``."""
_CHECKPOINT_ON = (ResponseFinished, ToolCallStarted, ToolCallFinished, ApprovalRequested, HandedOff)
"""The events after which a call's checkpoint is written again."""


def new_worker_id() -> str:
    """Unique per process: the host, the pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@attrs.define(eq=False)
class HeldCall:
    """A call this worker holds or is taking: its job and the scope its session runs in."""

    call_id: str
    job: AttachJob
    entry: str | None = None
    """Its job's entry on ``P:jobs`` until acknowledged (none: it was found orphaned)."""
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    claimed: bool = False
    """This worker won the call's lease."""
    lost: bool = False
    """Another worker owns the call now, or will (this one is leaving): it is neither
    hung up nor forgotten here."""


@attrs.define(kw_only=True, eq=False)
class Worker:
    """Serves calls from the fleet's jobs stream (see the module docstring).

    Args:
        agent: the agent that answers, or a function that makes one per call
            (a class is made once per call).
        redis_url: the fleet's Redis (``redis://host:6379/0``).
        capacity: calls at once.
        url: the Realtime server of jobs that name none (``None``: the hosted API).
        api_key: its key.
        prefix: the fleet's key prefix.
        grace_s: how long a drain lets calls run on.
        on_call: run with each call once its session is up (as
            ``PhoneServer``'s); cancelled when the call ends.
        ops_host: where ``/healthz`` and ``/metrics`` listen.
        ops_port: their port (``None``: not served; 0: any free one).
        worker_id: the worker's id (default: host, pid and a random suffix).
    """

    agent: AgentSource
    redis_url: str
    capacity: int
    url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    prefix: str = DEFAULT_PREFIX
    grace_s: float = GRACE_S
    on_call: OnCall | None = None
    ops_host: str = "127.0.0.1"
    ops_port: int | None = None
    worker_id: str = attrs.field(factory=new_worker_id)
    keys: FleetKeys = attrs.field(init=False)
    held: dict[str, HeldCall] = attrs.field(factory=dict, init=False)
    """The calls held now, by id (taken ones count from the moment they are claimed)."""
    calls: dict[str, PhoneCall] = attrs.field(factory=dict, init=False)
    """The calls whose session is up, by id."""
    draining: bool = attrs.field(default=False, init=False)
    metrics: RoleMetrics = attrs.field(factory=lambda: RoleMetrics("worker"), init=False)
    ops: Ops | None = attrs.field(default=None, init=False)
    ops_url: str | None = attrs.field(default=None, init=False)
    started_at: float = attrs.field(factory=time.time, init=False)
    _redis: Any = attrs.field(default=None, init=False)
    _rest: dict[str, RestClient] = attrs.field(factory=dict, init=False)
    _stack: AsyncExitStack | None = attrs.field(default=None, init=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _lag: LoopLag = attrs.field(factory=LoopLag, init=False)
    _reading: trio.CancelScope = attrs.field(factory=trio.CancelScope, init=False)
    _control: ControlReader | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"a worker's capacity is at least 1, not {self.capacity}")
        self.keys = FleetKeys(self.prefix)

    @property
    def free(self) -> int:
        """Slots for new calls (none while draining)."""
        return 0 if self.draining else max(0, self.capacity - len(self.held))

    def beat(self) -> WorkerBeat:
        """The worker's state, as its heartbeat says it (the loop lag is the longest
        busy stretch since the last beat, so each call starts that measure over)."""
        return WorkerBeat(
            worker_id=self.worker_id,
            capacity=self.capacity,
            active=len(self.held),
            draining=self.draining,
            loop_lag_ms=round(self._lag.take() * 1000, 3),
            ops_url=self.ops_url,
            started_at=self.started_at,
        )

    def _wake(self) -> None:
        self.metrics.set_sessions(active=len(self.held), capacity=self.capacity)
        self._changed.set()
        self._changed = trio.Event()

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            changed = self._changed
            await changed.wait()

    # --- the process ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED) -> None:
        """Serves until drained by a signal (see the module docstring), or cancelled.

        Raises:
            coredis.exceptions.ConnectionError: Redis cannot be reached.
        """
        async with self.running():
            task_status.started(self)
            await self._signals()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Worker]:
        """Runs the worker's tasks for the block; leaving it ends at once (see :meth:`drain`)."""
        redis = coredis.Redis.from_url(self.redis_url, decode_responses=True)
        leaving: list[str] = []
        async with redis, AsyncExitStack() as stack:
            self._redis, self._stack = redis, stack
            control = self._control = ControlReader(redis, self.keys, self.calls)
            await self._make_group()
            self._lag.install()
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await self._serve_ops(nursery)
                    self.metrics.set_sessions(active=0, capacity=self.capacity)
                    await self._send_beat()
                    nursery.start_soon(self._beats)
                    nursery.start_soon(self._every, RENEW_EVERY_S, self._renew)
                    nursery.start_soon(self._every, SCAN_EVERY_S, self._recover)
                    await nursery.start(control.run)
                    nursery.start_soon(self._intake)
                    try:
                        yield self
                    finally:
                        for held in self.held.values():
                            held.lost = True  # left to another worker, not hung up
                        leaving = list(self.held)
                        nursery.cancel_scope.cancel()
            finally:
                self._lag.remove()
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_S):
                    await self._leave(leaving)

    async def _make_group(self) -> None:
        # From the stream's start: jobs added before any worker ran are read too.
        with contextlib.suppress(coredis.exceptions.StreamDuplicateConsumerGroupError):
            await self._redis.xgroup_create(self.keys.jobs, JOB_GROUP, "0", mkstream=True)

    async def _serve_ops(self, nursery: trio.Nursery) -> None:
        redis = self._redis

        async def refresh() -> None:
            await sample_queue(redis, self.keys, self.metrics)

        self.ops = Ops(metrics=self.metrics, probes={"redis": redis_probe(redis)}, refresh=refresh)
        if self.ops_port is not None:
            self.ops_url = await nursery.start(
                partial(serve_ops, self.ops, host=self.ops_host, port=self.ops_port)
            )

    async def _signals(self) -> None:
        """The first SIGTERM or SIGINT drains; a second one ends at once."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            async with trio.open_nursery() as nursery:

                async def drain_then_stop() -> None:
                    await self.drain()
                    nursery.cancel_scope.cancel()

                async for signum in received:
                    if self.draining:
                        _log.warning("a second %s: ending now", signal.Signals(signum).name)
                        nursery.cancel_scope.cancel()
                        return
                    _log.info("%s: draining", signal.Signals(signum).name)
                    nursery.start_soon(drain_then_stop)

    async def drain(self) -> None:
        """Takes no new calls, lets those held end within ``grace_s``, then hangs them up."""
        self.draining = True
        self._reading.cancel()
        if self.ops is not None:
            self.ops.draining = True
        self._wake()
        await self._send_beat()
        with trio.move_on_after(self.grace_s):
            await self._until(lambda: not self.held)
        for held in list(self.held.values()):
            _log.info("call %s: hung up at the end of the drain", held.call_id)
            call = self.calls.get(held.call_id)
            if call is not None:
                call.end("the worker drained")  # its session closes in order, then hangs up
            else:
                held.scope.cancel()  # still attaching
        await self._until(lambda: not self.held)

    async def _leave(self, calls: list[str]) -> None:
        """On the way out: lets go of the leases of ``calls`` (they are taken over from
        their checkpoints at once), and takes the worker off the registry."""
        try:
            await let_go(self._redis, self.keys, self.worker_id, calls)
            await self._redis.delete([self.keys.worker(self.worker_id)])
            await self._redis.zrem(self.keys.workers, [self.worker_id])
        except (coredis.exceptions.RedisError, OSError) as e:
            _log.warning("could not leave the fleet cleanly: %s", e)

    async def _every(self, period_s: float, step: Callable[[], Awaitable[None]]) -> None:
        """Runs ``step`` every ``period_s``; a Redis failure is logged and tried again."""
        while True:
            await trio.sleep(period_s)
            try:
                await step()
            except (coredis.exceptions.RedisError, OSError) as e:
                _log.warning("%s failed: %s", step.__name__.strip("_"), e)

    # --- beat, leases, recovery --------------------------------------------------------------

    async def _beats(self) -> None:
        """Beats every :data:`BEAT_EVERY_S`, and soon after a call comes or goes (so that
        the fleet's view of free slots is fresh), at most every :data:`BEAT_GAP_S`."""
        changed = self._changed
        while True:
            with trio.move_on_after(BEAT_EVERY_S):
                await changed.wait()
            changed = self._changed  # a change while this beat is sent makes the next one
            try:
                await self._send_beat()
            except (coredis.exceptions.RedisError, OSError) as e:
                _log.warning("beat failed: %s", e)
            await trio.sleep(BEAT_GAP_S)

    async def _send_beat(self) -> None:
        beat = self.beat()
        self.metrics.set_loop_lag(beat.loop_lag_ms / 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.worker(self.worker_id), dump(beat), px=round(BEAT_TTL_S * 1000))
            pipe.zadd(self.keys.workers, {self.worker_id: beat.beat_at})
            pipe.zremrangebyscore(self.keys.workers, "-inf", beat.beat_at - WORKERS_KEPT_S)

    async def _renew(self) -> None:
        for call_id in await renew(self._redis, self.keys, self.worker_id, list(self.held)):
            held = self.held.get(call_id)
            if held is not None:
                _log.warning("call %s: another worker owns it now; stopping here", call_id)
                held.lost = True
                held.scope.cancel()

    async def _recover(self) -> None:
        if self.free <= 0:
            return
        claimed = await self._redis.xautoclaim(
            self.keys.jobs,
            JOB_GROUP,
            self.worker_id,
            round(CLAIM_IDLE_S * 1000),
            "0-0",
            count=self.free,
        )
        for entry in claimed[1]:
            _log.info("took over job %s, unacknowledged by a worker", entry.identifier)
            self._take_job(entry.identifier, entry.field_values)
        for call_id in await orphans(self._redis, self.keys, self.worker_id, limit=self.free):
            if call_id not in self.held:
                self._start(call_id, job=None, entry_id=None)

    # --- intake --------------------------------------------------------------------------

    async def _intake(self) -> None:
        with self._reading:
            while True:
                await self._until(lambda: self.free > 0)
                read = await self._redis.xreadgroup(
                    JOB_GROUP,
                    self.worker_id,
                    {self.keys.jobs: ">"},
                    count=self.free,
                    block=round(READ_BLOCK_S * 1000),
                )
                for entries in (read or {}).values():
                    for entry in entries:
                        if self.draining:
                            # Read as the drain began: left unacknowledged, for another
                            # worker to claim (XAUTOCLAIM) once it has been idle a while.
                            continue
                        self.metrics.jobs_taken.inc()
                        self._take_job(entry.identifier, entry.field_values)

    def _take_job(self, entry_id: str, fields: Mapping[str, str]) -> None:
        try:
            job = load(AttachJob, fields.get("json", ""))
        except ValueError as e:
            _log.warning("skipped job %s: %s", entry_id, e)
            self._start_soon(self._ack, entry_id)
            return
        if job.kind != "sip":
            _log.warning(
                "skipped job %s: call %s is a %s call; this worker attaches SIP calls only",
                entry_id,
                job.call_id,
                job.kind,
            )
            self._start_soon(self._ack, entry_id)
            return
        if job.call_id in self.held:
            self._start_soon(self._ack, entry_id)  # a job seen again: the call is already here
            return
        self._start(job.call_id, job=job, entry_id=entry_id)

    def _start_soon(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    async def _ack(self, entry_id: str) -> None:
        await self._redis.xack(self.keys.jobs, JOB_GROUP, [entry_id])

    def _start(self, call_id: str, *, job: AttachJob | None, entry_id: str | None) -> None:
        """Reserves a slot for the call at once (so the next read asks for one less)."""
        held = HeldCall(call_id=call_id, job=job or AttachJob(call_id=call_id), entry=entry_id)
        self.held[call_id] = held
        self._wake()
        self._start_soon(self._serve, held, job is not None)

    async def _acknowledge(self, held: HeldCall) -> None:
        """Acknowledges the call's job, once (the call is up, or cannot be)."""
        entry, held.entry = held.entry, None
        if entry is not None:
            await self._ack(entry)

    # --- one call ----------------------------------------------------------------------------

    async def _serve(self, held: HeldCall, fresh: bool) -> None:
        call_id = held.call_id
        try:
            found = await claim(self._redis, self.keys, call_id, self.worker_id)
            if not found.won:
                _log.info("call %s: already held by %s", call_id, found.owner)
                return
            held.claimed = True
            job = held.job
            if fresh:
                await self._redis.set(
                    self.keys.job(call_id), dump(job), px=round(STATE_TTL_S * 1000)
                )
            elif found.job:
                job = load(AttachJob, found.job)
            checkpoint = Checkpoint.from_json(found.checkpoint) if found.checkpoint else None
            await self._attach(held, job, checkpoint, greet=fresh)
        except (coredis.exceptions.RedisError, OSError, ValueError, ConnectionClosed) as e:
            _log.warning("call %s: could not be served: %s", call_id, e)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_S):
                await self._acknowledge(held)
            await self._forget(held)

    async def _attach(
        self,
        held: HeldCall,
        job: AttachJob,
        checkpoint: Checkpoint | None,
        *,
        greet: bool,
    ) -> None:
        """Attaches a session to the call, in the call's context, for as long as it lasts."""
        url = job.url or self.url
        rest = await self._rest_for(url)
        event = job.event or {"data": {"call_id": job.call_id}}
        leg = SipLeg(rest, job.call_id)
        call = call_from_event(event, leg)
        call.caller = call.caller or job.caller or None
        call.callee = call.callee or job.callee or None
        enter_phone_call(call)
        closed_by_server = False
        try:
            with held.scope:
                async with AsyncExitStack() as stack:
                    session = await self._open(stack, call, leg, url, checkpoint)
                    call.session = session
                    self.calls[call.id] = call
                    if self._control is not None:
                        self._control.follow()
                    session.observe(call.observe)
                    session.observe(self.metrics.observe)
                    await self._acknowledge(held)
                    call.answered.set()
                    what = "resumed from its checkpoint" if checkpoint else "attached"
                    _log.info("call %s: %s", call.id, what)
                    if greet:
                        greeting = greeting_of(session.agent)
                        if greeting is not None:
                            await session.create_response(greeting)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._checkpoints, call)
                        if self.on_call is not None:
                            nursery.start_soon(self.on_call, call)
                        await call.ended.wait()
                        nursery.cancel_scope.cancel()
        except ConnectionClosed as e:
            closed_by_server = e.normal
            call.end(f"the session ended ({e.code}: {e.reason or 'no reason'})")
        finally:
            self.calls.pop(call.id, None)
            if held.lost:
                call.end("another worker owns the call now")
            else:
                call.end("the session ended")
                if not closed_by_server:
                    await self._hang_up(call, rest)

    async def _open(
        self,
        stack: AsyncExitStack,
        call: PhoneCall,
        leg: SipLeg,
        url: str | None,
        checkpoint: Checkpoint | None,
    ) -> Session:
        """Opens the call's session; a take-over waits for the old owner's socket to go."""
        agent = agent_for(self.agent, call)
        deadline = trio.current_time() + ATTACH_RETRY_S
        while True:
            try:
                session: Session = await stack.enter_async_context(
                    open_session(
                        agent,
                        url=with_call_id(url, call.id),
                        api_key=self.api_key,
                        audio_out=leg.playout,
                        resume=checkpoint,
                    )
                )
                return session
            except HandshakeRefused as e:
                # 409: the call still has a socket attached (its old owner's, closing).
                if e.code != 409 or trio.current_time() > deadline:
                    raise
                await trio.sleep(ATTACH_RETRY_EVERY_S)

    async def _checkpoints(self, call: PhoneCall) -> None:
        """Writes the call's checkpoint after each event that changes what it would say."""
        assert call.session is not None
        session = call.session
        dirty = trio.Event()

        def observe(event: SessionEvent) -> None:
            if isinstance(event, _CHECKPOINT_ON):
                dirty.set()

        session.observe(observe)
        key = self.keys.checkpoint(call.id)
        try:
            while True:
                await dirty.wait()
                dirty = trio.Event()
                await self._redis.set(
                    key, session.checkpoint().to_json(), px=round(STATE_TTL_S * 1000)
                )
        finally:
            session.forget(observe)

    async def _hang_up(self, call: PhoneCall, rest: RestClient) -> None:
        """A call whose session ended is hung up, unless it already was."""
        if call.end_reason.startswith(("hung up", "transferred")):
            return
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_S):
            try:
                await rest.hangup_call(call.id)
            except RestError as e:
                _log.info("call %s: hang-up after the session ended: %s", call.id, e)

    async def _forget(self, held: HeldCall) -> None:
        call_id = held.call_id
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_S):
            try:
                if held.claimed and not held.lost:
                    await release(self._redis, self.keys, call_id, self.worker_id)
            except (coredis.exceptions.RedisError, OSError) as e:
                _log.warning("call %s: its keys could not be removed: %s", call_id, e)
        if self.held.get(call_id) is held:
            del self.held[call_id]
        self._wake()

    async def _rest_for(self, url: str | None) -> RestClient:
        base = resolve_base_url(url)
        rest = self._rest.get(base)
        if rest is None:
            assert self._stack is not None
            rest = await self._stack.enter_async_context(
                open_rest_client(base, api_key=self.api_key)
            )
            self._rest[base] = rest
        return rest
