"""The ResponseActor's sequencing, driven message by message (no server).

Each test feeds the actor the events a server would send, in orders that
are hard to provoke on purpose against a real one, and checks what it sends
and how it counts activity.
"""

from __future__ import annotations

from typing import Any

import trio

from framework import Agent
from framework.actors import CreateResponse, Outbox, ResponseActor, Runtime
from framework.protocol import (
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeResponse,
    ResponseCreatedEvent,
    ResponseCreateEvent,
    ResponseDoneEvent,
)


def _actor() -> tuple[ResponseActor, trio.MemoryReceiveChannel[Any]]:
    sent, wire = trio.open_memory_channel[Any](100)
    inbox_send, inbox = trio.open_memory_channel[Any](100)
    runtime = Runtime(
        agent=Agent(),
        outbox=Outbox(sent),
        response_inbox=inbox_send,
        tool_inbox=trio.open_memory_channel[Any](1)[0],
        audio_inbox=trio.open_memory_channel[Any](1)[0],
    )
    return ResponseActor(runtime, inbox), wire


def _created(response_id: str) -> ResponseCreatedEvent:
    return ResponseCreatedEvent(
        event_id="e", response=RealtimeResponse(id=response_id, status="in_progress")
    )


def _done(response_id: str) -> ResponseDoneEvent:
    return ResponseDoneEvent(
        event_id="e", response=RealtimeResponse(id=response_id, status="completed")
    )


def _refused(event_id: str) -> RealtimeErrorEvent:
    return RealtimeErrorEvent(
        event_id="e",
        error=RealtimeError(
            type="invalid_request_error",
            code="conversation_already_has_active_response",
            message="Conversation already has an active response",
            event_id=event_id,
        ),
    )


def _creates(wire: trio.MemoryReceiveChannel[Any]) -> list[str]:
    out = []
    while True:
        try:
            event = wire.receive_nowait()
        except trio.WouldBlock:
            return out
        if isinstance(event, ResponseCreateEvent):
            out.append(str(event.event_id))


async def test_a_vad_response_taken_for_ours_then_refusal_retries() -> None:
    actor, wire = _actor()
    activity = actor.rt.activity
    activity.up()
    await actor.handle(CreateResponse())
    (first,) = _creates(wire)
    # The server's own VAD response starts before it reads our create...
    await actor.handle(_created("resp_vad"))
    # ...then refuses our create, because that response is active.
    await actor.handle(_refused(first))
    assert activity.count == 2  # the VAD response, and our request still owed
    assert _creates(wire) == []  # not while a response is active
    await actor.handle(_done("resp_vad"))
    (retry,) = _creates(wire)
    assert retry != first
    assert activity.count == 1
    await actor.handle(_created("resp_ours"))
    await actor.handle(_done("resp_ours"))
    assert activity.count == 0


async def test_requests_during_a_response_queue_and_merge() -> None:
    actor, wire = _actor()
    activity = actor.rt.activity
    for _ in range(3):
        activity.up()
        await actor.handle(CreateResponse())
    assert len(_creates(wire)) == 1
    assert actor.stats["creates_merged"] == 1
    assert activity.count == 2  # the running one and the queued one
    await actor.handle(_created("resp_1"))
    await actor.handle(_done("resp_1"))
    assert len(_creates(wire)) == 1
    await actor.handle(_created("resp_2"))
    await actor.handle(_done("resp_2"))
    assert activity.count == 0
    assert _creates(wire) == []


async def test_a_refused_create_is_not_counted_forever() -> None:
    actor, wire = _actor()
    activity = actor.rt.activity
    activity.up()
    await actor.handle(CreateResponse())
    (first,) = _creates(wire)
    error = _refused(first)
    other = RealtimeErrorEvent(
        event_id="e",
        error=RealtimeError(
            type="invalid_request_error", code="invalid_value", message="bad", event_id=first
        ),
    )
    assert error.error.code != other.error.code
    await actor.handle(other)
    assert activity.count == 0
    assert not actor.busy
