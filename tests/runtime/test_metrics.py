"""Per-turn metrics: exact on trio's MockClock in memory, plausible over loopback.

The scripted server sends each event at a moment the test chooses, so every
latency the collector reports is known to the millisecond.
"""

from __future__ import annotations

import trio
from trio.testing import MockClock

from framework import ClockSink, open_session
from framework.protocol import (
    CachedTokensDetails,
    ConversationItemCreateEvent,
    RealtimeResponse,
    RealtimeResponseUsage,
    RealtimeResponseUsageInputTokenDetails,
    RealtimeResponseUsageOutputTokenDetails,
    ResponseCreateEvent,
    ResponseDoneEvent,
)
from framework.runtime import (
    Pricing,
    Session,
    ToolCallStarted,
    TurnMeasured,
    TurnMetrics,
    Usage,
)
from framework.testing import ScriptedServer, run_engine

from .bots import RULES, BankBot, WeatherBot, approve_after
from .test_timing import Talker


async def _turn(session: Session) -> TurnMetrics:
    async for event in session:
        if isinstance(event, TurnMeasured):
            return event.metrics
    raise AssertionError("the session ended before a turn was measured")


async def test_speech_end_to_first_audio_to_the_millisecond(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    sink = ClockSink()
    async with open_session(Talker(), connection=server, audio_out=sink) as session:
        started = server.speech_started(0)
        await server.send(started)
        await trio.sleep(1.0)
        await server.send(server.speech_stopped(1000))
        await trio.sleep(0.437)  # the server thinks
        created, *rest = server.audio_response(bytes(48 * 1500))  # 1.5 s of speech
        await server.send(created)
        await trio.sleep(0.1)  # its first audio is 100 ms behind response.created
        await server.send(*rest)
        sent = trio.current_time()
        turn = await _turn(session)
        assert round(trio.current_time() - sent, 9) == 1.5  # reported once its audio played out
        assert session.metrics.turns == (turn,)
    assert turn.trigger == "speech" and turn.input_item_id == started.item_id
    assert turn.first_audio_ms == 537.0
    assert turn.first_text_ms is None  # an audio reply with no transcript
    (response,) = turn.responses
    assert response.first_audio_ms == 100.0
    assert response.duration_ms == 100.0
    assert response.status == "completed"
    assert (turn.audio_generated_ms, turn.audio_played_ms) == (1500, 1500)
    assert turn.interruptions == 0


async def test_a_barge_in_counts_only_what_was_heard(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    async with open_session(Talker(), connection=server, audio_out=ClockSink()) as session:
        await server.send(server.speech_started(0), server.speech_stopped(800))
        await server.send(*server.audio_response(bytes(48 * 2000)))
        await trio.sleep(0.64)  # the user hears 640 ms, then talks over it
        await server.send(server.speech_started(1500))
        first = await _turn(session)
    assert first.interruptions == 1
    assert (first.audio_generated_ms, first.audio_played_ms) == (2000, 640)
    assert session.metrics.interruptions == 1


async def test_audio_still_queued_when_the_session_ends_was_not_heard(
    autojump_clock: MockClock,
) -> None:
    server = ScriptedServer()
    async with open_session(Talker(), connection=server, audio_out=ClockSink()) as session:
        await server.send(server.speech_started(0), server.speech_stopped(800))
        await server.send(*server.audio_response(bytes(48 * 2000)))
        await trio.sleep(0.7)  # the application leaves 700 ms into a 2 s reply
    (turn,) = session.metrics.turns
    assert (turn.audio_generated_ms, turn.audio_played_ms) == (2000, 700)
    assert turn.interruptions == 0


async def test_tool_latency_and_approval_wait(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    async with open_session(BankBot(), connection=server) as session:
        await session.send_text("send 100 to Bob")
        await server.expect(ResponseCreateEvent)
        await trio.sleep(0.2)
        await server.send(*server.function_call("transfer_money", {"amount": "100"}))
        await approve_after(session, 2.0)  # the application takes two seconds to say yes
        async for event in session:
            if isinstance(event, ToolCallStarted):
                break
        await server.expect(ConversationItemCreateEvent)  # the call's output
        await server.expect(ResponseCreateEvent)  # ... and the follow-up
        await trio.sleep(0.05)
        await server.send(*server.text_response("Done."))
        turn = await _turn(session)
    assert turn.trigger == "text"
    (sent,) = server.of_type(ConversationItemCreateEvent)[:1]
    assert turn.input_item_id is not None and turn.input_item_id == sent.item.id
    (tool,) = turn.tools
    assert (tool.name, tool.status) == ("transfer_money", "ok")
    assert tool.approval_wait_ms == 2000.0
    assert tool.latency_ms == 0.0  # the tool returns at once, in virtual time
    assert tool.total_ms == 2000.0
    assert len(turn.responses) == 2
    assert turn.first_text_ms == 2250.0  # from the message sent to the "Done." text


async def test_cost_prices_cached_and_audio_tokens_apart(autojump_clock: MockClock) -> None:
    price = Pricing(
        text_input=4.0,
        cached_text_input=0.4,
        text_output=16.0,
        audio_input=32.0,
        cached_audio_input=0.4,
        audio_output=64.0,
    )
    usage = RealtimeResponseUsage(
        total_tokens=1600,
        input_tokens=1000,
        output_tokens=600,
        input_token_details=RealtimeResponseUsageInputTokenDetails(
            text_tokens=400,
            audio_tokens=600,
            cached_tokens=500,
            cached_tokens_details=CachedTokensDetails(text_tokens=300, audio_tokens=200),
        ),
        output_token_details=RealtimeResponseUsageOutputTokenDetails(
            text_tokens=100, audio_tokens=500
        ),
    )
    server = ScriptedServer()
    async with open_session(WeatherBot(), connection=server, pricing=price) as session:
        await session.send_text("hello")
        await server.expect(ResponseCreateEvent)
        *events, done = server.text_response("Hi.")
        assert isinstance(done, ResponseDoneEvent)
        response = RealtimeResponse(
            id=done.response.id, status="completed", output=done.response.output, usage=usage
        )
        await server.send(*events, ResponseDoneEvent(event_id="event_x", response=response))
        turn = await _turn(session)
    expected = (
        (400 - 300) * 4.0  # text input not cached
        + 300 * 0.4  # cached text
        + (600 - 200) * 32.0  # audio input not cached
        + 200 * 0.4  # cached audio
        + 100 * 16.0  # text output
        + 500 * 64.0  # audio output
    ) / 1_000_000
    assert turn.cost_usd == expected
    assert session.metrics.cost_usd == expected
    assert turn.usage.cached_audio_tokens == 200 and turn.usage.cached_text_tokens == 300


def test_cached_tokens_split_in_proportion_when_the_server_does_not_say() -> None:
    usage = Usage()
    usage.add(
        RealtimeResponseUsage(
            input_tokens=1000,
            output_tokens=0,
            input_token_details=RealtimeResponseUsageInputTokenDetails(
                text_tokens=250, audio_tokens=750, cached_tokens=400
            ),
        )
    )
    assert (usage.cached_audio_tokens, usage.cached_text_tokens) == (300, 100)
    assert usage.input_text_tokens == 250


async def test_metrics_over_loopback_are_plausible() -> None:
    class Speaker(WeatherBot):
        output_modalities = ("audio",)

    with trio.fail_after(60):
        async with (
            run_engine(rules=RULES, latency_ms=5) as url,
            open_session(Speaker(), url=url, audio_out=ClockSink()) as session,
        ):
            await session.run("hello")
            await session.run("What is the weather in Paris?")
            measured = []
            async for event in session:  # each turn is reported once its audio played out
                if isinstance(event, TurnMeasured):
                    measured.append(event.metrics)
                    if len(measured) == 2:
                        break
            metrics = session.metrics
    assert metrics.turns == tuple(measured)
    assert [t.index for t in metrics.turns] == [1, 2]
    for turn in metrics.turns:
        assert turn.trigger == "text"
        assert turn.first_audio_ms is not None and 0 < turn.first_audio_ms < 5000
        assert turn.first_text_ms is not None and turn.first_text_ms <= turn.first_audio_ms + 50
        assert all(r.duration_ms is not None and r.duration_ms > 0 for r in turn.responses)
        assert turn.audio_generated_ms > 0
        assert turn.usage.output_audio_tokens > 0
        assert turn.cost_usd is not None and turn.cost_usd > 0  # the engine says gpt-realtime
    (tool,) = metrics.turns[1].tools
    assert tool.name == "get_weather" and tool.status == "ok"
    assert tool.latency_ms is not None and tool.latency_ms < 1000
    assert tool.approval_wait_ms is None
    assert metrics.cost_usd == sum(t.cost_usd or 0 for t in metrics.turns)
    assert metrics.first_audio_ms() is not None
