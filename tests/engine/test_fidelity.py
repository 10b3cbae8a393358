"""Fidelity where real clients found the engine wrong (issue 11, items 1-3).

Each engine here has a per-event latency, so a reply is still streaming when
the client's truncate, cancel or barge-in arrives, as on a real call. The
MockClock tests send audio faster than real time; the loopback ones run on a
real socket and the real clock.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

from framework.engine import Engine, Rules, open_engine

from .helpers import (
    WEATHER_RULES,
    Client,
    appends,
    connect,
    memory_session,
    say,
    silence,
    speech,
    types,
)

STORY = "Once upon a time there was a little engine that talked on and on without a network."
BYTES_PER_MS = 48  # PCM16 at 24 kHz


async def _retrieve(client: Client, item_id: str) -> dict[str, Any]:
    await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
    item: dict[str, Any] = (await client.until("conversation.item.retrieved"))[-1]["item"]
    return item


async def _story(client: Client) -> list[dict[str, Any]]:
    """Asks for the long reply; the events up to its first audio."""
    await say(client, "tell me a story")
    await client.send({"type": "response.create"})
    return await client.until("response.output_audio.delta")


def _streamed_ms(events: list[dict[str, Any]]) -> int:
    data = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    return len(data) // BYTES_PER_MS


# --- 1. truncating a reply that is still streaming -------------------------------------


async def _truncate_mid_reply(client: Client, *, cancel: bool) -> None:
    events = await _story(client)
    events += await client.until("response.output_audio.delta")
    item_id = events[-1]["item_id"]
    heard_ms = _streamed_ms(events) - 30  # the client played a little less than it got
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": heard_ms,
            "event_id": "trunc",
        }
    )
    if cancel:
        await client.send({"type": "response.cancel"})
    events = await client.until("response.done")
    truncated = [e for e in events if e["type"] == "conversation.item.truncated"]
    assert [e["audio_end_ms"] for e in truncated] == [heard_ms], types(events)
    assert "error" not in types(events)
    done = events[-1]["response"]
    assert done["status"] == ("cancelled" if cancel else "completed")
    # The reply went on streaming (or closed) after the truncate...
    assert types(events).index("conversation.item.truncated") < types(events).index(
        "conversation.item.done"
    )
    # ...but the stored item keeps the truncation and none of the unheard transcript.
    stored = await _retrieve(client, item_id)
    part = stored["content"][0]
    assert part["type"] == "output_audio"
    assert len(base64.b64decode(part["audio"])) == heard_ms * BYTES_PER_MS
    assert part["transcript"] == ""
    item_done = next(e for e in events if e["type"] == "conversation.item.done")
    assert item_done["item"]["content"][0]["transcript"] == ""
    # The next response sees the truncated message, as the model would.
    await say(client, "hello")
    await client.send({"type": "response.create"})
    await client.until("response.done")


@pytest.mark.parametrize("cancel", [False, True], ids=["then-finishes", "then-cancelled"])
async def test_truncate_while_the_reply_streams(
    cancel: bool, autojump_clock: trio.testing.MockClock
) -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=10)
    async with memory_session(engine) as (client, _):
        await _truncate_mid_reply(client, cancel=cancel)


async def test_truncate_mid_reply_over_a_real_socket() -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=5)
    with trio.fail_after(30):
        async with open_engine(engine) as running, connect(running.url) as client:
            await _truncate_mid_reply(client, cancel=True)


async def test_truncate_beyond_what_streamed_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=10)
    async with memory_session(engine) as (client, _):
        events = await _story(client)
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": events[-1]["item_id"],
                "content_index": 0,
                "audio_end_ms": len(STORY) * 60,  # the whole reply: not streamed yet
            }
        )
        error = await client.error()
        assert error["param"] == "audio_end_ms"
        done = (await client.until("response.done"))[-1]["response"]
        assert done["output"][0]["content"][0]["transcript"] == STORY


# --- 2. the model named by the first session.update -------------------------------------


async def test_a_url_without_model_adopts_the_first_update_model() -> None:
    with trio.fail_after(10):
        async with (
            open_engine(Engine(rules=Rules.from_toml(WEATHER_RULES))) as running,
            connect(running.url) as client,
        ):
            assert client.received[0]["session"]["model"] == "gpt-realtime"
            await client.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "model": "gpt-realtime-2",
                        "instructions": "Be brief.",
                    },
                }
            )
            updated = (await client.until("session.updated"))[-1]["session"]
            assert (updated["model"], updated["instructions"]) == ("gpt-realtime-2", "Be brief.")
            # The same model again is fine; another one is refused, as for any session.
            await client.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "model": "gpt-realtime-2"},
                }
            )
            await client.until("session.updated")
            await client.send(
                {"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime"}}
            )
            error = await client.error()
            assert error["param"] == "session.model"


async def test_a_url_with_model_keeps_it() -> None:
    with trio.fail_after(10):
        async with (
            open_engine(Engine(rules=Rules.from_toml(WEATHER_RULES))) as running,
            connect(running.url + "?model=gpt-realtime-mini") as client,
        ):
            assert client.received[0]["session"]["model"] == "gpt-realtime-mini"
            await client.send(
                {"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime"}}
            )
            error = await client.error()
            assert error["param"] == "session.model"


# --- 3. the barge-in race ----------------------------------------------------------------


async def _barge_in_race(client: Client) -> list[dict[str, Any]]:
    """A reply streams; the user talks over it, and stops before it has closed."""
    events = await _story(client)
    # Sent all at once: the whole turn is heard before the cancelled reply has
    # sent the half-dozen events that close it.
    for event in appends(np.concatenate([speech(400), silence(600)])):
        await client.send(event)
    events += await client.until("response.done")
    kinds = types(events)
    assert events[-1]["response"]["status_details"]["reason"] == "turn_detected"
    assert kinds.index("input_audio_buffer.committed") < kinds.index("response.done")
    # The user's turn is answered once the cancelled reply is done.
    events += await client.until("response.done")
    return events


async def test_a_turn_that_ends_during_the_cancel_is_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=10)
    async with memory_session(engine) as (client, _):
        events = await _barge_in_race(client)
        done = [e["response"] for e in events if e["type"] == "response.done"]
        assert [d["status"] for d in done] == ["cancelled", "completed"]
        committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
        # The answer is a reply to the committed turn: it is in the second response's context.
        assert done[1]["usage"]["input_token_details"]["audio_tokens"] > 0
        assert committed["item_id"] not in {o["id"] for o in done[1]["output"]}
        await client.nothing_for(5)  # and exactly one answer


async def test_barge_in_race_over_a_real_socket() -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=5)
    with trio.fail_after(30):
        async with open_engine(engine) as running, connect(running.url) as client:
            events = await _barge_in_race(client)
            statuses = [e["response"]["status"] for e in events if e["type"] == "response.done"]
            assert statuses == ["cancelled", "completed"]


async def test_new_speech_during_the_cancel_waits_for_its_own_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=10)
    async with memory_session(engine) as (client, _):
        await _story(client)
        # A turn ends, and the user starts again, all before the reply closed.
        audio = np.concatenate([speech(400), silence(600), speech(400)])
        for event in appends(audio):
            await client.send(event)
        events = await client.until("response.done")
        assert events[-1]["response"]["status"] == "cancelled"
        await client.nothing_for(5)  # the user is still talking: no answer yet
        for event in appends(silence(600)):
            await client.send(event)
        events = await client.until("response.done")
        kinds = types(events)
        assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
        assert events[-1]["response"]["status"] == "completed"
