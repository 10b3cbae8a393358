"""The ResponseActor, message by message: sequencing, follow-ups, quiet, output, barge-in.

Each script feeds the actor what a server (through the SessionActor), the
tool actor and the application would send, in orders that are hard to
provoke against a real server, and checks what it sends and when the
session counts as quiet. No server, no sockets; ``MockClock`` for playback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from trio.testing import MockClock

from framework import Agent, ClockSink, Session, open_session
from framework.protocol import (
    ConversationItemTruncateEvent,
    RealtimeResponse,
    ResponseCancelEvent,
    ServerVad,
)
from framework.runtime import AssistantDelta, AssistantMessage, Interrupted, ResponseFinished
from framework.runtime._messages import (
    AudioDelta,
    BargedIn,
    CallFinished,
    CreateRefused,
    CreateResponse,
    Interrupt,
    MessageDone,
    ResponseEnded,
    ResponseStarted,
    SessionConfigured,
)
from framework.testing import ScriptedServer

from .actors import Quiet, Sent, response_actor

ACTIVE = "conversation_already_has_active_response"


def started(response_id: str) -> ResponseStarted:
    return ResponseStarted(response_id=response_id)


def ended(response_id: str, *calls: str) -> ResponseEnded:
    return ResponseEnded(
        response_id=response_id,
        status="completed",
        usage=None,
        response=RealtimeResponse(id=response_id, status="completed"),
        call_ids=calls,
    )


def refused(n: int, code: str = ACTIVE) -> CreateRefused:
    return CreateRefused(event_id=f"create_{n:06d}", code=code, message="refused")


def finished(call_id: str, *, speak: bool = True) -> CallFinished:
    return CallFinished(call_id=call_id, speak=speak)


SCRIPTS = {
    "a text turn: one create, quiet once its response ends": [
        Quiet(True),
        CreateResponse(),
        Sent(["create"]),
        Quiet(False),
        started("r1"),
        Quiet(False),
        ended("r1"),
        Sent([]),
        Quiet(True),
    ],
    "requests during a response queue, and merge into one": [
        CreateResponse(),
        CreateResponse(),
        CreateResponse(),
        Sent(["create"]),
        started("r1"),
        ended("r1"),
        Sent(["create"]),
        Quiet(False),
        started("r2"),
        ended("r2"),
        Sent([]),
        Quiet(True),
    ],
    "a VAD response taken for ours, then our create refused: retried after it": [
        CreateResponse(),
        Sent(["create"]),
        started("r_vad"),  # the server's own response, before it read our create
        refused(1),  # ...which it then refuses: a response is active
        Sent([]),  # not while one is active
        Quiet(False),  # ours is still owed
        ended("r_vad"),
        Sent(["create"]),
        started("r_ours"),
        ended("r_ours"),
        Quiet(True),
    ],
    "a create refused for another reason is dropped, not owed": [
        CreateResponse(),
        Sent(["create"]),
        refused(1, code="invalid_value"),
        Sent([]),
        Quiet(True),
    ],
    "a response with two calls: one follow-up after both outputs": [
        CreateResponse(),
        started("r1"),
        ended("r1", "call_a", "call_b"),
        Sent(["create"]),  # the turn's own create only
        Quiet(False),
        finished("call_a"),
        Sent([]),
        Quiet(False),
        finished("call_b"),
        Sent(["create"]),
        started("r2"),
        ended("r2"),
        Quiet(True),
    ],
    "a call that finishes before its response ends still counts": [
        CreateResponse(),
        started("r1"),
        finished("call_a"),  # a quick tool: its output before response.done
        Sent(["create"]),
        ended("r1", "call_a"),
        Sent(["create"]),
        started("r2"),
        ended("r2"),
        Quiet(True),
    ],
    "calls told to finish silently ask for no follow-up": [
        CreateResponse(),
        started("r1"),
        ended("r1", "call_a"),
        finished("call_a", speak=False),
        Sent(["create"]),
        Quiet(True),
    ],
    "one silent call and one that speaks: one follow-up": [
        CreateResponse(),
        started("r1"),
        ended("r1", "call_a", "call_b"),
        finished("call_a", speak=False),
        finished("call_b"),
        Sent(["create", "create"]),
    ],
    "a follow-up while a VAD response runs is queued behind it": [
        CreateResponse(),
        started("r1"),
        ended("r1", "call_a"),
        started("r_vad"),
        finished("call_a"),
        Sent(["create"]),
        ended("r_vad"),
        Sent(["create"]),
    ],
}


@pytest.mark.parametrize("script", SCRIPTS.values(), ids=SCRIPTS.keys())
async def test_sequencing(script: list[object]) -> None:
    async with response_actor() as actor:
        await actor.play(script)


async def test_a_response_is_published_with_its_usage() -> None:
    async with response_actor() as actor:
        await actor.play([CreateResponse(), started("r1"), ended("r1")])
        (done,) = [e for e in actor.published if isinstance(e, ResponseFinished)]
    assert (done.response_id, done.status) == ("r1", "completed")
    assert actor.actor.usage.responses == 1


async def test_several_messages_per_response_are_each_played_and_published(
    autojump_clock: MockClock,
) -> None:
    sink = ClockSink()
    async with response_actor(sink) as actor:
        await actor.play(
            [
                CreateResponse(),
                started("r1"),
                AssistantDelta(
                    response_id="r1", item_id="preamble", delta="One moment.", kind="text"
                ),
                AudioDelta(response_id="r1", item_id="preamble", audio=bytes(48 * 500)),
                MessageDone(response_id="r1", item_id="preamble", text=""),
                AudioDelta(response_id="r1", item_id="answer", audio=bytes(48 * 2000)),
                MessageDone(response_id="r1", item_id="answer", text="It is sunny."),
                ended("r1"),
            ]
        )
        messages = [e for e in actor.published if isinstance(e, AssistantMessage)]
    assert [(m.item_id, m.text, m.audio_ms) for m in messages] == [
        ("preamble", "One moment.", 500),
        ("answer", "It is sunny.", 2000),
    ]
    assert (sink.received_ms("preamble"), sink.received_ms("answer")) == (500, 2000)


@pytest.mark.parametrize(
    ("listen_ms", "truncated"),
    [
        (300, "truncate preamble@300"),  # still in the first message
        (1200, "truncate answer@700"),  # the first is over: the second plays
    ],
)
async def test_barge_in_truncates_the_item_playing(
    autojump_clock: MockClock, listen_ms: int, truncated: str
) -> None:
    sink = ClockSink()
    async with response_actor(sink) as actor:
        await actor.play(
            [
                SessionConfigured(server_interrupts=True),
                CreateResponse(),
                started("r1"),
                AudioDelta(response_id="r1", item_id="preamble", audio=bytes(48 * 500)),
                AudioDelta(response_id="r1", item_id="answer", audio=bytes(48 * 3000)),
                Sent(["create"]),
            ]
        )
        await trio.sleep(listen_ms / 1000)
        # Server VAD cancels the response itself: no response.cancel from us.
        await actor.play([BargedIn(audio_start_ms=0), Sent([truncated])])
        (interrupted,) = [e for e in actor.published if isinstance(e, Interrupted)]
    assert not sink.playing
    assert interrupted.truncated and f"{interrupted.item_id}@{interrupted.played_ms}" in truncated


async def test_an_interrupt_cancels_but_truncates_nothing_unheard(
    autojump_clock: MockClock,
) -> None:
    sink = ClockSink()
    async with response_actor(sink) as actor:
        await actor.play(
            [
                CreateResponse(),
                started("r1"),
                AudioDelta(response_id="r1", item_id="a", audio=bytes(48 * 1000)),
            ]
        )
        await trio.sleep(5)  # played out long ago
        await actor.play([Interrupt(), Sent(["create", "cancel"])])
        (interrupted,) = [e for e in actor.published if isinstance(e, Interrupted)]
    assert (interrupted.played_ms, interrupted.truncated) == (0, False)


async def test_quiet_waiters_are_woken_when_the_actor_ends() -> None:
    async with response_actor() as actor:
        await actor.play([CreateResponse(), started("r1"), Quiet(False)])
        waiter = actor._waiters[-1]
        actor.inbox.close()
        await trio.testing.wait_all_tasks_blocked()
    assert waiter.is_set()


async def test_a_preamble_then_the_answer_over_a_session(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    sink = ClockSink()
    bot = Agent(turn_detection=ServerVad(type="server_vad"))  # the server cancels on speech
    with trio.fail_after(60):
        async with open_session(bot, connection=server, audio_out=sink) as session:
            events = server.audio_response(bytes(48 * 500), bytes(48 * 3000))
            preamble, answer = [e.item.id for e in events if e.type == "response.output_item.added"]
            await server.send(*events[:-1])  # still streaming: no response.done yet
            await trio.sleep(1.2)  # the preamble has played; 700 ms of the answer too
            await server.send(server.speech_started(1200))
            truncate = await server.expect(ConversationItemTruncateEvent)
            await server.send(events[-1])
            await session.wait_quiet()
            messages = [
                e
                async for e in _until(session, ResponseFinished)
                if isinstance(e, AssistantMessage)
            ]
    assert (truncate.item_id, truncate.audio_end_ms) == (answer, 700)
    assert server.of_type(ResponseCancelEvent) == []
    assert [(m.item_id, m.audio_ms) for m in messages] == [(preamble, 500), (answer, 3000)]
    assert session.history.get(preamble) is not None and session.history.get(answer) is not None


async def _until(session: Session, kind: type) -> AsyncIterator[object]:
    async for event in session:
        yield event
        if isinstance(event, kind):
            return
