"""The fleet's shared vocabulary: where things live in Redis, and what they hold.

Every role (ingress, worker, the ``cantata fleet`` status command) reads and
writes the same few keys, all under one prefix so that several fleets can
share a Redis:

========================  =================  ==========================================
key                       type               what
========================  =================  ==========================================
``P:jobs``                stream             :class:`AttachJob` entries; group ``workers``
``P:workers``             sorted set         worker ids, scored by their last beat (epoch s)
``P:worker:ID``           string, TTL        the worker's latest :class:`WorkerBeat` (JSON)
``P:calls``               hash               call id -> owning worker id, while the call lives
``P:lease:CALL``          string, TTL        the owner's id; renewed while it holds the call
``P:checkpoint:CALL``     string, TTL        the session's latest ``Checkpoint`` (JSON)
``P:job:CALL``            string, TTL        the call's :class:`AttachJob` (to re-attach it)
``P:control:CALL``        stream             :class:`ControlMessage` entries for the owner
``P:seen:WEBHOOK``        string, TTL        a webhook delivery already handled
``P:scan``                string, TTL        the worker looking for orphaned calls this period
========================  =================  ==========================================

A worker's beat expires on its own when the worker stops beating, and so does
a lease: what is left in ``P:calls`` with no lease is a call whose owner died,
for a live worker to take over from ``P:checkpoint:CALL``.

Records are frozen attrs classes; stream entries are flat string fields (one
``json`` field holding the record), so any Redis client can read them.
"""

from __future__ import annotations

import time
from typing import Literal, TypeAlias, TypeVar

import attrs
import cattrs
import orjson

DEFAULT_PREFIX = "cantata"
JOB_GROUP = "workers"
"""The consumer group every worker reads ``P:jobs`` through."""

CallKind: TypeAlias = Literal["sip", "twilio"]
ControlKind: TypeAlias = Literal["approve", "deny", "hangup", "transfer", "say"]


@attrs.frozen
class FleetKeys:
    """The fleet's Redis key names, under one prefix."""

    prefix: str = DEFAULT_PREFIX

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def calls(self) -> str:
        return f"{self.prefix}:calls"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def lease(self, call_id: str) -> str:
        return f"{self.prefix}:lease:{call_id}"

    def checkpoint(self, call_id: str) -> str:
        return f"{self.prefix}:checkpoint:{call_id}"

    def job(self, call_id: str) -> str:
        return f"{self.prefix}:job:{call_id}"

    def control(self, call_id: str) -> str:
        return f"{self.prefix}:control:{call_id}"

    @property
    def scan(self) -> str:
        return f"{self.prefix}:scan"

    def seen(self, webhook_id: str) -> str:
        return f"{self.prefix}:seen:{webhook_id}"


@attrs.frozen(kw_only=True)
class AttachJob:
    """A call for some worker to answer: what the ingress adds to ``P:jobs``.

    Attributes:
        call_id: the Realtime API's call id (SIP: ``rtc_...``), or the
            Twilio call's ``CallSid``.
        kind: ``sip`` (the worker attaches to the call by ``call_id``) or
            ``twilio`` (the media stream comes to the worker the ingress named).
        url: the Realtime server the call is on (``None``: the hosted API).
        caller: the caller's number or URI, as the webhook gave it.
        callee: the number or URI called.
        worker_id: ``twilio``: the worker whose stream URL the ingress returned.
        event: the webhook's event as received (``realtime.call.incoming``), for the agent.
        received_at: when the ingress took the webhook (epoch seconds).
    """

    call_id: str
    kind: CallKind = "sip"
    url: str | None = None
    caller: str = ""
    callee: str = ""
    worker_id: str | None = None
    event: dict[str, object] = attrs.field(factory=dict)
    received_at: float = attrs.field(factory=time.time)


@attrs.frozen(kw_only=True)
class WorkerBeat:
    """A worker's heartbeat: what it holds and how it fares.

    Attributes:
        worker_id: unique per process (host, pid and a random suffix).
        capacity: calls it may hold at once.
        active: calls it holds now.
        draining: it takes no new jobs (SIGTERM); its calls are finishing.
        loop_lag_ms: the longest the event loop was busy without looking at
            I/O since the last beat.
        media_url: where a Twilio media stream reaches it (``wss://.../twilio/media``).
        ops_url: its ``/healthz`` and ``/metrics`` base URL.
        started_at: when the process started (epoch seconds).
        beat_at: when this beat was sent (epoch seconds).
    """

    worker_id: str
    capacity: int
    active: int = 0
    draining: bool = False
    loop_lag_ms: float = 0.0
    media_url: str | None = None
    ops_url: str | None = None
    started_at: float = attrs.field(factory=time.time)
    beat_at: float = attrs.field(factory=time.time)

    @property
    def free(self) -> int:
        """Slots for new calls (none while draining)."""
        return 0 if self.draining else max(0, self.capacity - self.active)


@attrs.frozen(kw_only=True)
class ControlMessage:
    """An order from outside for the worker that owns a call (``P:control:CALL``).

    Attributes:
        kind: ``approve`` or ``deny`` a function call waiting for approval
            (``target`` is its call id); ``hangup``; ``transfer`` (``target``
            is where to); ``say`` (``text`` is what the agent should say).
        target: the function call id, or the transfer's destination.
        text: ``say``: the words; ``deny``: the reason, if any.
        sent_at: when it was sent (epoch seconds).
    """

    kind: ControlKind
    target: str = ""
    text: str = ""
    sent_at: float = attrs.field(factory=time.time)


RecordT = TypeVar("RecordT", AttachJob, WorkerBeat, ControlMessage)
_converter = cattrs.Converter(forbid_extra_keys=False)
# A webhook's event is kept as the JSON object it arrived as.
_converter.register_structure_hook_func(lambda kind: kind is object, lambda value, _: value)


def dump(record: AttachJob | WorkerBeat | ControlMessage) -> str:
    """A record as JSON text."""
    return orjson.dumps(_converter.unstructure(record)).decode()


def load(kind: type[RecordT], text: str | bytes) -> RecordT:
    """Reads a record back.

    Raises:
        ValueError: not JSON, or not the record's shape (the message says where).
    """
    try:
        return _converter.structure(orjson.loads(text), kind)
    except cattrs.BaseValidationError as e:
        raise ValueError(f"not a {kind.__name__}: {'; '.join(cattrs.transform_error(e))}") from None
