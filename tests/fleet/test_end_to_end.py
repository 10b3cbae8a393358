"""A SIP call end to end: webhook, ingress, job, worker, talk; then a full fleet turns one away.

Everything is real but the carrier: the local engine plays the hosted API (it
rings the call and POSTs the signed ``realtime.call.incoming`` webhook), the
ingress verifies it, accepts the call and queues its job in a real Redis, and
a ``cantata worker`` process attaches and answers. Nothing here writes to
Redis by hand.
"""

from __future__ import annotations

from functools import partial

import trio

from framework.engine import new_webhook_secret
from framework.fleet import Ingress, serve_asgi

from .fleet import open_fleet


async def test_a_call_goes_from_webhook_to_a_worker_and_a_full_fleet_answers_busy(
    redis_url: str,
) -> None:
    with trio.fail_after(90):
        async with open_fleet(redis_url) as fleet, trio.open_nursery() as nursery:
            secret = new_webhook_secret()
            ingress = Ingress(
                redis=fleet.redis,
                rest=fleet.rest,
                keys=fleet.keys,
                url=fleet.realtime_url,
                webhook_secret=secret,
            )
            front = await nursery.start(partial(serve_asgi, ingress, host="127.0.0.1", port=0))
            fleet.engine.webhook_secret = secret
            fleet.engine.webhook_url = f"{front}/sip/webhook"
            worker = await fleet.start_worker(capacity=1)
            await fleet.beat_until(worker, lambda beat: beat.free == 1)

            rung = await fleet.operator.ring(caller="sip:+14155550123@carrier.example")
            assert rung["delivery"]["status"] == 200, rung["delivery"]
            call_id = rung["call_id"]
            up = await fleet.next_report("up")
            assert (up["call"], int(up["pid"])) == (call_id, worker.pid)
            assert await fleet.owner(call_id) == worker.worker_id

            await fleet.press(call_id, "1")  # "What is the weather in Paris"
            said = await fleet.next_report("said", where=lambda r: "Paris" in r["text"])
            assert said["text"] == "In Paris it is sunny."

            # The one worker is full once its beat says so: the next call is turned away busy.
            await fleet.beat_until(worker, lambda beat: beat.free == 0)
            refused = await fleet.operator.ring(caller="sip:+14155550199@carrier.example")
            assert refused["delivery"]["status"] == 200, refused["delivery"]
            turned_away = fleet.engine.rest.calls[refused["call_id"]]
            assert (turned_away.state, turned_away.status_code) == ("rejected", 486)
            assert await fleet.owner(refused["call_id"]) is None
            nursery.cancel_scope.cancel()
