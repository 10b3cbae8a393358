"""Timing logic on trio's MockClock, with the engine in memory (no sockets).

Approval deadlines, tool timeouts and playback positions are virtual time
here, so the assertions are exact.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
import trio
from trio.testing import MockClock

from framework import ClockSink, open_session
from framework.audio import encode
from framework.protocol import AudioPCMU, ServerVad
from framework.runtime import (
    ApprovalRequested,
    AssistantMessage,
    Interrupted,
    ResponseFinished,
    Session,
    ToolCallFinished,
    ToolCallStarted,
    UserSpeechStarted,
)
from framework.testing import engine_wire

from .bots import RULES, BankBot, PolicyTools, WeatherBot

RATE = 24000
MULAW = AudioPCMU(type="audio/pcmu")


def tone(ms: int, amplitude: float = 0.3) -> bytes:
    t = np.arange(ms * RATE // 1000) / RATE
    return (np.sin(2 * np.pi * 300 * t) * amplitude * 32767).astype("<i2").tobytes()


def quiet(ms: int) -> bytes:
    return bytes(ms * RATE // 1000 * 2)


async def test_approval_deadline_is_a_rejection(autojump_clock: MockClock) -> None:
    bot = BankBot(approval_timeout=30.0)
    async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire) as session:
        start = trio.current_time()
        result = await session.run("send 100 to Bob")
        waited = trio.current_time() - start
    (call,) = result.tool_calls
    assert call.status == "rejected"
    assert "in time" in call.output
    assert bot.transferred == []
    assert 30.0 <= waited < 30.1


class _WhenLogged(logging.Handler):
    """Records each warning with the trio clock's time when it was logged."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((trio.current_time(), record.getMessage()))


@pytest.mark.parametrize("reading", [False, True])
async def test_an_approval_nothing_reads_is_announced_at_once(
    autojump_clock: MockClock, reading: bool
) -> None:
    handler = _WhenLogged()
    logging.getLogger("cantata.tools").addHandler(handler)
    try:
        async with (
            engine_wire(rules=RULES) as wire,
            open_session(BankBot(approval_timeout=30.0), connection=wire) as session,
            trio.open_nursery() as nursery,
        ):
            if reading:
                nursery.start_soon(lambda: _drain(session))
                await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            result = await session.run("send 100 to Bob")
            nursery.cancel_scope.cancel()
    finally:
        logging.getLogger("cantata.tools").removeHandler(handler)
    assert result.tool_calls[0].status == "rejected"
    announced = [(when - start, text) for when, text in handler.seen if "approval" in text]
    if reading:
        assert announced == []  # the application sees ApprovalRequested: no need to warn
        return
    ((after, text),) = announced
    assert after < 0.1  # at once, not at the deadline
    assert "'transfer_money'" in text and "within 30 s" in text and "session.approve()" in text


async def _drain(session: Session) -> None:
    async for _ in session:
        pass


async def test_the_agent_hook_decides_first(autojump_clock: MockClock) -> None:
    class Strict(BankBot):
        async def approve_tool_call(self, request: object) -> bool:
            await trio.sleep(1)  # may take its time, in the call's own task
            return False

    bot = Strict()
    async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire) as session:
        result = await session.run("send 100 to Bob")
    assert result.tool_calls[0].status == "rejected"
    assert session.pending_approvals == []


async def test_always_allow_is_sticky(autojump_clock: MockClock) -> None:
    bot = BankBot()
    asked = 0
    async with (
        engine_wire(rules=RULES) as wire,
        open_session(bot, connection=wire) as session,
        trio.open_nursery() as nursery,
    ):

        async def answer() -> None:
            nonlocal asked
            async for event in session:
                if isinstance(event, ApprovalRequested):
                    asked += 1
                    session.approve(event.request, always=True)

        nursery.start_soon(answer)
        first = await session.run("send 100 to Bob")
        second = await session.run("send 200 to Bob")
        nursery.cancel_scope.cancel()
    assert asked == 1
    assert [c.status for c in (*first.tool_calls, *second.tool_calls)] == ["ok", "ok"]
    assert bot.transferred == [100, 200]


async def test_tool_timeout_in_virtual_time(autojump_clock: MockClock) -> None:
    bot = WeatherBot()
    async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire) as session:
        start = trio.current_time()
        result = await session.run("look it up slowly")
        took = trio.current_time() - start
    assert result.tool_calls[0].status == "timeout"
    assert 0.5 <= took < 0.6  # the tool's own timeout, not the agent's 2 s
    assert bot.slow_cancelled


class Talker(WeatherBot):
    """Audio replies and server VAD with quick turns."""

    output_modalities = ("audio",)
    turn_detection = ServerVad(
        type="server_vad", threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200
    )


async def test_audio_turn_with_vad(autojump_clock: MockClock) -> None:
    sink = ClockSink()

    async def microphone() -> object:
        for chunk in (quiet(200), tone(600), quiet(400)):
            for i in range(0, len(chunk), 960):  # 20 ms chunks, in real time
                yield chunk[i : i + 960]
                await trio.sleep(0.02)

    async with (
        engine_wire(rules=RULES) as wire,
        open_session(Talker(), connection=wire, audio_in=microphone(), audio_out=sink) as session,
    ):
        kinds = []
        async for event in session:
            kinds.append(type(event).__name__)
            if isinstance(event, UserSpeechStarted):
                assert event.audio_start_ms == 200
            if isinstance(event, ResponseFinished):
                break
        await session.wait_quiet()
    assert kinds.index("UserSpeechStarted") < kinds.index("UserSpeechStopped")
    assert "AssistantMessage" in kinds
    # No transcriber in the engine: the reply says so, spoken into the sink.
    (item_id,) = sink.audio
    assert sink.received_ms(item_id) > 1000


async def test_barge_in_truncates_at_the_played_position(autojump_clock: MockClock) -> None:
    sink = ClockSink()
    async with (
        engine_wire(rules=RULES) as wire,
        open_session(Talker(), connection=wire, audio_out=sink) as session,
    ):
        await session.send_text("tell me a story")
        async for event in session:
            if isinstance(event, ResponseFinished):
                break
        (item_id,) = sink.audio
        received = sink.received_ms(item_id)
        assert received > 4000 and sink.playing
        await trio.sleep(1.25)  # the user hears 1250 ms, then talks over it
        for i in range(0, 48000, 960):
            await session.send_audio(tone(1000)[i : i + 960])
        async for event in session:
            if isinstance(event, Interrupted):
                interrupted = event
                break
        await session.send_audio(quiet(300))
        await session.wait_quiet()
        truncated = session.history.get(item_id)
    assert interrupted.item_id == item_id
    assert interrupted.truncated
    assert interrupted.played_ms == 1250
    assert truncated is not None and truncated.truncated_ms == 1250
    assert not sink.playing
    assert session.statistics()["truncates"] == 1


class MulawTalker(Talker):
    """A phone line's formats: G.711 mu-law, 8 bytes a millisecond each way."""

    input_audio_format = AudioPCMU(type="audio/pcmu")
    output_audio_format = AudioPCMU(type="audio/pcmu")


async def test_g711_is_timed_at_its_own_rate(autojump_clock: MockClock) -> None:
    # The sink is made with no format, as `cantata run` makes it: the session
    # tells it the server's, so 1250 ms heard is 1250 ms, not a sixth of it.
    sink = ClockSink()
    messages: list[AssistantMessage] = []
    async with (
        engine_wire(rules=RULES) as wire,
        open_session(MulawTalker(), connection=wire, audio_out=sink) as session,
    ):
        await session.send_text("tell me a story")
        async for event in session:
            if isinstance(event, AssistantMessage):
                messages.append(event)
            if isinstance(event, ResponseFinished):
                break
        (item_id,) = sink.audio
        sent_ms = len(sink.audio[item_id]) // 8  # mu-law: 8000 one-byte samples a second
        assert sink.received_ms(item_id) == sent_ms > 4000
        assert [m.audio_ms for m in messages] == [sent_ms]
        await trio.sleep(1.25)
        for _ in range(50):  # a second of speech over the reply
            await session.send_audio(encode(np.frombuffer(tone(20), "<i2"), MULAW))
        async for event in session:
            if isinstance(event, Interrupted):
                interrupted = event
                break
        await session.send_audio(encode(np.zeros(2400, np.int16), MULAW))
        await session.wait_quiet()
        truncated = session.history.get(item_id)
    assert interrupted.played_ms == 1250
    assert truncated is not None and truncated.truncated_ms == 1250


async def test_no_truncate_when_nothing_played(autojump_clock: MockClock) -> None:
    sink = ClockSink()
    async with (
        engine_wire(rules=RULES) as wire,
        open_session(Talker(), connection=wire, audio_out=sink) as session,
    ):
        await session.run("tell me a story")
        await trio.sleep(30)  # long after playback ended
        await session.interrupt()
        await session.send_text("hello")
        await session.wait_quiet()
        stats = session.statistics()
    assert stats["truncates"] == 0
    assert stats["cancels"] == 0


def test_clock_sink_arithmetic() -> None:
    async def main() -> None:
        sink = ClockSink()
        sink.write("a", bytes(48 * 1000))  # one second
        await trio.sleep(0.4)
        assert sink.played_ms("a") == 400
        sink.write("a", bytes(48 * 500))  # queued behind the first second
        await trio.sleep(1.0)
        assert sink.played_ms("a") == 1400
        sink.clear()
        await trio.sleep(1.0)
        assert sink.played_ms("a") == 1400 and not sink.playing

    trio.run(main, clock=MockClock(autojump_threshold=0))


@asynccontextmanager
async def _virtual_deadline(seconds: float = 120) -> AsyncIterator[None]:
    # On the autojump clock a hang would spin virtual time forever; this ends it.
    with trio.fail_after(seconds):
        yield


POLICY_RULES = (
    RULES
    + """
[[rule]]
when = "^use stop_me"
call = "stop_me"

[[rule]]
when = "^use quiet_one"
call = "quiet_one"

[[rule]]
when = "^use chatty"
call = "chatty"
"""
)


class Patient(PolicyTools, WeatherBot):
    """The policy tools; VAD turns that ask for no reply."""

    output_modalities = ("text",)
    turn_detection = ServerVad(
        type="server_vad",
        threshold=0.5,
        prefix_padding_ms=0,
        silence_duration_ms=200,
        create_response=False,
    )


@pytest.mark.parametrize(
    ("tool_name", "status", "finished", "creates"),
    [
        ("stop_me", "cancelled", [], 2),
        ("quiet_one", "ok", ["quiet_one"], 1),
        ("chatty", "ok", ["chatty"], 2),
    ],
)
async def test_barge_in_policy_per_tool(
    autojump_clock: MockClock, tool_name: str, status: str, finished: list[str], creates: int
) -> None:
    bot = Patient()
    async with (
        _virtual_deadline(),
        engine_wire(rules=POLICY_RULES) as wire,
        open_session(bot, connection=wire) as session,
    ):
        await session.send_text(f"use {tool_name}")
        async for event in session:
            if isinstance(event, ToolCallStarted):
                break
        await trio.sleep(0.3)  # the tool is working; the user speaks up
        for chunk in (tone(400), quiet(400)):
            for i in range(0, len(chunk), 960):
                await session.send_audio(chunk[i : i + 960])
        outputs = []
        async for event in session:
            if isinstance(event, ToolCallFinished):
                outputs.append(event)
                break
        await session.wait_quiet()
        await trio.sleep(5)  # nothing else may follow
        stats = session.statistics()
    assert bot.ran == finished
    (output,) = outputs  # exactly one output, whatever the policy
    assert output.status == status
    if status == "cancelled":
        assert "interrupted" in output.output
    else:
        assert output.output == f"{tool_name} finished"
    assert stats["creates_sent"] == creates
