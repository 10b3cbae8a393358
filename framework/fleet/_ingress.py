"""The fleet's front door: call webhooks in, attach jobs out (``cantata serve --role ingress``).

An ingress holds no call and no state of its own: any number of them run
behind a load balancer, sharing the fleet's Redis. Its routes:

* ``POST /sip/webhook``: ``realtime.call.incoming`` from the Realtime API.
  The Standard Webhooks signature is verified (telephony's check); the
  delivery is handled once across every replica (``SET P:seen:WEBHOOK NX
  EX``); the fleet's free slots are counted from the live worker beats, less
  the jobs no worker has read yet. With a slot, the call is accepted over the
  calls API (with the server's default configuration: the worker's session
  sets the agent's when it attaches) and an :class:`AttachJob` is added to
  ``P:jobs``; without one, the call is rejected 486 Busy Here.
* ``POST /twilio/voice``: Twilio's voice webhook, its ``X-Twilio-Signature``
  checked. Twilio sends the call's media to a URL the answer names, so the
  ingress picks the worker with the most free slots (then the least loop
  lag), counting the calls it was sent since its last beat (``P:routed:ID:BEAT``,
  a counter per beat that expires), and answers TwiML that connects the call to that worker's
  ``media_url``, and adds a ``twilio`` job naming the worker. No free slot:
  TwiML rejecting the call as busy. A retry of the same ``CallSid`` gets the
  same worker and adds no second job.
* ``/healthz``, ``/livez``, ``/metrics``: the ingress's :class:`~._ops.Ops`
  (Redis reachable; queue depth and the fleet's capacity sampled at each scrape).

What a worker finds in a ``twilio`` job (the contract with the worker side):
``call_id`` is the ``CallSid``, ``worker_id`` the worker chosen, and
``event`` holds ``{"form": <Twilio's form>, "token": <secret>}``. The TwiML's
``<Stream>`` carries ``token`` as the custom parameter ``cantata_token`` (as
:class:`~framework.telephony.TwilioLeg` expects), so the worker accepts the
stream whose ``start`` presents it; its ``action`` URL is the worker's
``/twilio/after`` beside its media URL (``wss://host/twilio/media`` ->
``https://host/twilio/after``), where the worker says what follows the stream.

Bad input never reaches Redis or the calls API: a request that is not signed
is 403, one that is not what it claims 400, a body over 64 KiB 413; Redis
down is 503 (the sender retries; a call accepted just before Redis failed
answers that retry "gone", as the calls API then refuses a second accept).
Bounds: ``P:jobs`` is trimmed to about
``jobs_max`` entries (``XADD MAXLEN ~``); ``P:seen:*`` keys expire after
``seen_ttl_s``, ``P:routed:*`` after :data:`ROUTED_TTL_S`. Two replicas
routing at the same instant may both count the same last slot: the worker's
capacity is the final word.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
import coredis
import trio

from framework.engine import Receive, Scope, Send, respond
from framework.errors import RestError
from framework.telephony import (
    HttpRefusal,
    Route,
    SipLeg,
    call_from_event,
    route_request,
    sip_webhook,
    twilio_form,
    twiml_busy,
    twiml_connect,
)
from framework.transport import RestClient

from ._ops import Ops, RoleMetrics, one_line, queue_depth, redis_probe
from ._schema import AttachJob, FleetKeys, WorkerBeat, dump, load

_log = logging.getLogger("cantata.fleet")

JOBS_MAX = 10_000
"""About how many attach jobs ``P:jobs`` keeps (older entries are trimmed)."""
SEEN_TTL_S = 3600
"""How long a webhook delivery is remembered (senders retry within minutes)."""
ROUTED_TTL_S = 120
"""How long a count of calls routed since a beat is kept (beats come every few seconds)."""
SIP_BUSY = 486
"""SIP's Busy Here: what a caller hears when the fleet is full."""
_REDIS_ERRORS = (coredis.exceptions.RedisError, OSError)


@attrs.frozen(kw_only=True)
class FleetView:
    """The fleet as its live beats tell it."""

    beats: tuple[WorkerBeat, ...]
    unread: int = 0
    """Jobs in ``P:jobs`` no worker has read yet: they will take slots too."""
    pending: int = 0
    """Jobs read but not yet acknowledged."""
    routed: Mapping[str, int] = attrs.field(factory=dict)
    """Twilio calls sent to each worker since its last beat (not in its beat yet)."""

    @property
    def capacity(self) -> int:
        return sum(beat.capacity for beat in self.beats)

    @property
    def free(self) -> int:
        """Slots left once the jobs waiting are taken."""
        return max(0, sum(beat.free for beat in self.beats) - self.unread)

    def free_of(self, beat: WorkerBeat) -> int:
        """A worker's free slots, less the calls routed to it since it beat."""
        return beat.free - self.routed.get(beat.worker_id, 0)

    def pick(self) -> WorkerBeat | None:
        """The worker to send media to: the most free slots, then the least loop lag."""
        open_ = [b for b in self.beats if self.free_of(b) > 0 and b.media_url]
        return min(
            open_, key=lambda b: (-self.free_of(b), b.loop_lag_ms, b.worker_id), default=None
        )


async def read_beats(redis: Any, keys: FleetKeys) -> tuple[WorkerBeat, ...]:
    """The beats of the workers still beating (an expired beat is a worker gone)."""
    ids: Sequence[str] = await redis.zrange(keys.workers, 0, -1)
    if not ids:
        return ()
    texts = await redis.mget([keys.worker(worker_id) for worker_id in ids])
    beats = []
    for worker_id, text in zip(ids, texts, strict=True):
        if text is None:
            continue
        try:
            beats.append(load(WorkerBeat, text))
        except ValueError as e:  # a beat from another version: skipped, said once per read
            _log.warning("worker %s: unreadable beat: %s", worker_id, e)
    return tuple(beats)


async def fleet_view(redis: Any, keys: FleetKeys) -> FleetView:
    """The live beats, and the jobs waiting for a worker."""
    beats = await read_beats(redis, keys)
    pending, unread = await queue_depth(redis, keys)
    return FleetView(beats=beats, unread=unread, pending=pending)


def routed_key(keys: FleetKeys, beat: WorkerBeat) -> str:
    """Counts the Twilio calls routed to a worker since a beat: a new beat, a new count."""
    return f"{keys.prefix}:routed:{beat.worker_id}:{beat.beat_at!r}"


async def with_routed(redis: Any, keys: FleetKeys, view: FleetView) -> FleetView:
    """``view`` with the calls routed to each worker since its beat."""
    if not view.beats:
        return view
    counts = await redis.mget([routed_key(keys, beat) for beat in view.beats])
    routed = {b.worker_id: int(n) for b, n in zip(view.beats, counts, strict=True) if n}
    return attrs.evolve(view, routed=routed)


def after_url(media_url: str) -> str:
    """A worker's ``/twilio/after``, beside its media stream URL."""
    parts = urlsplit(media_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rsplit("/", 1)[0] + "/after"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


@attrs.define(kw_only=True, eq=False)
class Ingress:
    """The ingress's ASGI app (see the module docstring).

    Args:
        redis: the fleet's Redis (a ``coredis`` client, entered).
        rest: the calls API of the Realtime server (accept, reject); without
            it SIP webhooks are refused.
        keys: the fleet's keys.
        url: the Realtime server's URL, for the jobs (``None``: the hosted API).
        public_url: the base URL Twilio reaches the ingress at, for its
            signature checks (``None``: the request's ``Host``).
        webhook_secret: signs the Realtime API's webhooks.
        twilio_auth_token: signs Twilio's requests.
        metrics: the ingress's metrics.
        jobs_max: about how many entries ``P:jobs`` keeps.
        seen_ttl_s: how long a delivery is remembered.
    """

    redis: Any
    rest: RestClient | None = None
    keys: FleetKeys = attrs.field(factory=FleetKeys)
    url: str | None = None
    public_url: str | None = None
    webhook_secret: str | None = attrs.field(default=None, repr=False)
    twilio_auth_token: str | None = attrs.field(default=None, repr=False)
    metrics: RoleMetrics = attrs.field(factory=lambda: RoleMetrics("ingress"))
    jobs_max: int = JOBS_MAX
    seen_ttl_s: int = SEEN_TTL_S
    ops: Ops = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.ops = Ops(
            metrics=self.metrics, probes={"redis": redis_probe(self.redis)}, refresh=self.sample
        )

    async def sample(self) -> None:
        """The queue's depth and the fleet's capacity, for ``/metrics``."""
        view = await fleet_view(self.redis, self.keys)
        self.metrics.set_queue(pending=view.pending, lag=view.unread)
        self.metrics.set_fleet(workers=len(view.beats), capacity=view.capacity, free=view.free)

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.ops(scope, receive, send)  # lifespan, or a WebSocket refused
            return
        answer = await self.ops.answer(scope["method"], scope["path"])
        if answer is None:
            answer = await self._http(scope, receive)
        await respond(send, *answer)

    async def _http(self, scope: Scope, receive: Receive) -> tuple[int, str, bytes]:
        try:
            status, content_type, body = await route_request(self, _ROUTES, scope, receive)
        except _REDIS_ERRORS as e:
            _log.warning("%s %s: Redis failed: %s", scope["method"], scope["path"], one_line(e))
            return 503, "text/plain", b"the fleet's Redis is unreachable; retry later"
        if status in (400, 403):
            self.metrics.webhooks_refused.inc()
        return status, content_type, body

    # --- SIP ----------------------------------------------------------------------------

    async def _sip(self, scope: Scope, body: bytes) -> tuple[str, str]:
        if self.rest is None:
            raise HttpRefusal(403, "SIP calls are not served: set OPENAI_WEBHOOK_SECRET")
        webhook_id, event = sip_webhook(scope, body, secret=self.webhook_secret)
        if event.get("type") != "realtime.call.incoming":
            return "text/plain", "ignored: not realtime.call.incoming"
        try:
            call = call_from_event(event, SipLeg(self.rest, ""))
        except ValueError as e:
            raise HttpRefusal(400, str(e)) from None
        if not await self._first_time(webhook_id, call.id):
            return "text/plain", "duplicate delivery: already handled"
        try:
            return "text/plain", await self._answer_sip(call.id, call.caller, call.callee, event)
        except RestError as e:
            if e.status in (404, 409):
                return "text/plain", f"the call is gone: {e}"  # a retry would not help
            await self._forget(webhook_id)  # the sender retries; handle it then
            raise HttpRefusal(502, f"could not answer the call: {e}") from None
        except _REDIS_ERRORS:
            await self._forget(webhook_id)
            raise

    async def _answer_sip(
        self, call_id: str, caller: str | None, callee: str | None, event: dict[str, Any]
    ) -> str:
        assert self.rest is not None
        view = await fleet_view(self.redis, self.keys)
        if view.free <= 0:
            await self.rest.reject_call(call_id, status_code=SIP_BUSY)
            self.metrics.rejected_busy.inc()
            _log.info("call %s rejected busy: no free slot in %d workers", call_id, len(view.beats))
            return "rejected: busy"
        await self.rest.accept_call(call_id)
        job = AttachJob(
            call_id=call_id,
            kind="sip",
            url=self.url,
            caller=caller or "",
            callee=callee or "",
            event=event,
        )
        await self._add_job(job)
        return "accepted"

    # --- Twilio -------------------------------------------------------------------------

    async def _voice(self, scope: Scope, body: bytes) -> tuple[str, str]:
        form = twilio_form(
            scope, body, auth_token=self.twilio_auth_token, public_url=self.public_url
        )
        call_sid = form.get("CallSid", "")
        if not call_sid or len(call_sid) > 64 or not call_sid.isalnum():
            raise HttpRefusal(400, "the voice webhook has no CallSid (or not one)")
        seen = self.keys.seen(f"twilio:{call_sid}")
        earlier = await self.redis.get(seen)
        if earlier is None:
            view = await with_routed(self.redis, self.keys, await fleet_view(self.redis, self.keys))
            chosen = view.pick()
            if chosen is None:
                self.metrics.rejected_busy.inc()
                _log.info("call %s turned away: no worker with a free slot", call_sid)
                return "text/xml", twiml_busy()
            assert chosen.media_url is not None
            token = secrets.token_urlsafe(24)
            answer = f"{chosen.worker_id} {chosen.media_url} {token}"
            if await self.redis.set(
                seen, answer, condition=coredis.PureToken.NX, ex=self.seen_ttl_s
            ):
                return "text/xml", await self._route_twilio(call_sid, form, chosen, token)
            earlier = await self.redis.get(seen)  # another replica answered it meanwhile
        if earlier is None:
            raise HttpRefusal(409, "this call is being answered elsewhere; retry")
        # A retry: the same worker and token again, and no second job.
        self.metrics.webhooks_deduplicated.inc()
        _, media_url, token = earlier.split(" ", 2)
        return "text/xml", twiml_connect(media_url, after_url(media_url), token)

    async def _route_twilio(
        self, call_sid: str, form: dict[str, str], chosen: WorkerBeat, token: str
    ) -> str:
        """Adds the job for the chosen worker; the TwiML that sends the media there."""
        assert chosen.media_url is not None
        job = AttachJob(
            call_id=call_sid,
            kind="twilio",
            url=self.url,
            caller=form.get("From", ""),
            callee=form.get("To", ""),
            worker_id=chosen.worker_id,
            event={"form": form, "token": token},
        )
        try:
            await self._add_job(job)
        except _REDIS_ERRORS:
            await self._forget(f"twilio:{call_sid}")
            raise
        # Until the worker's next beat counts this call, the next pick counts it here.
        routed = routed_key(self.keys, chosen)
        await self.redis.incr(routed)
        await self.redis.expire(routed, ROUTED_TTL_S)
        return twiml_connect(chosen.media_url, after_url(chosen.media_url), token)

    # --- Redis --------------------------------------------------------------------------

    async def _first_time(self, webhook_id: str, call_id: str) -> bool:
        """Records a delivery across every replica; ``False`` for one handled already."""
        first = await self.redis.set(
            self.keys.seen(webhook_id), call_id, condition=coredis.PureToken.NX, ex=self.seen_ttl_s
        )
        if not first:
            self.metrics.webhooks_deduplicated.inc()
        return bool(first)

    async def _forget(self, webhook_id: str) -> None:
        """Forgets a delivery that failed, so that the sender's retry is handled (best effort)."""
        with trio.move_on_after(2):
            try:
                await self.redis.delete([self.keys.seen(webhook_id)])
            except _REDIS_ERRORS as e:
                _log.warning("could not forget delivery %s: %s", webhook_id, one_line(e))

    async def _add_job(self, job: AttachJob) -> None:
        await self.redis.xadd(
            self.keys.jobs,
            {"json": dump(job)},
            trim_strategy=coredis.PureToken.MAXLEN,
            trim_operator=coredis.PureToken.APPROXIMATELY,
            threshold=self.jobs_max,
        )
        self.metrics.calls_accepted.inc()
        _log.info("call %s (%s): job added", job.call_id, job.kind)


_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/sip/webhook"): Ingress._sip,
    ("POST", "/twilio/voice"): Ingress._voice,
}
"""The webhook endpoints: each returns its content type and body, or raises ``HttpRefusal``."""
