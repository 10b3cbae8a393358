"""The operator interface: ring a simulated SIP call, announce it with a signed
webhook, and press keypad keys in a live session or call.

The official SDK is the judge throughout: its ``webhooks.unwrap`` verifies the
signature, its calls client accepts the call, and every server event a client
reads (the DTMF events included) must validate against its models.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import attrs
import h11
import httpx2
import pytest
import trio
from openai import AsyncOpenAI, InvalidWebhookSignatureError, OpenAI
from openai.types.webhooks import RealtimeCallIncomingWebhookEvent

from framework.engine import (
    Engine,
    OperatorClient,
    OperatorError,
    RunningEngine,
    new_webhook_secret,
    open_engine,
    webhook_headers,
)

from .helpers import connect
from .served import CANTATA, spawn
from .test_rest import in_asyncio

KEY = "sk-cantata-operator"


def test_the_signature_is_what_the_sdk_verifies() -> None:
    secret = new_webhook_secret()
    body = json.dumps({"id": "evt_1", "object": "event", "type": "realtime.call.incoming"})
    now = int(time.time())
    headers = webhook_headers(body.encode(), secret, webhook_id="wh_1", timestamp=now)
    sdk = OpenAI(api_key="unused")
    sdk.webhooks.verify_signature(body, headers, secret=secret)
    with pytest.raises(InvalidWebhookSignatureError):
        sdk.webhooks.verify_signature(body.replace("evt_1", "evt_2"), headers, secret=secret)
    with pytest.raises(InvalidWebhookSignatureError):
        sdk.webhooks.verify_signature(body, headers, secret=new_webhook_secret())


@attrs.define
class Receiver:
    """An HTTP server that takes webhooks: it keeps each request and answers 200."""

    requests: list[tuple[dict[str, str], bytes]] = attrs.Factory(list)
    arrived: trio.Event = attrs.Factory(trio.Event)

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            conn = h11.Connection(h11.SERVER)
            request, body = None, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some())
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert request is not None
            headers = {k.decode(): v.decode() for k, v in request.headers}
            self.requests.append((headers, body))
            self.arrived.set()
            answer = h11.Response(status_code=200, headers=[("content-length", "0")])
            await stream.send_all(conn.send(answer) + conn.send(h11.EndOfMessage()))

    async def serve(self, *, task_status: trio.TaskStatus[int]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self.handle, listeners)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(receiver.serve)
        yield receiver, f"http://127.0.0.1:{port}/hooks"
        nursery.cancel_scope.cancel()


def _base(running: RunningEngine) -> str:
    return running.http_url.removesuffix("/v1")


async def test_a_rung_call_is_announced_accepted_attached_and_gets_dtmf(
    receiver: tuple[Receiver, str],
) -> None:
    hooks, hook_url = receiver
    secret = new_webhook_secret()
    engine = Engine(api_key=KEY, webhook_url=hook_url, webhook_secret=secret)
    with trio.fail_after(30):
        async with open_engine(engine) as running, httpx2.AsyncClient(timeout=10) as http:
            operator = OperatorClient(http, _base(running), api_key=KEY)
            rung = await operator.ring(caller="sip:+15551230000@example.invalid")
            assert rung["delivery"] == {"url": hook_url, "status": 200, "error": None}
            headers, body = hooks.requests[0]
            # What a telephony app does with it: verify, unwrap, accept.
            unwrapped = OpenAI(api_key="unused").webhooks.unwrap(body, headers, secret=secret)
            assert isinstance(unwrapped, RealtimeCallIncomingWebhookEvent)
            call_id = unwrapped.data.call_id
            assert call_id == rung["call_id"]
            assert unwrapped.data.sip_headers[0].value.startswith("<sip:+15551230000@")
            base = running.http_url

            async def accept() -> None:
                async with AsyncOpenAI(api_key=KEY, base_url=base) as sdk:
                    await sdk.realtime.calls.accept(call_id, type="realtime", model="gpt-realtime")

            await in_asyncio(accept)
            async with connect(
                f"{running.url}?call_id={call_id}", headers=[("Authorization", f"Bearer {KEY}")]
            ) as client:
                assert await operator.dtmf(call_id, "12#") == 3
                pressed = [(await client.until("input_audio_buffer.dtmf_event_received"))[-1]]
                pressed += [await client.recv() for _ in range(2)]
            assert [e["event"] for e in pressed] == ["1", "2", "#"]
            assert all(e["received_at"] == int(engine.clock()) for e in pressed)
            assert all("event_id" not in e for e in pressed)  # the hosted API sends none
            calls = await operator.calls()
            assert [(c["id"], c["state"]) for c in calls] == [(call_id, "accepted")]


async def test_dtmf_into_a_session_by_id() -> None:
    with trio.fail_after(20):
        async with (
            open_engine(Engine()) as running,
            httpx2.AsyncClient(timeout=10) as http,
            connect(running.url) as client,
        ):
            operator = OperatorClient(http, _base(running), api_key=None)
            (session,) = await operator.sessions()
            assert session["id"] == client.received[0]["session"]["id"]
            assert await operator.dtmf(session["id"], "a*") == 2
            events = await client.until("input_audio_buffer.dtmf_event_received")
            assert events[-1]["event"] == "A"
            assert (await client.recv())["event"] == "*"


async def test_bad_operator_requests_say_why() -> None:
    with trio.fail_after(20):
        async with (
            open_engine(Engine(api_key=KEY)) as running,
            httpx2.AsyncClient(timeout=10) as http,
        ):
            operator = OperatorClient(http, _base(running), api_key=KEY)
            stranger = OperatorClient(http, _base(running), api_key="sk-wrong-key-0000")
            with pytest.raises(OperatorError) as unauthorized:
                await stranger.calls()
            assert unauthorized.value.status == 401
            ringing = (await operator.ring())["call_id"]
            cases: list[tuple[Any, int, str]] = [
                (partial(operator.dtmf, "sess_nope", "1"), 404, "is not live"),
                (partial(operator.dtmf, ringing, "1"), 409, "no session attached"),
                (partial(operator.dtmf, "rtc_nope", "1"), 404, "not found"),
                (partial(operator.dtmf, "sess_x", "12x"), 400, "'X' is not a keypad key"),
                (partial(operator.ring, caller=""), 400, "caller"),
            ]
            for call, status, says in cases:
                with pytest.raises(OperatorError) as info:
                    await call()
                assert info.value.status == status and says in str(info.value), info.value
            unknown = await http.get(
                _base(running) + "/operator/nothing", headers={"authorization": f"Bearer {KEY}"}
            )
            assert unknown.status_code == 404


def test_a_webhook_url_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="needs a webhook secret"):
        Engine(webhook_url="http://127.0.0.1:9/hooks")


async def test_the_cli_rings_lists_and_presses_keys() -> None:
    with trio.fail_after(60):
        async with spawn("serve", "--port", "0") as served:
            await served.stdout.line_with("Ready")
            engine = f"http://127.0.0.1:{served.port}"

            async def cantata(*args: str) -> Any:
                result = await trio.run_process(
                    [*CANTATA, *args, "--engine", engine],
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
                assert result.returncode == 0, result.stderr.decode()
                return json.loads(result.stdout)

            rung = await cantata("ring", "--header", "X-Case=42")
            assert rung["webhook"]["data"]["sip_headers"][-1] == {"name": "X-Case", "value": "42"}
            async with connect(served.url) as client:
                listed = await cantata("calls")
                assert [c["id"] for c in listed["calls"]] == [rung["call_id"]]
                (session,) = listed["sessions"]
                assert (await cantata("dtmf", session["id"], "9"))["sent"] == 1
                events = await client.until("input_audio_buffer.dtmf_event_received")
                assert events[-1]["event"] == "9"
            missing = await trio.run_process(
                [*CANTATA, "dtmf", "sess_gone", "1", "--engine", engine],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            assert missing.returncode == 1
            assert missing.stderr.decode() == "cantata dtmf: Session 'sess_gone' is not live.\n"
