"""Turn-detection timing on trio's MockClock, in memory (§7.2-7.3 of the reference).

VAD offsets are counted in samples, so they are asserted to the millisecond.
The idle timeout runs on trio's clock: ``autojump_clock`` makes its seconds
pass instantly, and :func:`_stream` paces audio the way a microphone would.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

from framework.engine import Engine, Rules
from framework.engine._vad import SEMANTIC_SILENCE_MS

from .helpers import WEATHER_RULES, Client, appends, memory_session, silence, speech, types

STORY = "Once upon a time there was a little engine that talked on and on without a network."


async def _configure(client: Client, turn_detection: object, **audio_in: object) -> dict[str, Any]:
    """Sets the input turn detection (and other input fields); returns the session."""
    await client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": turn_detection, **audio_in}},
            },
        }
    )
    session: dict[str, Any] = (await client.until("session.updated"))[-1]["session"]
    return session


async def _send_all(client: Client, samples: np.ndarray, **kwargs: Any) -> None:
    for event in appends(samples, **kwargs):
        await client.send(event)


async def _stream(client: Client, samples: np.ndarray, chunk_ms: int = 20) -> None:
    """Sends audio at real-time pace: chunk k leaves at k * chunk_ms + chunk_ms / 2.

    The half-chunk offset keeps every send off the millisecond grid the idle
    deadlines fall on, so "audio written by time T" is exactly T ms.
    """
    await trio.sleep(chunk_ms / 2000)
    for event in appends(samples, chunk_ms=chunk_ms):
        await client.send(event)
        await trio.sleep(chunk_ms / 1000)


async def _retrieve_audio_ms(client: Client, item_id: str, bytes_per_ms: int = 48) -> int:
    await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
    item = (await client.until("conversation.item.retrieved"))[-1]["item"]
    return len(base64.b64decode(item["content"][0]["audio"])) // bytes_per_ms


def _audio_ms(events: list[dict[str, Any]]) -> int:
    """Playback length of the PCM16 24 kHz audio a response streamed."""
    data = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    return len(data) // 48


# --- exact offsets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("padding", "silence_ms", "lead", "talk", "start", "end"),
    [
        (0, 200, 1000, 400, 1000, 1600),
        (500, 1000, 2000, 300, 1500, 3300),
        (100, 350, 730, 250, 630, 1330),
        # The padding cannot reach back before the first audio of the session.
        (300, 500, 120, 400, 0, 1020),
    ],
)
async def test_speech_offsets_follow_padding_and_silence(
    autojump_clock: trio.testing.MockClock,
    padding: int,
    silence_ms: int,
    lead: int,
    talk: int,
    start: int,
    end: int,
) -> None:
    async with memory_session() as (client, _):
        vad = {
            "type": "server_vad",
            "prefix_padding_ms": padding,
            "silence_duration_ms": silence_ms,
            "create_response": False,
        }
        td = (await _configure(client, vad))["audio"]["input"]["turn_detection"]
        assert td["prefix_padding_ms"] == padding and td["silence_duration_ms"] == silence_ms
        await _send_all(client, np.concatenate([silence(lead), speech(talk), silence(1500)]))
        events = await client.until("conversation.item.done")
        assert types(events) == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
        ]
        assert events[0]["audio_start_ms"] == start
        assert events[1]["audio_end_ms"] == end
        # The committed item holds exactly the audio between the two offsets.
        assert await _retrieve_audio_ms(client, events[2]["item_id"]) == end - start


async def test_g711_offsets_count_8khz_samples(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session() as (client, _):
        vad = {
            "type": "server_vad",
            "prefix_padding_ms": 200,
            "silence_duration_ms": 300,
            "create_response": False,
        }
        await _configure(client, vad, format={"type": "audio/pcmu"})
        audio = np.concatenate([silence(500, 8000), speech(400, 8000), silence(800, 8000)])
        await _send_all(client, audio, rate=8000, fmt="audio/pcmu")
        events = await client.until("input_audio_buffer.committed")
        assert events[0]["audio_start_ms"] == 300
        assert events[1]["audio_end_ms"] == 1200
        # One byte per sample: 8 bytes per millisecond of mu-law.
        assert await _retrieve_audio_ms(client, events[2]["item_id"], bytes_per_ms=8) == 900


async def test_padding_stops_at_the_previous_commit(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "create_response": False})
        first = np.concatenate([silence(1000), speech(400), silence(600)])
        await _send_all(client, first)
        events = await client.until("conversation.item.done")
        assert events[0]["audio_start_ms"] == 700
        assert events[1]["audio_end_ms"] == 1900
        # The second turn starts at 2000 ms, 100 ms after the first one ended:
        # its 300 ms of padding may only reach back to the end of that commit.
        await _send_all(client, np.concatenate([speech(300), silence(600)]))
        events = await client.until("conversation.item.done")
        assert events[0]["audio_start_ms"] == 1900
        assert events[1]["audio_end_ms"] == 2000 + 300 + 500
        assert await _retrieve_audio_ms(client, events[2]["item_id"]) == 2800 - 1900


async def test_offsets_count_audio_cleared_before(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "create_response": False})
        await _send_all(client, silence(1000))
        await client.send({"type": "input_audio_buffer.clear"})
        await client.until("input_audio_buffer.cleared")
        # Offsets are session-wide: the cleared second still counts, but the
        # padding cannot bring it back.
        await _send_all(client, np.concatenate([silence(100), speech(300), silence(600)]))
        events = await client.until("input_audio_buffer.committed")
        assert events[0]["audio_start_ms"] == 1000
        assert events[1]["audio_end_ms"] == 1900


# --- threshold ---------------------------------------------------------------------------


async def test_audio_below_the_threshold_never_starts_speech(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A -37 dBFS tone sits below the default threshold (0.5, i.e. -30 dBFS).
    quiet = speech(1500, amplitude=0.02)
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "threshold": 0.5})
        await _send_all(client, np.concatenate([silence(300), quiet, silence(1000)]))
        await client.nothing_for(5)
    # The same audio is speech for a more sensitive detector ...
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "threshold": 0.3, "create_response": False})
        await _send_all(client, np.concatenate([silence(300), quiet, silence(1000)]))
        events = await client.until("input_audio_buffer.speech_stopped")
        assert events[0]["audio_start_ms"] == 0
        assert events[1]["audio_end_ms"] == 300 + 1500 + 500
    # ... and loud audio is not, for a deaf one.
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "threshold": 0.9})
        await _send_all(client, np.concatenate([silence(300), speech(1500), silence(1000)]))
        await client.nothing_for(5)


# --- semantic VAD -------------------------------------------------------------------------


async def test_semantic_vad_eagerness_sets_the_end_of_turn_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    delays: dict[str, int] = {}
    for eagerness in ("low", "medium", "high", "auto"):
        async with memory_session() as (client, _):
            td = (await _configure(client, {"type": "semantic_vad", "eagerness": eagerness}))[
                "audio"
            ]["input"]["turn_detection"]
            assert td == {
                "type": "semantic_vad",
                "eagerness": eagerness,
                "create_response": True,
                "interrupt_response": True,
            }
            await _send_all(client, np.concatenate([silence(500), speech(400), silence(3000)]))
            events = await client.until("response.done")
            kinds = types(events)
            assert kinds[:3] == [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
            ]
            assert "response.created" in kinds  # semantic_vad answers the turn too
            assert events[0]["audio_start_ms"] == 200  # the default 300 ms of padding
            delays[eagerness] = events[1]["audio_end_ms"] - 900
    assert delays == {e: SEMANTIC_SILENCE_MS[e] for e in delays}
    assert delays["low"] > delays["medium"] > delays["high"] > 0
    assert delays["auto"] == delays["medium"]
    # Never longer than the hosted API's maximum waits (8 s, 4 s, 2 s).
    assert delays["low"] <= 8000 and delays["medium"] <= 4000 and delays["high"] <= 2000


# --- create_response / interrupt_response / manual turns -----------------------------------


async def test_create_response_false_commits_without_answering(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "create_response": False})
        await _send_all(client, np.concatenate([silence(500), speech(400), silence(800)]))
        events = await client.until("conversation.item.done")
        assert types(events)[:3] == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
        ]
        await client.nothing_for(10)
        # The client decides when to answer.
        await client.send({"type": "response.create"})
        done = (await client.until("response.done"))[-1]["response"]
        assert done["status"] == "completed"


async def test_interrupt_response_false_lets_the_reply_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 10 ms per event: the story streams for a while on the mock clock.
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=10)
    async with memory_session(engine) as (client, _):
        await _configure(client, {"type": "server_vad", "interrupt_response": False})
        await client.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "tell me a story"}],
                },
            }
        )
        await client.until("conversation.item.done")
        await client.send({"type": "response.create"})
        events = await client.until("response.output_audio.delta")
        await _send_all(client, np.concatenate([speech(300), silence(700)]))
        events += await client.until("response.done")
        kinds = types(events)
        assert "input_audio_buffer.speech_started" in kinds
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
        done = events[-1]["response"]
        assert done["status"] == "completed"
        assert done["output"][0]["content"][0]["transcript"] == STORY


async def test_manual_turns_have_no_vad_events(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session() as (client, _):
        session = await _configure(client, None)
        assert session["audio"]["input"]["turn_detection"] is None
        await _send_all(client, np.concatenate([silence(500), speech(600), silence(1000)]))
        await client.nothing_for(5)  # loud speech, yet no speech_started
        await client.send({"type": "input_audio_buffer.commit"})
        events = await client.until("conversation.item.done")
        assert types(events) == [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
        ]
        assert await _retrieve_audio_ms(client, events[0]["item_id"]) == 2100
        await client.nothing_for(5)  # and no automatic response
        # Turning VAD back on: offsets still count the manual turn's audio.
        await _configure(client, {"type": "server_vad", "create_response": False})
        await _send_all(client, np.concatenate([silence(500), speech(300), silence(600)]))
        events = await client.until("input_audio_buffer.speech_stopped")
        assert events[0]["audio_start_ms"] == 2100 + 500 - 300
        assert events[1]["audio_end_ms"] == 2100 + 500 + 300 + 500


# --- idle timeout ---------------------------------------------------------------------------


async def test_idle_timeout_commits_the_silence_and_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session() as (client, _):
        session = await _configure(client, {"type": "server_vad", "idle_timeout_ms": 6000})
        assert session["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 6000
        armed = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stream, client, silence(20_000))
            events = await client.until("input_audio_buffer.timeout_triggered", seconds=60)
            fired = trio.current_time()
            events += await client.until("response.done", seconds=60)
            nursery.cancel_scope.cancel()
        assert fired - armed == pytest.approx(6.0)
        kinds = types(events)
        assert kinds[:4] == [
            "input_audio_buffer.timeout_triggered",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
        ]
        assert "input_audio_buffer.speech_started" not in kinds
        assert "response.created" in kinds
        timeout, committed = events[0], events[1]
        # The segment is the silence since the timer was armed: 6 s of it.
        assert timeout["audio_start_ms"] == 0
        assert timeout["audio_end_ms"] == 6000
        assert committed["item_id"] == timeout["item_id"]
        assert events[-1]["response"]["status"] == "completed"
        assert await _retrieve_audio_ms(client, committed["item_id"]) == 6000


async def test_idle_timeout_waits_for_the_reply_to_play(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "idle_timeout_ms": 5000})
        t0 = trio.current_time()  # offsets count from here: the stream starts now
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stream, client, silence(40_000))
            await client.until("input_audio_buffer.timeout_triggered", seconds=60)
            reply = await client.until("response.done", seconds=60)
            replied = trio.current_time() - t0
            events = await client.until("input_audio_buffer.timeout_triggered", seconds=60)
            fired = trio.current_time() - t0
            nursery.cancel_scope.cancel()
        assert "input_audio_buffer.timeout_triggered" not in types(events[:-1])
        playback_ms = _audio_ms(reply)
        assert playback_ms > 1000  # the answer really has audio to play
        # The timer starts once the reply has played: response.done + its duration.
        assert fired - replied == pytest.approx((playback_ms + 5000) / 1000)
        heard_until = round(replied * 1000) + playback_ms  # audio written when playback ended
        timeout = events[-1]
        assert timeout["audio_end_ms"] == round(fired * 1000)
        # §2 timeout_triggered: audio_start_ms is the audio written after the
        # playback of the last response, so the segment is about the timeout.
        assert timeout["audio_start_ms"] == heard_until
        assert timeout["audio_end_ms"] - timeout["audio_start_ms"] == 5000


async def test_idle_timer_is_disarmed_while_the_user_speaks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "idle_timeout_ms": 5000})
        armed = trio.current_time()
        # Speech from 1 s to 8 s: longer than the timeout.
        audio = np.concatenate([silence(1000), speech(7000), silence(20_000)])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stream, client, audio)
            events = await client.until("input_audio_buffer.speech_stopped", seconds=60)
            stopped = trio.current_time()
            events += await client.until("response.done", seconds=60)
            replied = trio.current_time()
            later = await client.until("input_audio_buffer.timeout_triggered", seconds=60)
            fired = trio.current_time()
            nursery.cancel_scope.cancel()
        assert stopped - armed > 8.0  # well past the 5 s timeout ...
        assert "input_audio_buffer.timeout_triggered" not in types(events)  # ... yet no timeout
        assert events[0]["audio_start_ms"] == 700
        assert events[1]["audio_end_ms"] == 8500
        # After the answer the timer runs again, from the end of its playback.
        assert fired - replied == pytest.approx((_audio_ms(events) + 5000) / 1000)
        assert "input_audio_buffer.speech_started" not in types(later)
