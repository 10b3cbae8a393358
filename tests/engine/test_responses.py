"""Responses from brains that fail, and from brains that say several things (issue 11).

Custom brains stand in for the scripted one, in memory on trio's MockClock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
import trio
import trio.testing

from framework.engine import (
    BrainError,
    BrainOutput,
    BrainRequest,
    Disconnected,
    Engine,
    EngineSession,
    Say,
)

from .helpers import MemoryConnection, memory_session, say, types


class _Brain:
    name = "test"
    description = "a test brain"

    def __init__(self, *answers: Sequence[BrainOutput] | Exception) -> None:
        self.answers = list(answers)

    async def respond(self, request: BrainRequest) -> Sequence[BrainOutput]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _respond(client: Any) -> list[dict[str, Any]]:
    await say(client, "hello")
    await client.send({"type": "response.create"})
    events: list[dict[str, Any]] = await client.until("response.done")
    return events


@pytest.mark.parametrize(
    ("raised", "message", "logged"),
    [
        (
            BrainError("rules.toml, rule 2: it calls 'refund', which this session lacks"),
            "rules.toml, rule 2: it calls 'refund', which this session lacks",
            False,
        ),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero", True),
    ],
)
async def test_a_brain_that_raises_fails_the_response_and_says_why(
    raised: Exception,
    message: str,
    logged: bool,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    brain = _Brain(raised, [Say("Still here.")])
    caplog.set_level(logging.DEBUG, logger="cantata.engine")
    async with memory_session(Engine(brain=brain)) as (client, _):
        events = await _respond(client)
        assert types(events)[-2:] == ["error", "response.done"]
        error = events[-2]["error"]
        assert error["type"] == "server_error" and message in error["message"]
        assert "Traceback" not in error["message"]
        done = events[-1]["response"]
        assert done["status"] == "failed"
        assert done["status_details"]["error"]["message"] == error["message"]
        # The session lives on: the next response is answered.
        events = await _respond(client)
        assert events[-1]["response"]["status"] == "completed"
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert bool(tracebacks) is logged
    assert all(r.levelno == logging.DEBUG for r in tracebacks)


async def test_several_says_are_several_messages_each_streamed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    brain = _Brain([Say("Let me check."), Say("It is sunny in Paris.")])
    async with memory_session(Engine(brain=brain)) as (client, _):
        events = await _respond(client)
        done = events[-1]["response"]
        assert [o["type"] for o in done["output"]] == ["message", "message"]
        first, second = (o["id"] for o in done["output"])
        assert [o["content"][0]["transcript"] for o in done["output"]] == [
            "Let me check.",
            "It is sunny in Paris.",
        ]
        for index, item_id in enumerate((first, second)):
            own = [e for e in events if e.get("item_id") == item_id]
            kinds = types(own)
            assert kinds[0] == "response.content_part.added"
            assert "response.output_audio.delta" in kinds
            assert "response.output_audio_transcript.delta" in kinds
            assert kinds[-3:] == [
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
            ]
            item_events = [e["type"] for e in events if e.get("item", {}).get("id") == item_id]
            assert item_events == [
                "response.output_item.added",
                "conversation.item.added",
                "response.output_item.done",
                "conversation.item.done",
            ]
            assert {e["output_index"] for e in own if "output_index" in e} == {index}
        # The first message is closed before the second one starts.
        kinds = types(events)
        closed = max(i for i, e in enumerate(events) if e.get("item_id") == first)
        opened = next(i for i, e in enumerate(events) if e.get("item", {}).get("id") == second)
        assert closed < opened
        assert kinds.count("conversation.item.done") == 2  # one per message


class _Vanishing(MemoryConnection):
    """A connection whose peer is gone after a few events: send raises Disconnected."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.left = after

    async def send(self, text: str) -> None:
        if self.left == 0:
            raise Disconnected
        self.left -= 1
        await super().send(text)


async def test_a_send_that_finds_the_client_gone_ends_the_session_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conn = _Vanishing(after=12)
    session = EngineSession(Engine(latency_ms=10).options, conn)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run)
            content = [{"type": "input_text", "text": "tell me a story"}]
            item = {"type": "message", "role": "user", "content": content}
            await conn.to_server_send.send(
                json.dumps({"type": "conversation.item.create", "item": item})
            )
            await conn.to_server_send.send(json.dumps({"type": "response.create"}))
        # run() returned by itself: no exception, no task left behind.
    assert conn.left == 0 and session.sent == 12
