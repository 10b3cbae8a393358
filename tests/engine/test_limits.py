"""A session's limits (issue 11, items 12 and 13): its duration and its memory.

On trio's MockClock, in memory. Each bound is checked where it bites and
through the session's own accounting (:meth:`EngineSession.statistics`).
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

import numpy as np
import trio
import trio.testing

from framework.engine import ConversationLimits, Engine, Rules

from .helpers import (
    WEATHER_RULES,
    Client,
    MemoryConnection,
    appends,
    encode,
    memory_session,
    say,
    silence,
    speech,
    types,
)

# --- the session's duration ----------------------------------------------------------------


async def test_sessions_end_at_the_hosted_60_minutes_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session(Engine()) as (client, session):
        created = client.received[0]["session"]
        assert abs(created["expires_at"] - (time.time() + 3600)) <= 2
        start = trio.current_time()
        error = await client.error(seconds=4000)
        assert trio.current_time() - start == 3600
        assert error["code"] == "session_expired"
        assert error["message"] == "Your session hit the maximum duration of 60 minutes."
        await trio.testing.wait_all_tasks_blocked()
        assert isinstance(session.conn, MemoryConnection)
        assert session.conn.closed == (1001, error["message"])


async def test_the_limit_is_configurable_and_expires_at_follows_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session(Engine(max_session_s=90)) as (client, _):
        assert abs(client.received[0]["session"]["expires_at"] - (time.time() + 90)) <= 2
        error = await client.error(seconds=100)
        assert error["message"] == "Your session hit the maximum duration of 1.5 minutes."


async def test_an_unlimited_session_says_no_expiry(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session(Engine(max_session_s=math.inf)) as (client, _):
        assert "expires_at" not in client.received[0]["session"]
        await client.nothing_for(10 * 3600)


# --- the conversation --------------------------------------------------------------------


async def _settle(client: Client) -> None:
    """Reads every event the engine has to send now (the mock clock jumps when idle)."""
    with trio.move_on_after(1):
        while True:
            await client.recv()


async def _create(client: Client, text: str) -> str:
    await say(client, text)
    done = [e for e in client.received if e["type"] == "conversation.item.done"]
    item_id: str = done[-1]["item"]["id"]
    await _settle(client)
    return item_id


async def test_the_oldest_items_go_beyond_the_item_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = ConversationLimits(max_items=5)
    async with memory_session(conversation=limits) as (client, session):
        ids = [await _create(client, f"message {n}") for n in range(7)]
        deleted = [
            e["item_id"] for e in client.received if e["type"] == "conversation.item.deleted"
        ]
        assert deleted == ids[:2]
        assert session.statistics().conversation.items == 5
        await client.send({"type": "conversation.item.retrieve", "item_id": ids[0]})
        assert (await client.error())["code"] == "item_not_found"
        # The newest stays even when it is inserted first.
        await client.send(
            {
                "type": "conversation.item.create",
                "previous_item_id": "root",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "first"}],
                },
            }
        )
        events = await client.until("conversation.item.deleted")
        assert events[-1]["item_id"] == ids[2]


async def test_the_oldest_items_go_beyond_the_text_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = ConversationLimits(max_text_bytes=1000)
    async with memory_session(conversation=limits) as (client, session):
        ids = [await _create(client, "x" * 300) for _ in range(4)]
        deleted = [
            e["item_id"] for e in client.received if e["type"] == "conversation.item.deleted"
        ]
        assert deleted == ids[:1]
        assert session.statistics().conversation.text_bytes == 900


async def _commit_audio(client: Client, ms: int) -> str:
    for event in appends(speech(ms)):
        await client.send(event)
    await client.send({"type": "input_audio_buffer.commit"})
    committed = (await client.until("input_audio_buffer.committed"))[-1]
    await client.until("conversation.item.done")
    item_id: str = committed["item_id"]
    return item_id


async def test_the_oldest_audio_goes_beyond_the_audio_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = ConversationLimits(max_audio_bytes=48 * 6000)  # 6 s of 24 kHz PCM16
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES))
    async with memory_session(engine, conversation=limits) as (client, session):
        await client.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
        await client.until("session.updated")
        ids = [await _commit_audio(client, 2000) for _ in range(4)]
        # Raw bytes are counted (not base64): 8 s is over the bound, so the first goes.
        assert session.statistics().conversation.audio_bytes == 3 * 48 * 2000
        await client.send({"type": "conversation.item.retrieve", "item_id": ids[0]})
        first = (await client.until("conversation.item.retrieved"))[-1]["item"]
        assert "audio" not in first["content"][0]
        await client.send({"type": "conversation.item.retrieve", "item_id": ids[3]})
        last = (await client.until("conversation.item.retrieved"))[-1]["item"]
        assert len(base64.b64decode(last["content"][0]["audio"])) == 48 * 2000
        # A reply's audio counts too: the story pushes the older user audio out.
        await say(client, "tell me a story")
        await client.send({"type": "response.create"})
        reply = (await client.until("response.done"))[-1]["response"]["output"][0]["id"]
        assert session.statistics().conversation.audio_bytes <= limits.max_audio_bytes
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": reply,
                "content_index": 0,
                "audio_end_ms": 100,
            }
        )
        await client.until("conversation.item.truncated")


async def test_truncating_dropped_audio_is_refused_clearly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = ConversationLimits(max_audio_bytes=48 * 1000)
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES))
    async with memory_session(engine, conversation=limits) as (client, _):
        await say(client, "hello")
        await client.send({"type": "response.create"})
        first = (await client.until("response.done"))[-1]["response"]["output"][0]["id"]
        await say(client, "hello")
        await client.send({"type": "response.create"})
        await client.until("response.done")
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": first,
                "content_index": 0,
                "audio_end_ms": 100,
            }
        )
        error = await client.error()
        assert "no longer kept" in error["message"] and error["param"] == "item_id"


# --- the input buffer ------------------------------------------------------------------


async def _vad(client: Client, **settings: Any) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", **settings}}},
            },
        }
    )
    await client.until("session.updated")


async def test_pre_speech_audio_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session() as (client, session):
        await _vad(client, create_response=False)
        for event in appends(silence(60_000), chunk_ms=1000):
            await client.send(event)
        await trio.testing.wait_all_tasks_blocked()
        # prefix_padding_ms (300) and up to a second of slack: not a minute.
        assert session.statistics().input.buffered_ms <= 1300
        # The padding still reaches back before speech, exactly.
        for event in appends(np.concatenate([speech(400), silence(600)])):
            await client.send(event)
        events = await client.until("input_audio_buffer.committed")
        assert events[0]["audio_start_ms"] == 60_000 - 300


async def test_the_idle_window_is_kept_for_the_idle_commit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session() as (client, session):
        await _vad(client, create_response=False, idle_timeout_ms=5000)
        # Faster than real time: a minute of silence lands within the idle window.
        for event in appends(silence(60_000), chunk_ms=1000):
            await client.send(event)
        await trio.testing.wait_all_tasks_blocked()
        assert 5000 <= session.statistics().input.buffered_ms <= 6000
        triggered = (await client.until("input_audio_buffer.timeout_triggered"))[-1]
        assert triggered["audio_end_ms"] == 60_000
        assert 60_000 - triggered["audio_start_ms"] <= 6000


async def test_a_turn_ends_at_the_buffer_bound(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session() as (client, session):
        await _vad(client, create_response=False)
        for event in appends(speech(5 * 60_000 + 2000), chunk_ms=1000):
            await client.send(event)
        events = await client.until("input_audio_buffer.committed")
        assert types(events) == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
        ]
        assert events[1]["audio_end_ms"] - events[0]["audio_start_ms"] == 5 * 60_000
        # The speech that goes on is the next turn.
        events = await client.until("input_audio_buffer.speech_started")
        assert events[-1]["audio_start_ms"] == 5 * 60_000
        assert session.statistics().input.buffered_ms <= 2000


async def test_a_full_manual_buffer_refuses_the_append(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session() as (client, session):
        await client.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
        await client.until("session.updated")
        minute = base64.b64encode(encode(silence(60_000))).decode()
        for _ in range(5):
            await client.send({"type": "input_audio_buffer.append", "audio": minute})
        await client.send(
            {"type": "input_audio_buffer.append", "event_id": "more", "audio": minute[:400]}
        )
        error = await client.error()
        assert (error["code"], error["event_id"]) == ("input_audio_buffer_full", "more")
        assert session.statistics().input.buffered_ms == 5 * 60_000
        await client.send({"type": "input_audio_buffer.commit"})
        committed = (await client.until("input_audio_buffer.committed"))[-1]
        await client.send({"type": "conversation.item.retrieve", "item_id": committed["item_id"]})
        item = (await client.until("conversation.item.retrieved"))[-1]["item"]
        assert len(base64.b64decode(item["content"][0]["audio"])) == 48 * 5 * 60_000


# --- item creation stays O(1) ------------------------------------------------------------


async def test_item_creation_does_not_slow_down_as_the_conversation_grows() -> None:
    """CPU time per item at 8,000 items is close to that at the start (it was 20x)."""
    with trio.fail_after(120):
        async with memory_session() as (client, session):
            frame = json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "one more"}],
                    },
                }
            )

            async def batch(count: int) -> float:
                start = time.process_time()
                for _ in range(count):
                    await session.handle_frame(frame)
                    await client.recv()
                    await client.recv()
                return time.process_time() - start

            first = min([await batch(300) for _ in range(3)])
            await batch(7000)
            late = min([await batch(300) for _ in range(3)])
            assert session.statistics().conversation.items == 8800
            assert late < 2.5 * first, (first, late)
