"""A Twilio call end to end, offline, over real sockets.

The simulated carrier (:func:`framework.telephony.dial`) calls a
:class:`PhoneServer` whose sessions run on the local engine (real ears, a
per-event latency), through a recording proxy that shows what crossed the
Realtime socket. The caller is greeted, asks a question answered with a tool,
barges in on a long answer, types an account number, and says goodbye; the
agent hangs up once the goodbye has played.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx2
import pytest
import trio
from trio_websocket import ConnectionClosed

from framework.engine import open_engine
from framework.runtime import (
    AssistantDelta,
    AssistantMessage,
    DtmfReceived,
    Interrupted,
    SessionEvent,
    SessionStarted,
    ToolCallStarted,
)
from framework.telephony import (
    Dtmf,
    PhoneServer,
    Start,
    Stop,
    TwilioCaller,
    TwilioLeg,
    dial,
    dump_message,
    open_media_stream,
    open_phone_server,
    signature_for,
)

from ..engine.wiretap import Tap, open_tap
from .phone import (
    ACCOUNT,
    AUTH_TOKEN,
    BYE,
    FRONT_DESK,
    GOODBYE,
    GREETING,
    HOURS,
    SERVICES,
    TRANSFER,
    Heard,
    Receptionist,
    engine,
    said,
    spoken,
)

BARGE_IN_TOLERANCE_MS = 20


@attrs.frozen
class Line:
    url: str
    server: PhoneServer
    tap: Tap
    heard: Heard


@asynccontextmanager
async def phone_line(**options: Any) -> AsyncIterator[Line]:
    """The engine behind a tap, and a phone server whose calls it answers."""
    heard = Heard()
    async with open_engine(engine()) as running, open_tap(running.url) as (url, tap):
        server = PhoneServer(
            agent=Receptionist,
            url=url,
            twilio_auth_token=AUTH_TOKEN,
            on_call=heard.on_call,
            **options,
        )
        async with open_phone_server(server) as base:
            yield Line(base, server, tap, heard)
            # Until every session has closed its socket: nothing is left open.
            await server.wait_until(lambda s: not s.calls)


async def heard_at_least(caller: TwilioCaller, item_id: str, count: int) -> None:
    """Returns once the caller has heard ``count`` bytes of ``item_id``."""
    reached = trio.Event()

    def check(name: str, at: float) -> None:
        if caller.heard_by_item.get(item_id, 0) >= count:
            reached.set()

    caller.on_mark = check
    check("", 0.0)
    await reached.wait()
    caller.on_mark = None


async def heard_whole(caller: TwilioCaller, tap: Tap, message: SessionEvent) -> None:
    """Returns once the caller has heard all of an assistant message's audio."""
    assert isinstance(message, AssistantMessage)
    await heard_at_least(caller, message.item_id, len(output_audio(tap, message.item_id)))


def output_audio(tap: Tap, item_id: str) -> bytes:
    """The audio the engine sent for ``item_id``, in order."""
    return b"".join(
        base64.b64decode(e["delta"])
        for e in tap.server_events()
        if e["type"] == "response.output_audio.delta" and e["item_id"] == item_id
    )


def input_audio(tap: Tap) -> bytes:
    """The caller's audio as the session appended it to the engine's buffer."""
    return b"".join(
        base64.b64decode(e["audio"])
        for e in tap.client_events()
        if e["type"] == "input_audio_buffer.append"
    )


async def test_a_call_from_greeting_to_goodbye() -> None:
    with trio.fail_after(90):
        async with phone_line() as line, dial(line.url, auth_token=AUTH_TOKEN) as caller:
            heard = line.heard
            greeting = await heard.wait_for(said(GREETING))
            assert isinstance(greeting, AssistantMessage)

            # The caller's number reached the model's instructions.
            updates = [e for e in line.tap.client_events() if e["type"] == "session.update"]
            assert "The caller is +14155550100." in updates[0]["session"]["instructions"]

            # The greeting is heard whole, byte for byte as the engine sent it.
            sent = output_audio(line.tap, greeting.item_id)
            assert len(sent) > 8000
            await heard_at_least(caller, greeting.item_id, len(sent))
            assert bytes(caller.heard[: len(sent)]) == sent

            # The caller's question goes in as the bytes it spoke; the answer needs a tool.
            await caller.say(spoken(HOURS))
            answer = await heard.wait_for(said("We are open from nine to five."))
            assert isinstance(answer, AssistantMessage)
            assert spoken(HOURS) in input_audio(line.tap)
            tools = [e.name for e in heard.events if isinstance(e, ToolCallStarted)]
            assert tools == ["opening_hours"]
            await heard_whole(caller, line.tap, answer)

            # Barge-in on a long answer: clear, and truncation where the caller was.
            await caller.say(spoken(SERVICES, silence_ms=200))
            asked = len(heard.events)
            first = await heard.wait_for(lambda e: isinstance(e, AssistantDelta), after=asked)
            assert isinstance(first, AssistantDelta)
            item = first.item_id
            await heard_at_least(caller, item, 8000)  # a second of it
            await caller.say(spoken("Hello there"))
            stop = await heard.wait_for(lambda e: isinstance(e, Interrupted))
            assert isinstance(stop, Interrupted)
            assert stop.item_id == item
            assert stop.truncated
            assert caller.clears, "the endpoint never sent clear"
            clear = caller.clears[0]
            assert clear.item_id == item
            # The truth: what the caller had heard when the endpoint cut the audio.
            leg = heard.calls[0].leg
            assert isinstance(leg, TwilioLeg)
            assert leg.sink.cleared_at is not None
            truth_ms = caller.heard_at(item, leg.sink.cleared_at) / 8
            assert abs(stop.played_ms - truth_ms) <= BARGE_IN_TOLERANCE_MS, (
                stop.played_ms,
                truth_ms,
            )
            # The line went quiet once the clear arrived: nothing queued played on.
            assert clear.heard_bytes == caller.heard_by_item[item]
            truncates = [
                e for e in line.tap.client_events() if e["type"] == "conversation.item.truncate"
            ]
            assert [(t["item_id"], t["audio_end_ms"]) for t in truncates] == [
                (item, stop.played_ms)
            ]
            assert caller.heard_by_item[item] < len(output_audio(line.tap, item))

            # The keypad: an account number up to the hash key.
            reply = await heard.wait_for(
                lambda e: isinstance(e, AssistantMessage) and e.item_id != item,
                after=heard.events.index(stop),
            )
            assert isinstance(reply, AssistantMessage)
            await heard_whole(caller, line.tap, reply)
            await caller.say(spoken(ACCOUNT))
            await heard.wait_for(
                lambda e: isinstance(e, ToolCallStarted) and e.name == "read_account_number"
            )
            await caller.press("4821#")
            thanks = await heard.wait_for(said("Thank you, account 4821."))
            keys = [e.digit for e in heard.events if isinstance(e, DtmfReceived)]
            assert keys == list("4821#")
            await heard_whole(caller, line.tap, thanks)

            # Goodbye: the call ends once the caller has heard all of it.
            await caller.say(spoken(BYE))
            bye = await heard.wait_for(said(GOODBYE))
            assert isinstance(bye, AssistantMessage)
            await caller.ended.wait()
            goodbye_audio = output_audio(line.tap, bye.item_id)
            assert len(goodbye_audio) > 4000
            assert caller.heard_by_item[bye.item_id] == len(goodbye_audio)
            assert caller.marks_echoed[-1] == f"{bye.item_id}:{len(goodbye_audio)}"
        assert "<Hangup" in caller.next_twiml
        call = line.heard.calls[0]
        assert call.end_reason == "hung up by the agent"
        assert call.caller == "+14155550100"


async def post_voice(line: Line, call_sid: str, *, token: str = AUTH_TOKEN) -> httpx2.Response:
    """Twilio's voice webhook for ``call_sid``, signed with ``token``."""
    url = line.url + "/twilio/voice"
    form = {"CallSid": call_sid, "From": "+14155550100", "To": "+14155550199"}
    async with httpx2.AsyncClient() as http:
        return await http.post(
            url, data=form, headers={"x-twilio-signature": signature_for(token, url, form)}
        )


async def test_the_session_opens_when_the_webhook_arrives_before_the_stream() -> None:
    with trio.fail_after(30):
        async with phone_line(stream_timeout_s=1.0) as line:
            answer = await post_voice(line, "CA_early")
            assert answer.status_code == 200
            assert "<Connect" in answer.text
            call = line.server.calls["CA_early"]
            await call.ended.wait()
            # The session was up while the stream never came; nothing was said to nobody.
            assert line.heard.calls == [call]
            assert call.end_reason == "the stream did not start within 1 s"
            assert not [e for e in line.heard.events if isinstance(e, AssistantMessage)]


async def test_a_forged_twilio_request_is_refused_and_answers_nothing() -> None:
    with trio.fail_after(30):
        async with phone_line() as line:
            answer = await post_voice(line, "CA_forged", token="not-the-auth-token")
            assert answer.status_code == 403
            assert "X-Twilio-Signature" in answer.text
            assert not line.server.calls


async def test_a_stream_must_present_its_call_token_and_survives_garbage() -> None:
    with trio.fail_after(30):
        async with phone_line() as line:
            answer = await post_voice(line, "CA_hostile")
            stream_url = re.search(r'Stream url="([^"]+)"', answer.text)
            token = re.search(r'name="cantata_token" value="([^"]+)"', answer.text)
            assert stream_url is not None and token is not None

            def start(offered: str) -> str:
                return dump_message(
                    Start(
                        stream_sid="MZ1",
                        call_sid="CA_hostile",
                        custom_parameters={"cantata_token": offered},
                    )
                )

            async with open_media_stream(stream_url[1]) as intruder:
                await intruder.send_message(start("guessed"))
                with pytest.raises(ConnectionClosed) as closed:
                    await intruder.get_message()
                assert closed.value.reason.code == 1008

            await line.heard.wait_for(lambda e: isinstance(e, SessionStarted))
            async with open_media_stream(stream_url[1]) as twilio:
                await twilio.send_message(start(token[1]))
                for garbage in ("not json", '{"event":"media"}', "[1,2]", '{"event":"x"}'):
                    await twilio.send_message(garbage)
                await twilio.send_message(dump_message(Dtmf(stream_sid="MZ1", digit="7")))
                await line.heard.wait_for(lambda e: isinstance(e, DtmfReceived))
                await twilio.send_message(dump_message(Stop(stream_sid="MZ1")))
                call = line.heard.calls[0]
                await call.ended.wait()
            leg = call.leg
            assert isinstance(leg, TwilioLeg)
            assert leg.stats["malformed"] == 4
            assert call.end_reason == "the caller hung up"


async def test_a_call_beyond_capacity_hears_busy() -> None:
    with trio.fail_after(30):
        async with phone_line(max_calls=1) as line:
            first = await post_voice(line, "CA_first")
            second = await post_voice(line, "CA_second")
            assert "<Connect" in first.text
            assert '<Reject reason="busy"' in second.text
            assert list(line.server.calls) == ["CA_first"]
            line.server.calls["CA_first"].end("the test is over")


async def test_a_transfer_ends_the_stream_and_tells_twilio_to_dial() -> None:
    with trio.fail_after(60):
        async with phone_line() as line, dial(line.url, auth_token=AUTH_TOKEN) as caller:
            greeting = await line.heard.wait_for(said(GREETING))
            await heard_whole(caller, line.tap, greeting)
            await caller.say(spoken(TRANSFER))
            notice = await line.heard.wait_for(said("Let me put you through"))
            assert isinstance(notice, AssistantMessage)
            await caller.ended.wait()
            # The caller heard the whole notice before the line was handed over.
            notice_audio = output_audio(line.tap, notice.item_id)
            assert caller.heard_by_item[notice.item_id] == len(notice_audio)
        call = line.heard.calls[0]
        assert call.transferred_to == FRONT_DESK
        assert call.end_reason == f"transferred to {FRONT_DESK}"
        assert f"<Dial><Sip>{FRONT_DESK}</Sip></Dial>" in caller.next_twiml
