"""Who owns a call: the lease, its renewal, and the calls whose owner died.

A worker holds each of its calls by a lease, ``P:lease:CALL``, a string with
its id and a TTL of :data:`LEASE_TTL_S`. It renews every lease it holds in
one script every :data:`RENEW_EVERY_S`; a renewal that finds another owner
reports the call lost, and the worker stops that session at once (split
brain never means two owners talking to one caller). A worker that dies
stops renewing, its leases expire, and what is left in ``P:calls`` with no
lease is a call for a live worker to take over (:func:`orphans`), with
``SET NX`` so that exactly one does (:func:`claim`).

The timing (one place, chosen for the fleet's target: a SIGKILLed worker's
calls resume on another within 5 s): a lease outlives its last renewal by
at most :data:`LEASE_TTL_S` (3 s), the other workers look for orphans every
:data:`SCAN_EVERY_S` (0.5 s), and the take-over itself (attach and replay)
is a few hundred ms: about 3.5-4 s at worst. A renewal may be late by
``LEASE_TTL_S - RENEW_EVERY_S`` (2.25 s) before the lease lapses, which a
loop that lags that long has lost anyway.

The scan looks at every live call, so one worker of the fleet does it per
period (``P:scan``, a token taken with ``SET NX PX``), whichever asks first.

Every operation is one round trip: the scripts run in Redis, atomically.
They build key names from the prefix, so they assume one Redis (or one
cluster slot), not a sharded cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._schema import FleetKeys

LEASE_TTL_S = 3.0
"""How long a lease lives without renewal."""
RENEW_EVERY_S = 0.75
"""How often a worker renews its leases (a quarter of their life)."""
SCAN_EVERY_S = 0.5
"""How often a worker looks for calls whose owner died (and for unacknowledged jobs)."""
CLAIM_IDLE_S = LEASE_TTL_S
"""A job delivered to a worker and not acknowledged for this long is taken by another."""
STATE_TTL_S = 2 * 3600.0
"""How long a call's checkpoint and job are kept after their last write (a call's state
must outlive any lease lapse; the hosted API ends a session at 60 minutes)."""

_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
  return {1, redis.call('GET', KEYS[3]) or '', redis.call('GET', KEYS[4]) or ''}
end
return {0, redis.call('GET', KEYS[1]) or '', ''}
"""
# KEYS: lease, calls, job, checkpoint; ARGV: worker, ttl ms, call id.

_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  elseif not owner and redis.call('HGET', ARGV[3], ARGV[3 + i]) == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, ARGV[3 + i])
  end
end
return lost
"""
# KEYS: the leases; ARGV: worker, ttl ms, the calls hash, then the call ids in order.
# A lapsed lease nobody took is taken back, while P:calls still names this worker.

_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
"""
# KEYS: lease, calls, job, checkpoint, control; ARGV: worker, call id.

_LET_GO = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key); n = n + 1 end
end
return n
"""
# KEYS: leases; ARGV: worker. Leases only: the calls stay in P:calls for another to take.

_ORPHANS = """
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {} end
local calls = redis.call('HGETALL', KEYS[1])
local found = {}
for i = 1, #calls, 2 do
  if redis.call('EXISTS', ARGV[1] .. calls[i]) == 0 then
    table.insert(found, calls[i])
    if #found >= tonumber(ARGV[2]) then break end
  end
end
return found
"""
# KEYS: calls, the scan token; ARGV: the lease key prefix, how many at most, worker, period ms.
# One worker scans per period, whichever takes the token: the cost of a scan (a
# look at every live call) does not grow with the number of workers.


@attrs.frozen(kw_only=True)
class Claim:
    """What taking a call's lease found.

    Attributes:
        won: this worker holds the lease now.
        owner: the lease's holder when it was not won.
        job: the call's stored :class:`AttachJob` JSON (``""``: none).
        checkpoint: its latest ``Checkpoint`` JSON (``""``: none).
    """

    won: bool
    owner: str = ""
    job: str = ""
    checkpoint: str = ""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def claim(
    redis: Any, keys: FleetKeys, call_id: str, worker_id: str, *, ttl_s: float = LEASE_TTL_S
) -> Claim:
    """Takes ``call_id``'s lease if nobody holds it, and registers the call as this worker's."""
    found = await redis.eval(
        _CLAIM,
        [keys.lease(call_id), keys.calls, keys.job(call_id), keys.checkpoint(call_id)],
        [worker_id, _ms(ttl_s), call_id],
    )
    won, second, third = (_text(v) for v in found)
    if won == "1":
        return Claim(won=True, job=second, checkpoint=third)
    return Claim(won=False, owner=second)


async def renew(
    redis: Any,
    keys: FleetKeys,
    worker_id: str,
    call_ids: Sequence[str],
    *,
    ttl_s: float = LEASE_TTL_S,
) -> list[str]:
    """Renews this worker's leases on ``call_ids``; returns the calls another worker owns now."""
    if not call_ids:
        return []
    lost = await redis.eval(
        _RENEW,
        [keys.lease(c) for c in call_ids],
        [worker_id, _ms(ttl_s), keys.calls, *call_ids],
    )
    return [_text(c) for c in lost]


async def release(redis: Any, keys: FleetKeys, call_id: str, worker_id: str) -> bool:
    """Forgets an ended call: its lease, registration, job, checkpoint and control stream.

    Only while this worker holds the lease (a call lost to another is theirs
    to clean). Returns whether it did.
    """
    done = await redis.eval(
        _RELEASE,
        [
            keys.lease(call_id),
            keys.calls,
            keys.job(call_id),
            keys.checkpoint(call_id),
            keys.control(call_id),
        ],
        [worker_id, call_id],
    )
    return bool(done)


async def let_go(redis: Any, keys: FleetKeys, worker_id: str, call_ids: Sequence[str]) -> int:
    """Drops this worker's leases on live calls so that others take them over at once."""
    if not call_ids:
        return 0
    return int(await redis.eval(_LET_GO, [keys.lease(c) for c in call_ids], [worker_id]))


async def orphans(
    redis: Any, keys: FleetKeys, worker_id: str, *, limit: int, period_s: float = SCAN_EVERY_S
) -> list[str]:
    """Calls in ``P:calls`` whose lease has lapsed (their owner died), ``limit`` at most.

    Only one worker of the fleet looks per ``period_s`` (the others get none).
    """
    if limit <= 0:
        return []
    found = await redis.eval(
        _ORPHANS, [keys.calls, keys.scan], [keys.lease(""), limit, worker_id, _ms(period_s)]
    )
    return [_text(c) for c in found]
