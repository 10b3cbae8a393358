"""The ingress under arbitrary requests: a clear status, never a crash, nothing queued by forgery.

The ASGI app is called directly (no socket) against a real Redis, so that
hundreds of requests run in seconds. Unsigned requests never reach Redis or
the calls API; signed ones with arbitrary content get one of the documented
answers. When Redis is down the answer is 503, and the sender retries.
"""

from __future__ import annotations

import gc
import time
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.engine import new_webhook_secret, webhook_headers
from framework.fleet import FleetKeys, Ingress, open_redis
from framework.telephony import signature_for
from framework.testing import redis_server
from framework.transport import open_rest_client
from tests.telephony.test_endpoint_fuzz import request  # any ASGI app, called directly

SECRET = new_webhook_secret()
TOKEN = "fuzz-token"
KEYS = FleetKeys("fuzz")
ROUTES = ["/sip/webhook", "/twilio/voice", "/healthz", "/metrics", "/nowhere"]
SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def answers(
    redis_url: str, body: bytes, headers: dict[str, str], path: str, method: str = "POST"
) -> tuple[int, int]:
    """The status of one request, and how many jobs the stream holds after it."""

    async def run() -> tuple[int, int]:
        with trio.fail_after(10):
            async with (
                open_redis(redis_url) as redis,
                open_rest_client("http://127.0.0.1:9/v1", api_key="sk-test") as rest,
            ):
                app = Ingress(
                    redis=redis,
                    rest=rest,
                    keys=KEYS,
                    webhook_secret=SECRET,
                    twilio_auth_token=TOKEN,
                )
                status, text = await request(app, method, path, body, headers)  # type: ignore[arg-type]
                assert text, "every answer says something"
                return status, await redis.xlen(KEYS.jobs)

    return trio.run(run)


HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=120, deadline=None, suppress_health_check=SLOW)
@given(
    body=st.binary(max_size=300),
    headers=st.dictionaries(
        st.sampled_from(
            ["webhook-id", "webhook-timestamp", "webhook-signature", "x-twilio-signature", "host"]
        ),
        HEADER_VALUES,
    ),
    path=st.sampled_from(ROUTES),
    method=st.sampled_from(["POST", "GET", "PUT"]),
)
def test_arbitrary_requests_get_a_clear_answer_and_queue_nothing(
    redis_url: str, body: bytes, headers: dict[str, str], path: str, method: str
) -> None:
    status, jobs = answers(redis_url, body, headers, path, method)
    expected = {
        "/sip/webhook": {400} if method == "POST" else {404},
        "/twilio/voice": {403} if method == "POST" else {404},
        "/healthz": {200} if method == "GET" else {405},
        "/metrics": {200} if method == "GET" else {405},
        "/nowhere": {404},
    }[path]
    assert status in expected
    assert jobs == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=120, deadline=None, suppress_health_check=SLOW)
@given(
    event=st.dictionaries(st.sampled_from(["type", "data", "id"]), JSON, max_size=3),
    call_id=st.none() | st.text(max_size=12),
)
def test_signed_webhooks_with_arbitrary_content_are_answered(
    redis_url: str, event: dict[str, Any], call_id: str | None
) -> None:
    if call_id is not None:  # half of them look like calls, with any call_id
        event = {**event, "type": "realtime.call.incoming", "data": {"call_id": call_id}}
    body = orjson.dumps(event)
    headers = webhook_headers(body, SECRET, webhook_id="wh_fuzz", timestamp=int(time.time()))
    status, jobs = answers(redis_url, body, headers, "/sip/webhook")
    # Ignored (200), not a call (400), or a call whose API is down (502, retried): never a crash.
    # No worker beats: a well-formed call is rejected busy, and that too goes to the API (502).
    assert status in {200, 400, 502}
    assert jobs == 0


@settings(max_examples=80, deadline=None, suppress_health_check=SLOW)
@given(form=st.dictionaries(st.sampled_from(["CallSid", "From", "To", "Digits"]), HEADER_VALUES))
def test_signed_voice_webhooks_with_arbitrary_forms_are_answered(
    redis_url: str, form: dict[str, str]
) -> None:
    url = "http://127.0.0.1/twilio/voice"
    headers = {"host": "127.0.0.1", "x-twilio-signature": signature_for(TOKEN, url, form)}
    status, jobs = answers(redis_url, urlencode(form).encode(), headers, "/twilio/voice")
    # No worker has a slot: busy TwiML for a call, 400 for a form that names none.
    call_sid = form.get("CallSid", "")
    assert status == (200 if call_sid.isalnum() and len(call_sid) <= 64 else 400)
    assert jobs == 0


# coredis (6.9) leaves a failed connection's buffers to the collector, which warns
# of each (see test_ops); the warnings are swept here, under this test's filters.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_with_redis_down_a_webhook_is_503_and_health_says_why() -> None:
    from .test_ops import _shut_down

    with trio.fail_after(30), redis_server() as url:
        async with open_redis(url) as redis:
            app = Ingress(redis=redis, keys=KEYS, twilio_auth_token=TOKEN)
            await _shut_down(url)
            form = {"CallSid": "CA1", "From": "+1", "To": "+2"}
            target = "http://127.0.0.1/twilio/voice"
            headers = {
                "host": "127.0.0.1",
                "x-twilio-signature": signature_for(TOKEN, target, form),
            }
            body = urlencode(form).encode()
            status, text = await request(app, "POST", "/twilio/voice", body, headers)  # type: ignore[arg-type]
            assert status == 503
            assert b"Redis is unreachable" in text
            status, text = await request(app, "GET", "/healthz", b"", {})  # type: ignore[arg-type]
            assert status == 503
            assert orjson.loads(text)["reason"].startswith("redis: unreachable")
    gc.collect()
