"""The fleet's ingress, over real sockets, with a real Redis and the local engine as the API.

The engine plays the hosted Realtime API: its operator interface rings a
simulated SIP call and POSTs the signed ``realtime.call.incoming`` webhook to
the ingress, and it records what the calls API was asked (accept, reject).
Worker beats are written straight into Redis as the workers would write them.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

import attrs
import httpx2
import orjson
import trio

from framework.engine import (
    Engine,
    OperatorClient,
    new_webhook_secret,
    open_engine,
    webhook_headers,
)
from framework.fleet import (
    JOB_GROUP,
    AttachJob,
    FleetKeys,
    Ingress,
    WorkerBeat,
    dump,
    load,
    open_redis,
    serve_asgi,
)
from framework.telephony import signature_for

SECRET = new_webhook_secret()
TOKEN = "twilio-auth-token"
KEYS = FleetKeys("test")


@attrs.frozen
class Front:
    """The engine standing in for the API, its operator, and the ingress replicas."""

    engine: Engine
    operator: OperatorClient
    http: httpx2.AsyncClient
    redis: object
    ingresses: Sequence[Ingress]
    urls: Sequence[str]

    async def jobs(self) -> list[AttachJob]:
        entries = await self.redis.xrange(KEYS.jobs)  # type: ignore[attr-defined]
        return [load(AttachJob, entry.field_values["json"]) for entry in entries]


@asynccontextmanager
async def front(redis_url: str, *, replicas: int = 1) -> AsyncIterator[Front]:
    engine = Engine(webhook_secret=SECRET)
    async with (
        open_engine(engine) as running,
        open_redis(redis_url) as redis,
        httpx2.AsyncClient() as http,
        trio.open_nursery() as nursery,
    ):
        from framework.transport import open_rest_client

        async with open_rest_client(running.http_url, api_key="sk-test") as rest:
            ingresses = [
                Ingress(
                    redis=redis,
                    rest=rest,
                    keys=KEYS,
                    url=running.url,
                    webhook_secret=SECRET,
                    twilio_auth_token=TOKEN,
                )
                for _ in range(replicas)
            ]
            urls = [
                await nursery.start(partial(serve_asgi, ingress, host="127.0.0.1", port=0))
                for ingress in ingresses
            ]
            engine.webhook_url = urls[0] + "/sip/webhook"
            operator = OperatorClient(http, running.http_url.removesuffix("/v1"), api_key=None)
            yield Front(engine, operator, http, redis, ingresses, urls)
            nursery.cancel_scope.cancel()


async def beat(redis: object, *beats: WorkerBeat) -> None:
    """Writes beats as live workers do: the registry's score and the beat, with a TTL."""
    for one in beats:
        await redis.zadd(KEYS.workers, {one.worker_id: one.beat_at})  # type: ignore[attr-defined]
        await redis.set(KEYS.worker(one.worker_id), dump(one), ex=30)  # type: ignore[attr-defined]


def signed(event: dict[str, object], webhook_id: str) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(event)
    return body, webhook_headers(body, SECRET, webhook_id=webhook_id, timestamp=int(time.time()))


async def test_a_sip_call_is_verified_accepted_and_queued_once(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url) as f:
            await beat(f.redis, WorkerBeat(worker_id="w1", capacity=4, active=1))
            rung = await f.operator.ring(caller="sip:+14155550123@carrier.example")
            assert rung["delivery"]["status"] == 200
            call_id = rung["call_id"]
            assert f.engine.rest.calls[call_id].state == "accepted"
            (job,) = await f.jobs()
            assert (job.call_id, job.kind, job.caller) == (call_id, "sip", "+14155550123")
            assert job.url == f.ingresses[0].url
            assert job.event["type"] == "realtime.call.incoming"
            assert f.ingresses[0].metrics.calls_accepted._value.get() == 1.0


async def test_the_same_delivery_to_two_replicas_makes_one_job(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url, replicas=2) as f:
            f.engine.webhook_url = None  # the test delivers it, twice at once
            await beat(f.redis, WorkerBeat(worker_id="w1", capacity=4))
            call = f.engine.ring()
            body, headers = signed(call.webhook_event(), "wh_twice")
            answers: list[str] = []

            async def deliver(url: str) -> None:
                answer = await f.http.post(url + "/sip/webhook", content=body, headers=headers)
                assert answer.status_code == 200
                answers.append(answer.text)

            async with trio.open_nursery() as nursery:
                for url in f.urls:
                    nursery.start_soon(deliver, url)
            assert sorted(answers) == ["accepted", "duplicate delivery: already handled"]
            assert [job.call_id for job in await f.jobs()] == [call.id]
            # A retry after both replicas answered is a duplicate too.
            again = await f.http.post(f.urls[1] + "/sip/webhook", content=body, headers=headers)
            assert again.text == "duplicate delivery: already handled"
            assert len(await f.jobs()) == 1
            deduplicated = sum(i.metrics.webhooks_deduplicated._value.get() for i in f.ingresses)
            assert deduplicated == 2.0


async def test_a_full_fleet_rejects_the_call_busy(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url) as f:
            await beat(
                f.redis,
                WorkerBeat(worker_id="full", capacity=2, active=2),
                WorkerBeat(worker_id="leaving", capacity=4, active=0, draining=True),
            )
            first = await f.operator.ring()
            assert f.engine.rest.calls[first["call_id"]].state == "rejected"
            assert f.engine.rest.calls[first["call_id"]].status_code == 486  # Busy Here
            assert await f.jobs() == []

            # One free slot, already spoken for by a job no worker has read: busy still.
            await beat(f.redis, WorkerBeat(worker_id="full", capacity=3, active=2))
            await f.redis.xgroup_create(KEYS.jobs, JOB_GROUP, "$", mkstream=True)  # type: ignore[attr-defined]
            await f.redis.xadd(KEYS.jobs, {"json": dump(AttachJob(call_id="rtc_waiting"))})  # type: ignore[attr-defined]
            second = await f.operator.ring()
            assert f.engine.rest.calls[second["call_id"]].state == "rejected"

            # Once a worker has read it, the slot is the next call's.
            await f.redis.xreadgroup(JOB_GROUP, "full", streams={KEYS.jobs: ">"})  # type: ignore[attr-defined]
            third = await f.operator.ring()
            assert f.engine.rest.calls[third["call_id"]].state == "accepted"
            assert f.ingresses[0].metrics.rejected_busy._value.get() == 2.0


async def test_no_worker_at_all_is_busy_and_an_expired_beat_is_no_worker(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url) as f:
            # In the registry, but its beat expired: the worker is gone.
            await f.redis.zadd(KEYS.workers, {"gone": time.time() - 60})  # type: ignore[attr-defined]
            rung = await f.operator.ring()
            assert f.engine.rest.calls[rung["call_id"]].state == "rejected"


def twilio_form(call_sid: str) -> dict[str, str]:
    return {"CallSid": call_sid, "From": "+14155550100", "To": "+14155550199", "AccountSid": "AC1"}


async def voice(f: Front, form: dict[str, str], *, token: str = TOKEN) -> httpx2.Response:
    url = f.urls[0] + "/twilio/voice"
    signature = signature_for(token, url, form)
    return await f.http.post(url, data=form, headers={"X-Twilio-Signature": signature})


async def test_a_twilio_call_goes_to_the_worker_with_most_free_slots(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url) as f:
            await beat(
                f.redis,
                WorkerBeat(
                    worker_id="w1", capacity=4, active=3, media_url="wss://w1.example/twilio/media"
                ),
                WorkerBeat(
                    worker_id="w2", capacity=4, active=1, media_url="wss://w2.example/twilio/media"
                ),
                WorkerBeat(
                    worker_id="w3",
                    capacity=8,
                    active=0,
                    draining=True,
                    media_url="wss://w3.example/twilio/media",
                ),
            )
            answer = await voice(f, twilio_form("CA0001"))
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "text/xml"
            twiml = answer.text
            assert '<Stream url="wss://w2.example/twilio/media">' in twiml
            assert 'action="https://w2.example/twilio/after"' in twiml
            token = re.search(r'name="cantata_token" value="([^"]+)"', twiml)
            assert token is not None
            (job,) = await f.jobs()
            assert (job.call_id, job.kind, job.worker_id) == ("CA0001", "twilio", "w2")
            assert job.event["token"] == token.group(1)  # the worker knows the stream by it
            assert job.caller == "+14155550100"

            # Twilio retries the webhook: the same worker and token, and no second job.
            again = await voice(f, twilio_form("CA0001"))
            assert again.text == twiml
            assert len(await f.jobs()) == 1


async def test_calls_routed_since_a_beat_count_against_the_worker(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url) as f:
            big = WorkerBeat(
                worker_id="w1", capacity=2, media_url="wss://w1.example/m", beat_at=100.0
            )
            small = WorkerBeat(
                worker_id="w2", capacity=1, media_url="wss://w2.example/m", beat_at=100.0
            )
            await beat(f.redis, big, small)
            routed = []
            for n in range(4):  # faster than the workers beat
                answer = await voice(f, twilio_form(f"CA10{n}"))
                found = re.search(r"wss://(w\d)\.example", answer.text)
                routed.append(found.group(1) if found else "busy")
            assert routed == ["w1", "w1", "w2", "busy"]  # 2 + 1 slots, and no more
            # w1 beats again with one call ended: one slot, counted afresh.
            await beat(f.redis, attrs.evolve(big, active=1, beat_at=101.0))
            answer = await voice(f, twilio_form("CA105"))
            assert "wss://w1.example/m" in answer.text
            assert [job.worker_id for job in await f.jobs()] == ["w1", "w1", "w2", "w1"]


async def test_a_twilio_call_to_a_full_fleet_is_rejected_busy(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url) as f:
            await beat(
                f.redis,
                WorkerBeat(worker_id="w1", capacity=1, active=1, media_url="wss://w1.example/m"),
            )
            answer = await voice(f, twilio_form("CA0002"))
            assert answer.status_code == 200
            assert '<Reject reason="busy"' in answer.text
            assert await f.jobs() == []


async def test_forged_webhooks_are_refused_and_queue_nothing(redis_url: str) -> None:
    with trio.fail_after(30):
        async with front(redis_url) as f:
            await beat(
                f.redis, WorkerBeat(worker_id="w1", capacity=4, media_url="wss://w1.example/m")
            )
            call = f.engine.ring()
            body, headers = signed(call.webhook_event(), "wh_forged")
            forged = dict(headers, **{"webhook-signature": "v1,AAAA"})
            refused = await f.http.post(f.urls[0] + "/sip/webhook", content=body, headers=forged)
            assert refused.status_code == 400
            assert "signature" in refused.text
            stale = webhook_headers(
                body, SECRET, webhook_id="wh_old", timestamp=int(time.time()) - 3600
            )
            old = await f.http.post(f.urls[0] + "/sip/webhook", content=body, headers=stale)
            assert old.status_code == 400  # a replay of an old delivery
            wrong = await voice(f, twilio_form("CA0003"), token="not-the-token")
            assert wrong.status_code == 403
            assert await f.jobs() == []
            assert f.engine.rest.calls[call.id].state == "ringing"
            # ...and the forged delivery's id was not remembered: the real one still works.
            real = await f.http.post(f.urls[0] + "/sip/webhook", content=body, headers=headers)
            assert real.text == "accepted"


async def test_the_ingress_serves_its_health_and_metrics(redis_url: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with trio.fail_after(30):
        async with front(redis_url) as f:
            await beat(
                f.redis, WorkerBeat(worker_id="w1", capacity=4, active=1, media_url="wss://w/m")
            )
            await f.operator.ring()
            health = await f.http.get(f.urls[0] + "/healthz")
            assert health.status_code == 200
            assert health.json()["role"] == "ingress"
            text = (await f.http.get(f.urls[0] + "/metrics")).text
            found = {
                s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples
            }
            assert found["cantata_calls_accepted_total"] == 1.0
            assert found["cantata_fleet_workers"] == 1.0
            assert (found["cantata_fleet_capacity"], found["cantata_fleet_free"]) == (4.0, 2.0)
            assert found["cantata_jobs_lag"] == 1.0  # no group yet: the job is unread
