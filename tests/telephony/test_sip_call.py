"""SIP calls through the Realtime Calls API, end to end, offline, over real sockets.

The local engine plays the SIP trunk: its operator interface rings a
simulated call and POSTs the signed ``realtime.call.incoming`` webhook to a
:class:`PhoneServer`, which verifies it, accepts the call with the agent's
configuration and attaches a session by ``call_id``. The engine records what
the calls API was asked (accept, reject, refer, hang-up), which is what these
tests read back.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
from framework.protocol import to_json
from framework.runtime import DtmfReceived, ToolCallFinished
from framework.telephony import PhoneServer, open_phone_server

from .phone import FRONT_DESK, GOODBYE, GREETING, Heard, Receptionist, engine, said

SECRET = new_webhook_secret()


@attrs.frozen
class Trunk:
    """The engine (with its operator client) and the phone server its calls reach."""

    engine: Engine
    operator: OperatorClient
    http: httpx2.AsyncClient
    webhook_url: str
    server: PhoneServer
    heard: Heard


@asynccontextmanager
async def sip_trunk(*, max_calls: int = 10) -> AsyncIterator[Trunk]:
    heard = Heard()
    the_engine = attrs.evolve(engine(), webhook_secret=SECRET)
    async with open_engine(the_engine) as running, httpx2.AsyncClient() as http:
        server = PhoneServer(
            agent=Receptionist,
            url=running.url,
            api_key="sk-test",
            webhook_secret=SECRET,
            max_calls=max_calls,
            on_call=heard.on_call,
        )
        async with open_phone_server(server) as base:
            # The engine learns where to announce calls once the phone server has a port.
            the_engine.webhook_url = base + "/sip/webhook"
            operator = OperatorClient(http, running.http_url.removesuffix("/v1"), api_key=None)
            yield Trunk(the_engine, operator, http, the_engine.webhook_url, server, heard)
            for call in list(server.calls.values()):
                call.end("the test is over")
            await server.wait_until(lambda s: not s.calls)


async def test_a_sip_call_is_verified_accepted_attached_transferred_and_hung_up() -> None:
    with trio.fail_after(60):
        async with sip_trunk() as trunk:
            rung = await trunk.operator.ring(caller="sip:+14155550123@carrier.example")
            call_id = rung["call_id"]
            assert rung["delivery"]["status"] == 200
            rest = trunk.engine.rest.calls[call_id]
            assert rest.state == "accepted"
            # Accepted with the agent's configuration, its instructions naming the caller,
            # and not the Twilio leg's G.711 format: on SIP the codec is the trunk's business.
            assert rest.session is not None
            assert "The caller is +14155550123." in str(rest.session.instructions)
            assert "audio/pcmu" not in to_json(rest.session.audio)  # the server's default

            # The session attaches by call_id and greets the caller first.
            await trunk.heard.wait_for(said(GREETING))
            assert rest.attachment is not None
            call = trunk.heard.calls[0]
            assert call.id == call_id
            assert call.carrier == "sip"
            assert call.caller == "+14155550123"

            # The same delivery again (a retry) is dropped; a forged one is refused.
            event = rung["webhook"]
            body = orjson.dumps(event)
            signed = webhook_headers(
                body, SECRET, webhook_id="wh_retry_1", timestamp=int(time.time())
            )
            first = await trunk.http.post(trunk.webhook_url, content=body, headers=signed)
            again = await trunk.http.post(trunk.webhook_url, content=body, headers=signed)
            assert (first.status_code, again.status_code) == (200, 200)
            assert "duplicate" in again.text
            forged = dict(signed, **{"webhook-id": "wh_forged"})
            refused = await trunk.http.post(trunk.webhook_url, content=body, headers=forged)
            assert refused.status_code == 400
            assert "signature" in refused.text
            assert len(trunk.heard.calls) == 1  # nothing answered twice

            # The keypad reaches the agent as typed events.
            await trunk.operator.dtmf(call_id, "12#")
            await trunk.heard.wait_for(lambda e: isinstance(e, DtmfReceived) and e.digit == "#")

            # A transfer is a refer, once the caller has heard the agent say so.
            assert call.session is not None
            await call.session.send_text("Put me through to the front desk please")
            await trunk.heard.wait_for(
                lambda e: isinstance(e, ToolCallFinished) and e.name == "transfer_call"
            )
            assert rest.referred_to == [FRONT_DESK]
            assert call.transferred_to == FRONT_DESK

            # Goodbye: end_call hangs up once the goodbye has played.
            await call.session.send_text("Thank you that is all goodbye")
            await trunk.heard.wait_for(said(GOODBYE))
            await call.ended.wait()
            assert call.end_reason == "hung up by the agent"
            assert rest.state == "ended"


async def test_a_call_beyond_capacity_is_rejected_busy() -> None:
    with trio.fail_after(60):
        async with sip_trunk(max_calls=1) as trunk:
            first = await trunk.operator.ring()
            second = await trunk.operator.ring()
            calls = trunk.engine.rest.calls
            assert calls[first["call_id"]].state == "accepted"
            assert calls[second["call_id"]].state == "rejected"
            assert calls[second["call_id"]].status_code == 486  # Busy Here
            assert second["delivery"]["status"] == 200


async def test_without_a_secret_every_webhook_is_refused() -> None:
    with trio.fail_after(30):
        server = PhoneServer(agent=Receptionist, webhook_secret=None, twilio_auth_token=None)
        async with open_phone_server(server) as base, httpx2.AsyncClient() as http:
            answer = await http.post(base + "/sip/webhook", content=b"{}")
            assert answer.status_code == 403
            assert "OPENAI_WEBHOOK_SECRET" in answer.text
