"""A fleet at a glance, read from its Redis: what ``cantata fleet`` prints.

Workers come from the registry (``P:workers``) and their beats; one whose
beat expired is listed as gone (its calls are for recovery). Calls come from
``P:calls`` with their owners, and whether the owner's lease still holds.
The jobs stream shows its length, the jobs delivered but unacknowledged
(pending), and the jobs no worker has read (lag). Reading is bounded: at most
:data:`CALLS_LISTED` calls are listed (the count is always whole).
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from ._ops import queue_depth
from ._schema import FleetKeys, WorkerBeat, load

CALLS_LISTED = 1000
"""Calls listed at most; the total is counted all the same."""


@attrs.frozen(kw_only=True)
class WorkerStatus:
    """One worker, as its last beat tells it (``beat`` is ``None``: it expired)."""

    worker_id: str
    beat: WorkerBeat | None
    beat_age_s: float

    @property
    def state(self) -> str:
        if self.beat is None:
            return "gone"
        return "draining" if self.beat.draining else "up"


@attrs.frozen(kw_only=True)
class CallStatus:
    """One live call: its owner, and whether the owner's lease on it holds."""

    call_id: str
    worker_id: str
    leased: bool


@attrs.frozen(kw_only=True)
class FleetStatus:
    """What ``cantata fleet`` shows."""

    prefix: str
    workers: tuple[WorkerStatus, ...]
    calls: tuple[CallStatus, ...]
    calls_total: int
    jobs: int
    jobs_pending: int
    jobs_lag: int

    @property
    def active(self) -> int:
        return sum(w.beat.active for w in self.workers if w.beat is not None)

    @property
    def capacity(self) -> int:
        return sum(w.beat.capacity for w in self.workers if w.beat is not None)

    def to_json(self) -> dict[str, Any]:
        """The status as plain JSON values (``cantata fleet --json``)."""
        return {
            "prefix": self.prefix,
            "workers": [
                {
                    "id": w.worker_id,
                    "state": w.state,
                    "active": w.beat.active if w.beat else None,
                    "capacity": w.beat.capacity if w.beat else None,
                    "loop_lag_ms": w.beat.loop_lag_ms if w.beat else None,
                    "beat_age_s": round(w.beat_age_s, 3),
                    "media_url": w.beat.media_url if w.beat else None,
                    "ops_url": w.beat.ops_url if w.beat else None,
                }
                for w in self.workers
            ],
            "calls": [attrs.asdict(call) for call in self.calls],
            "calls_total": self.calls_total,
            "active": self.active,
            "capacity": self.capacity,
            "jobs": {"length": self.jobs, "pending": self.jobs_pending, "lag": self.jobs_lag},
        }

    def render(self) -> str:
        """The status as a few aligned lines for a terminal."""
        lines = [
            f"fleet {self.prefix!r}: {len(self.workers)} workers, "
            f"{self.active}/{self.capacity} calls, jobs {self.jobs} "
            f"(pending {self.jobs_pending}, waiting {self.jobs_lag})"
        ]
        if self.workers:
            lines.append(f"  {'WORKER':<32} {'STATE':<9} {'CALLS':>9} {'LAG MS':>8} {'BEAT':>7}")
        for w in self.workers:
            calls = f"{w.beat.active}/{w.beat.capacity}" if w.beat else "-"
            lag = f"{w.beat.loop_lag_ms:.1f}" if w.beat else "-"
            lines.append(
                f"  {w.worker_id:<32} {w.state:<9} {calls:>9} {lag:>8} {w.beat_age_s:>6.1f}s"
            )
        if self.calls:
            lines.append(f"  {'CALL':<40} {'OWNER':<32} LEASE")
        for call in self.calls:
            lease = "held" if call.leased else "expired: awaiting recovery"
            lines.append(f"  {call.call_id:<40} {call.worker_id:<32} {lease}")
        if self.calls_total > len(self.calls):
            lines.append(f"  ... and {self.calls_total - len(self.calls)} more calls")
        return "\n".join(lines)


async def read_status(
    redis: Any, keys: FleetKeys, *, now: float | None = None, calls_listed: int = CALLS_LISTED
) -> FleetStatus:
    """Reads the fleet's status from its Redis (a ``coredis`` client, entered)."""
    current = time.time() if now is None else now
    registry = await redis.zrange(keys.workers, 0, -1, withscores=True)
    ids = [member.member for member in registry]
    texts = await redis.mget([keys.worker(i) for i in ids]) if ids else ()
    workers = []
    for member, text in zip(registry, texts, strict=True):
        beat = None
        if text is not None:
            try:
                beat = load(WorkerBeat, text)
            except ValueError:
                beat = None  # a beat this version cannot read counts as none
        seen_at = beat.beat_at if beat is not None else member.score
        workers.append(
            WorkerStatus(worker_id=member.member, beat=beat, beat_age_s=current - seen_at)
        )
    calls_total = await redis.hlen(keys.calls)
    owners: dict[str, str] = {}
    cursor = 0
    while len(owners) < calls_listed:
        cursor, page = await redis.hscan(keys.calls, cursor, count=min(500, calls_listed))
        owners.update(page)
        if cursor == 0:
            break
    listed = sorted(owners.items())[:calls_listed]
    leases = await redis.mget([keys.lease(call_id) for call_id, _ in listed]) if listed else ()
    calls = tuple(
        CallStatus(call_id=call_id, worker_id=owner, leased=lease is not None)
        for (call_id, owner), lease in zip(listed, leases, strict=True)
    )
    jobs = await redis.xlen(keys.jobs)
    pending, lag = await queue_depth(redis, keys)
    return FleetStatus(
        prefix=keys.prefix,
        workers=tuple(workers),
        calls=calls,
        calls_total=calls_total,
        jobs=jobs,
        jobs_pending=pending,
        jobs_lag=lag,
    )
