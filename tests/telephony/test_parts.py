"""The telephony parts on their own: the keypad, playout, marks, webhooks, frames.

Timing runs on trio's MockClock; the webhook checks are held against the
official SDK's own verification, and the frame parser is fuzzed.
"""

from __future__ import annotations

import base64
import time

import openai
import orjson
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.engine import new_webhook_secret, webhook_headers
from framework.runtime import AssistantDelta, DtmfReceived, ResponseFinished, SessionEvent
from framework.telephony import (
    Clear,
    Connected,
    Dtmf,
    Mark,
    MarkedSink,
    Media,
    MediaStreamError,
    PhoneCall,
    RecentDeliveries,
    Start,
    Stop,
    WebhookRefused,
    dump_message,
    parse_message,
    signature_for,
    signature_ok,
    verify_webhook,
)


class Leg:
    """A carrier leg whose playout the test finishes by hand."""

    def __init__(self) -> None:
        self.played = trio.Event()
        self.actions: list[str] = []

    async def wait_played(self) -> None:
        await self.played.wait()

    async def hang_up(self) -> None:
        self.actions.append("hang up")

    async def transfer(self, target: str) -> None:
        self.actions.append(f"transfer {target}")

    def observe(self, event: SessionEvent) -> None:
        pass


def phone_call() -> tuple[PhoneCall, Leg]:
    leg = Leg()
    return PhoneCall(id="CA1", carrier="twilio", leg=leg, caller="+14155550100"), leg


def press(call: PhoneCall, keys: str) -> None:
    for key in keys:
        call.observe(DtmfReceived(digit=key, received_at=0))


# --- the keypad ---------------------------------------------------------------------------


async def test_collect_digits_stops_at_the_count_and_keeps_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, _ = phone_call()
    press(call, "123456")
    assert await call.collect_digits(4) == "1234"
    assert await call.collect_digits(2) == "56"


async def test_collect_digits_ends_at_hash_which_is_not_returned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, _ = phone_call()
    async with trio.open_nursery() as nursery:

        async def typist() -> None:
            for key in "98#7":
                await trio.sleep(1)
                press(call, key)

        nursery.start_soon(typist)
        assert await call.collect_digits() == "98"
        assert trio.current_time() == pytest.approx(3)


async def test_collect_digits_gives_up_after_a_silent_key_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, _ = phone_call()
    async with trio.open_nursery() as nursery:

        async def typist() -> None:
            await trio.sleep(2)
            press(call, "4")

        nursery.start_soon(typist)
        digits = await call.collect_digits(4, key_timeout=3)
    assert digits == "4"
    # The second key never came: three seconds after the first.
    assert trio.current_time() == pytest.approx(5)


async def test_keys_that_are_not_keys_are_ignored_and_type_ahead_is_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, _ = phone_call()
    press(call, "1x2")
    press(call, "3" * 500)
    digits = await call.collect_digits(1000, key_timeout=1)
    assert digits.startswith("3")  # the oldest went first
    assert len(digits) == 64


async def test_collect_digits_returns_when_the_call_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, _ = phone_call()
    press(call, "5")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_end_after, call, 1.0)
        assert await call.collect_digits(3, key_timeout=60) == "5"
    assert trio.current_time() == pytest.approx(1)


async def _end_after(call: PhoneCall, seconds: float) -> None:
    await trio.sleep(seconds)
    call.end("the caller hung up")


# --- playout, hang-up, transfer --------------------------------------------------------------


def speak(call: PhoneCall, response: str) -> None:
    call.observe(AssistantDelta(response_id=response, item_id="i", delta="bye", kind="transcript"))


async def test_hang_up_waits_for_the_response_and_then_its_playout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, leg = phone_call()
    speak(call, "resp_1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call.hang_up)
        await trio.sleep(5)
        call.observe(ResponseFinished(response_id="resp_1", status="completed", usage=None))
        await trio.testing.wait_all_tasks_blocked()
        assert leg.actions == []  # finished, but not heard yet
        await trio.sleep(2)
        leg.played.set()
    assert leg.actions == ["hang up"]
    assert call.ended.is_set()
    assert trio.current_time() == pytest.approx(7)


async def test_transfer_needs_a_tel_or_sip_target_and_waits_for_playout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, leg = phone_call()
    with pytest.raises(ValueError, match="tel:"):
        await call.transfer("+14155550123")
    leg.played.set()
    await call.transfer("tel:+14155550123")
    assert leg.actions == ["transfer tel:+14155550123"]
    assert call.transferred_to == "tel:+14155550123"


async def test_hang_up_on_an_ended_call_does_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    call, leg = phone_call()
    speak(call, "resp_1")
    call.end("the caller hung up")
    await call.hang_up()
    assert leg.actions == []
    assert call.end_reason == "the caller hung up"


# --- the marked sink ---------------------------------------------------------------------------


class Wire:
    """What the sink sent to Twilio."""

    def __init__(self) -> None:
        self.sent: list[Media | Mark | Clear] = []

    async def send(self, text: str) -> None:
        message = parse_message(text)
        assert isinstance(message, Media | Mark | Clear)
        self.sent.append(message)

    def marks(self) -> list[str]:
        return [m.name for m in self.sent if isinstance(m, Mark)]

    def audio(self) -> bytes:
        return b"".join(m.payload for m in self.sent if isinstance(m, Media))


async def test_the_sink_passes_mu_law_through_byte_for_byte(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink, wire = MarkedSink(lead_ms=100_000), Wire()
    audio = bytes(range(256)) * 10 + b"\x7f" * 37  # every code, and a short last frame
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run, wire.send, "MZ1")
        sink.write("item_1", audio[:1000])
        sink.write("item_1", audio[1000:])
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert wire.audio() == audio
    assert all(len(m.payload) <= 160 for m in wire.sent if isinstance(m, Media))
    assert wire.marks()[-1] == f"item_1:{len(audio)}"


async def test_played_position_follows_acknowledged_marks_not_sent_bytes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink, wire = MarkedSink(), Wire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run, wire.send, "MZ1")
        sink.write("item_1", b"\x00" * 8000)  # one second
        await trio.testing.wait_all_tasks_blocked()
        assert len(wire.audio()) == 8000  # all out at Twilio (within the lead)
        assert sink.played_ms("item_1") == 0  # but nothing heard yet
        await trio.sleep(0.5)
        # No acknowledgement: the frame playing counts, at most its 20 ms.
        assert sink.played_ms("item_1") == 20
        sink.acknowledged(wire.marks()[9])  # ten frames heard
        assert sink.played_ms("item_1") == 200
        await trio.sleep(0.010)
        assert sink.played_ms("item_1") == 210
        sink.clear()
        await trio.testing.wait_all_tasks_blocked()
        assert isinstance(wire.sent[-1], Clear)
        # Twilio echoes the marks the clear dropped: they are not audio heard.
        for name in wire.marks()[10:]:
            sink.acknowledged(name)
        assert sink.played_ms("item_1") == 210
        assert not sink.playing
        nursery.cancel_scope.cancel()


async def test_the_sink_sends_no_further_ahead_than_its_lead_and_bounds_its_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink, wire = MarkedSink(lead_ms=100, max_queued_ms=1000), Wire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run, wire.send, "MZ1")
        sink.write("item_1", b"\x00" * 8 * 5000)  # five seconds, into a one-second queue
        await trio.testing.wait_all_tasks_blocked()
        assert len(wire.audio()) == 800  # 100 ms out
        assert sink.stats["bytes_dropped"] == 8 * 5000 - 8 * 1000
        sink.acknowledged(wire.marks()[0])
        await trio.testing.wait_all_tasks_blocked()
        assert len(wire.audio()) == 960  # one frame heard, one more sent
        nursery.cancel_scope.cancel()


async def test_drain_returns_once_every_mark_is_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink, wire = MarkedSink(), Wire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run, wire.send, "MZ1")
        sink.write("item_1", b"\x00" * 480)
        await trio.testing.wait_all_tasks_blocked()
        drained = False

        async def drain() -> None:
            nonlocal drained
            await sink.drain()
            drained = True

        nursery.start_soon(drain)
        for name in wire.marks()[:2]:
            sink.acknowledged(name)
            await trio.testing.wait_all_tasks_blocked()
            assert not drained
        sink.acknowledged(wire.marks()[2])
        await trio.testing.wait_all_tasks_blocked()
        assert drained
        nursery.cancel_scope.cancel()


# --- webhooks ------------------------------------------------------------------------------------


def sdk_accepts(body: bytes, headers: dict[str, str], secret: str) -> bool:
    client = openai.OpenAI(api_key="sk-test", webhook_secret=secret)
    try:
        client.webhooks.verify_signature(body, headers)
    except openai.InvalidWebhookSignatureError:
        return False
    return True


def test_webhook_verification_agrees_with_the_official_sdk() -> None:
    secret = new_webhook_secret()
    body = b'{"type":"realtime.call.incoming","data":{"call_id":"rtc_1"}}'
    now = int(time.time())
    good = webhook_headers(body, secret, webhook_id="wh_1", timestamp=now)
    cases = {
        "signed": (body, good, True),
        "body changed": (body + b" ", good, False),
        "id changed": (body, dict(good, **{"webhook-id": "wh_2"}), False),
        "other secret": (
            body,
            webhook_headers(body, new_webhook_secret(), webhook_id="wh_1", timestamp=now),
            False,
        ),
        "one of several": (
            body,
            dict(good, **{"webhook-signature": "v1,AAAA " + good["webhook-signature"]}),
            True,
        ),
        "too old": (
            body,
            webhook_headers(body, secret, webhook_id="wh_1", timestamp=now - 600),
            False,
        ),
    }
    for name, (payload, headers, expected) in cases.items():
        assert sdk_accepts(payload, headers, secret) is expected, name
        try:
            verify_webhook(payload, headers, secret)
            ours = True
        except WebhookRefused:
            ours = False
        assert ours is expected, name


def test_a_webhook_without_its_headers_says_which_is_missing() -> None:
    with pytest.raises(WebhookRefused, match="webhook-signature"):
        verify_webhook(b"{}", {"webhook-id": "wh_1", "webhook-timestamp": "1"}, "whsec_AA==")


def test_recent_deliveries_drop_duplicates_within_bounds() -> None:
    seen = RecentDeliveries(keep=3, memory_s=60)
    assert seen.first_time("a", now=0)
    assert not seen.first_time("a", now=1)
    for name in "bcd":
        assert seen.first_time(name, now=2)
    assert len(seen) == 3  # "a" went: at most three are kept
    assert seen.first_time("a", now=3)
    assert seen.first_time("b", now=100)  # forgotten after a minute
    seen.forget("b")
    assert seen.first_time("b", now=101)


# --- Twilio's signatures and frames ---------------------------------------------------------


def test_twilio_signature_is_checked_on_url_and_form() -> None:
    url = "https://phone.example/twilio/voice"
    form = {"CallSid": "CA1", "From": "+14155550100"}
    signature = signature_for("token", url, form)
    assert signature_ok("token", url, form, signature)
    assert not signature_ok("token", url, dict(form, From="+14155550999"), signature)
    assert not signature_ok("other", url, form, signature)
    assert not signature_ok("token", url + "?x=1", form, signature)


def test_a_url_from_a_forged_host_header_signs_nothing() -> None:
    # The URL's host is the request's Host header; "[" does not parse as one.
    form = {"CallSid": "CA1"}
    assert not signature_ok("token", "http://[/twilio/voice", form, "anything")


MESSAGES = [
    Connected(),
    Start(stream_sid="MZ1", call_sid="CA1", custom_parameters={"k": "v"}),
    Media(stream_sid="MZ1", payload=bytes(range(256)), track="inbound", chunk="1", timestamp="20"),
    Mark(stream_sid="MZ1", name="item_1:160"),
    Clear(stream_sid="MZ1"),
    Dtmf(stream_sid="MZ1", digit="#"),
    Stop(stream_sid="MZ1", call_sid="CA1"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_reads_back_as_written(message: object) -> None:
    assert parse_message(dump_message(message)) == message  # type: ignore[arg-type]


def test_a_twilio_media_frame_reads_as_twilio_sends_it() -> None:
    frame = (
        '{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1",'
        '"timestamp":"5","payload":"' + base64.b64encode(b"\xff\x7f").decode() + '"},'
        '"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}'
    )
    media = parse_message(frame)
    assert isinstance(media, Media)
    assert media.payload == b"\xff\x7f"
    assert media.sequence_number == "3"


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"event":"hello"}', "not a Media Streams event"),
        ('{"event":"media","streamSid":"MZ1","media":{"payload":"***"}}', "base64"),
        ('{"event":"mark","streamSid":"MZ1"}', "mark"),
        ('{"event":"dtmf","dtmf":{"digit":"1"}}', "streamSid"),
    ],
)
def test_a_bad_frame_is_refused_with_the_field_at_fault(frame: str, says: str) -> None:
    with pytest.raises(MediaStreamError, match=says):
        parse_message(frame)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENTS = st.sampled_from(["connected", "start", "media", "mark", "clear", "dtmf", "stop", "x"])


@settings(max_examples=300, deadline=None)
@given(
    event=EVENTS,
    fields=st.dictionaries(
        st.sampled_from(
            ["streamSid", "start", "media", "mark", "dtmf", "stop", "sequenceNumber", "protocol"]
        ),
        JSON,
        max_size=5,
    ),
)
def test_any_frame_is_a_message_or_a_media_stream_error(
    event: str, fields: dict[str, object]
) -> None:
    frame = orjson.dumps({"event": event, **fields})
    try:
        message = parse_message(frame)
    except MediaStreamError as e:
        assert str(e)  # a reason, never an empty message
        return
    assert isinstance(message, Connected | Start | Media | Mark | Clear | Dtmf | Stop)
    assert event != "x"
