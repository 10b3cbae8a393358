"""The phone endpoint's HTTP routes under arbitrary requests: a clear status, never a crash.

The ASGI app is called directly (no socket), so that thousands of requests
run in seconds: arbitrary bodies and headers to the webhook routes, and
signed requests whose content is arbitrary, must each get one of the
documented answers and start no call.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.engine import new_webhook_secret, webhook_headers
from framework.telephony import PhoneAgent, PhoneServer, signature_for

SECRET = new_webhook_secret()
TOKEN = "fuzz-token"
ROUTES = ["/twilio/voice", "/twilio/after", "/sip/webhook", "/health", "/nowhere"]


async def request(
    server: PhoneServer, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "scheme": "http",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await server(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return int(sent[0]["status"]), bytes(sent[1]["body"])


def answers(body: bytes, headers: dict[str, str], path: str, method: str = "POST") -> int:
    async def run() -> int:
        server = PhoneServer(
            agent=PhoneAgent,
            url="ws://127.0.0.1:9/v1/realtime",
            api_key="sk-test",
            twilio_auth_token=TOKEN,
            webhook_secret=SECRET,
        )
        async with server.running():
            status, text = await request(server, method, path, body, headers)
            assert text, "every answer says something"
            for call in list(server.calls.values()):
                call.end("fuzz")
        return status

    return trio.run(run)


HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "x-twilio-signature",
                "content-type",
            ]
        ),
        HEADER_VALUES,
    ),
    path=st.sampled_from(ROUTES),
)
def test_arbitrary_requests_get_a_clear_answer(
    body: bytes, headers: dict[str, str], path: str
) -> None:
    status = answers(body, headers, path)
    expected = {
        "/twilio/voice": {403},
        "/twilio/after": {403},
        "/sip/webhook": {400},
        "/health": {404},  # only GET serves it
        "/nowhere": {404},
    }[path]
    assert status in expected


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.dictionaries(st.sampled_from(["type", "data", "id"]), JSON, max_size=3))
def test_signed_webhooks_with_arbitrary_content_are_answered_and_start_nothing(
    event: dict[str, Any],
) -> None:
    body = orjson.dumps(event)
    headers = webhook_headers(body, SECRET, webhook_id="wh_fuzz", timestamp=int(time.time()))
    status = answers(body, headers, "/sip/webhook")
    # Not a call (ignored, 200) or a call with no call_id (400): never a crash.
    assert status in {200, 400}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=st.dictionaries(st.sampled_from(["From", "To", "CallStatus", "Digits"]), HEADER_VALUES))
def test_a_signed_voice_webhook_without_a_call_sid_is_refused(form: dict[str, str]) -> None:
    from urllib.parse import urlencode

    url = "http://127.0.0.1/twilio/voice"
    headers = {
        "host": "127.0.0.1",
        "x-twilio-signature": signature_for(TOKEN, url, form),
        "content-type": "application/x-www-form-urlencoded",
    }
    assert answers(urlencode(form).encode(), headers, "/twilio/voice") == 400


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=JSON
    | st.fixed_dictionaries(
        {"call_id": JSON | st.text(min_size=1, max_size=12) | st.from_regex(r"rtc_[a-f0-9]{8}\Z")},
        optional={"sip_headers": JSON},
    )
)
def test_an_incoming_call_the_server_cannot_reach_is_a_502_and_retried(data: object) -> None:
    event = {"type": "realtime.call.incoming", "data": data}
    body = orjson.dumps(event)
    headers = webhook_headers(body, SECRET, webhook_id="wh_fuzz", timestamp=int(time.time()))
    status = answers(body, headers, "/sip/webhook")
    # No call_id: 400. A call_id, but the Realtime server is not there: 502, so the sender retries.
    call_id = data.get("call_id") if isinstance(data, dict) else None
    has_call = isinstance(call_id, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,128}", call_id)
    assert status == (502 if has_call else 400)
