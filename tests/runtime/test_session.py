"""The runtime end to end against the local engine, over a real loopback WebSocket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import numpy as np
import pytest
import trio

from framework import ClockSink, ConnectionClosed, open_session
from framework.engine import Engine, Rules, serve_engine
from framework.protocol import (
    AudioPCMU,
    ConversationItemDeleteEvent,
    RealtimeFunctionTool,
    RealtimeResponseCreateParams,
    ServerVad,
)
from framework.runtime import (
    ApprovalRequested,
    AssistantMessage,
    Interrupted,
    ResponseFinished,
    ServerEventReceived,
    ToolCallFinished,
    ToolCallStarted,
    UserSpeechStarted,
    UserSpeechStopped,
)
from framework.testing import run_engine

from .bots import RULES, BankBot, PhoneTriage, WeatherBot


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with run_engine(rules=RULES) as engine_url:
        yield engine_url


async def test_text_turn(url: str) -> None:
    with trio.fail_after(10):
        async with open_session(WeatherBot(), url=url) as session:
            result = await session.run("hello there")
    assert result.text == "Hello! Ask me about the weather."
    assert [r.status for r in result.responses] == ["completed"]
    assert result.tool_calls == ()
    assert result.usage.output_tokens > 0
    assert session.usage.responses == 1
    assert session.history.transcript() == [
        ("user", "hello there"),
        ("assistant", "Hello! Ask me about the weather."),
    ]


async def test_one_tool_call_and_its_follow_up(url: str) -> None:
    bot = WeatherBot()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session:
            result = await session.run("What is the weather in Paris?")
            stats = session.statistics()
    assert bot.calls == ["Paris"]
    (call,) = result.tool_calls
    assert (call.name, json.loads(call.arguments), call.status, call.output) == (
        "get_weather",
        {"city": "Paris"},
        "ok",
        "sunny",
    )
    assert result.text == "In Paris it is sunny."
    assert [r.status for r in result.responses] == ["completed", "completed"]
    assert stats["creates_sent"] == 2  # the turn's and exactly one follow-up


async def test_parallel_calls_get_one_follow_up(url: str) -> None:
    bot = WeatherBot()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session:
            result = await session.run("two cities please")
            stats = session.statistics()
    assert sorted(bot.calls) == ["Oslo", "Rome"]
    assert sorted(c.output for c in result.tool_calls) == ["snowing", "warm"]
    assert result.text == "In Oslo it is snowing. In Rome it is warm."
    assert stats["creates_sent"] == 2
    assert len(result.responses) == 2


async def test_a_tool_that_raises_tells_the_model(url: str) -> None:
    with trio.fail_after(10):
        async with open_session(WeatherBot(), url=url) as session:
            result = await session.run("explode")
    (call,) = result.tool_calls
    assert call.status == "error"
    assert "RuntimeError" in call.output and "on fire" in call.output
    assert "on fire" in result.text  # the engine reads the output back to the user


async def test_bad_arguments_are_a_model_visible_error(url: str) -> None:
    bot = WeatherBot()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session:
            result = await session.run("bad arguments")
    (call,) = result.tool_calls
    assert call.status == "bad_arguments"
    assert "city" in call.output
    assert bot.calls == []


async def test_an_unknown_tool_gets_an_output(url: str) -> None:
    teleport = RealtimeFunctionTool(
        type="function", name="teleport", parameters={"type": "object", "properties": {}}
    )
    with trio.fail_after(10):
        async with open_session(WeatherBot(), url=url) as session:
            await session.send_text("teleport me", respond=False)
            await session.create_response(RealtimeResponseCreateParams(tools=[teleport]))
            finished: list[ToolCallFinished] = []
            async for event in session:
                if isinstance(event, ToolCallFinished):
                    finished.append(event)
                    break
            await session.wait_quiet()
    (call,) = finished
    assert call.status == "unknown_tool"
    assert "teleport" in call.output and "get_weather" in call.output


async def test_a_tool_timeout_is_reported(url: str) -> None:
    bot = WeatherBot()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session:
            result = await session.run("look it up slowly")
    (call,) = result.tool_calls
    assert call.status == "timeout"
    assert "0.5" in call.output
    assert bot.slow_cancelled and not bot.slow_finished


async def _decide(session: object, *, approve: bool) -> None:
    async for event in session:  # type: ignore[attr-defined]
        if isinstance(event, ApprovalRequested):
            request = event.request
            assert request.tool == "transfer_money"
            assert request.parsed_arguments == {"amount": "100"}
            if approve:
                session.approve(request)  # type: ignore[attr-defined]
            else:
                session.reject(request, "the user said no")  # type: ignore[attr-defined]
            return


async def test_approval_granted(url: str) -> None:
    bot = BankBot()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session, trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _decide(session, approve=True))
            result = await session.run("send 100 to Bob")
    assert bot.transferred == [100]
    assert result.tool_calls[0].status == "ok"
    assert result.text == "Transfer result: sent 100 euros"


async def test_approval_rejected(url: str) -> None:
    bot = BankBot()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session, trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _decide(session, approve=False))
            result = await session.run("send 100 to Bob")
    assert bot.transferred == []
    (call,) = result.tool_calls
    assert call.status == "rejected"
    assert "not approved" in call.output and "the user said no" in call.output


async def test_small_amounts_need_no_approval(url: str) -> None:
    bot = BankBot()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session:
            result = await session.run("send 20 to Bob")
    assert bot.transferred == [20]
    assert result.tool_calls[0].status == "ok"


async def test_handoff_keeps_g711_and_switches_tools(url: str) -> None:
    with trio.fail_after(10):
        async with open_session(PhoneTriage(), url=url) as session:
            result = await session.run("a billing question")
            assert session.agent.name == "Billing"
            config = session.config
            assert config is not None
            audio = config.audio
            assert audio.input.format == AudioPCMU(type="audio/pcmu")  # type: ignore[union-attr]
            assert audio.output.format == AudioPCMU(type="audio/pcmu")  # type: ignore[union-attr]
            assert config.instructions == "You answer billing questions."
            assert list(config.tools) == []
            follow_up = await session.run("about my invoice")
    assert result.tool_calls[0].name == "transfer_to_billing"
    assert "Transferred to Billing" in result.tool_calls[0].output
    assert follow_up.text == "Billing here: your invoice is paid."


async def test_connection_dropped_mid_tool() -> None:
    bot = WeatherBot(tool_timeout=3600)
    engine = Engine(rules=Rules.from_toml(RULES))
    server = trio.CancelScope()

    async def serve(task_status: trio.TaskStatus[str]) -> None:
        with server:
            await serve_engine(engine, port=0, task_status=task_status)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            engine_url = await nursery.start(serve)
            with pytest.raises(ConnectionClosed) as closed:
                async with (
                    open_session(bot, url=engine_url) as session,
                    trio.open_nursery() as turn,
                ):
                    turn.start_soon(session.run, "look it up slowly")
                    async for event in session:
                        if isinstance(event, ToolCallStarted):
                            break
                    server.cancel()  # the engine goes away mid-call
                    await trio.sleep_forever()
    # One clear error saying the line dropped; the call was cancelled, nothing left running.
    assert closed.value.code == 1006
    assert bot.slow_cancelled and not bot.slow_finished


def _tone(ms: int) -> bytes:
    t = np.arange(ms * 24) / 24000
    return (np.sin(2 * np.pi * 300 * t) * 0.3 * 32767).astype("<i2").tobytes()


class Talker(WeatherBot):
    output_modalities = ("audio",)
    turn_detection = ServerVad(
        type="server_vad", threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200
    )


async def test_audio_turn_with_vad_over_loopback(url: str) -> None:
    async def microphone() -> AsyncIterator[bytes]:
        audio = bytes(9600) + _tone(600) + bytes(19200)  # 200 ms quiet, 600 ms speech, 400 ms
        for i in range(0, len(audio), 960):
            yield audio[i : i + 960]
            await trio.sleep(0.02)  # 20 ms chunks, in real time

    sink = ClockSink()
    with trio.fail_after(10):
        async with open_session(Talker(), url=url, audio_in=microphone(), audio_out=sink) as s:
            seen: list[object] = []
            async for event in s:
                seen.append(event)
                if isinstance(event, ResponseFinished):
                    break
    started = next(e for e in seen if isinstance(e, UserSpeechStarted))
    stopped = next(e for e in seen if isinstance(e, UserSpeechStopped))
    assert (started.audio_start_ms, stopped.audio_end_ms) == (200, 1000)
    message = next(e for e in seen if isinstance(e, AssistantMessage))
    assert "can't make out audio" in message.text  # the engine has no transcriber
    assert sink.received_ms(message.item_id) == message.audio_ms > 0


async def test_barge_in_over_loopback_truncates_at_what_played(url: str) -> None:
    sink = ClockSink()
    with trio.fail_after(10):
        async with open_session(Talker(), url=url, audio_out=sink) as session:
            await session.run("tell me a story")
            (item_id,) = sink.audio
            began = trio.current_time()
            await trio.sleep(0.5)
            speech = _tone(400)
            for i in range(0, len(speech), 960):
                await session.send_audio(speech[i : i + 960])
            async for event in session:
                if isinstance(event, Interrupted):
                    interrupted = event
                    break
            heard_s = trio.current_time() - began
            await session.send_audio(bytes(24000))  # the user stops: a new turn, a new reply
            async for event in session:
                if isinstance(event, ResponseFinished):
                    break
            item = session.history.get(item_id)
    assert interrupted.truncated and interrupted.item_id == item_id
    # The truncate carries the sink's played position at the barge-in moment...
    assert item is not None and item.truncated_ms == interrupted.played_ms
    # ...which is the wall time the user actually listened, not what was received.
    assert abs(interrupted.played_ms - heard_s * 1000) < 150
    assert interrupted.played_ms < sink.received_ms(item_id)


class Careful(WeatherBot):
    """Hooks recorded; one tool of each barge-in policy."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: list[str] = []
        self.finished: list[str] = []

    def instructions(self, session: object) -> str:  # type: ignore[override]
        return f"You are careful. Session {getattr(session, 'id', '?')}."

    async def on_session_started(self, session: object) -> None:
        self.hooks.append("started")

    async def on_tool_call(self, session: object, name: str, arguments: str) -> None:
        self.hooks.append(f"tool:{name}")

    async def on_response_done(self, session: object, response: object) -> None:
        self.hooks.append("done")

    async def on_error(self, session: object, error: object) -> None:
        raise RuntimeError("a failing hook is logged, never fatal")


async def test_hooks_and_dynamic_instructions(url: str) -> None:
    bot = Careful()
    with trio.fail_after(10):
        async with open_session(bot, url=url) as session:
            await session.run("What is the weather in Paris?")
            await session.send_text("x", respond=False)
            await session.send(  # provoke a server error: the hook raises
                ConversationItemDeleteEvent(item_id="item_missing")
            )
            await session.run("hello")
            config = session.config
    assert bot.hooks[:3] == ["started", "tool:get_weather", "done"]
    assert bot.hooks.count("done") == 3
    assert config is not None and config.instructions == f"You are careful. Session {session.id}."


async def test_creates_are_queued_and_merged_never_two_in_flight(url: str) -> None:
    with trio.fail_after(10):
        async with open_session(WeatherBot(), url=url, raw_events=True) as session:
            await session.send_text("hello", respond=False)
            for _ in range(4):
                await session.create_response()
            await session.wait_quiet()
            stats = session.statistics()
            seen: list[str] = []
            with trio.move_on_after(0):  # what is queued already; nothing more comes
                async for event in session:
                    if isinstance(event, ServerEventReceived):
                        seen.append(event.event.type)
    # One started at once, one queued behind it; the other two merged into the queued one.
    assert stats["creates_sent"] == 2
    assert stats["creates_merged"] == 2
    # The server saw them one at a time: it refused none ("already has an active response").
    assert seen.count("response.created") == seen.count("response.done") == 2
    assert "error" not in seen
    assert session.usage.responses == 2
