"""Driving one actor by its messages: a harness, and steps for table-driven tests.

A script is a list of steps: a message is sent to the actor's inbox (and the
actor left to settle); :class:`Sent` checks the client events it sent since
the last check; :class:`Quiet` checks whether the session is quiet by the
actor's own protocol (a ``NotifyWhenQuiet`` through its inbox).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import trio
import trio.testing

from framework.audio import AudioSink
from framework.protocol import (
    ClientEvent,
    ConversationItemCreateEvent,
    ConversationItemTruncateEvent,
    ResponseCancelEvent,
    ResponseCreateEvent,
)
from framework.runtime import EventHub, ResponseActor, SessionEvent
from framework.runtime._messages import NotifyWhenQuiet, ResponseInbox


@attrs.frozen
class Sent:
    """The client events sent since the last check, each as a short string."""

    events: Sequence[str]


@attrs.frozen
class Quiet:
    """Whether the session is quiet now."""

    expected: bool


def describe(event: ClientEvent) -> str:
    """A client event in a few characters: ``create``, ``cancel``, ``truncate item@ms``, ..."""
    if isinstance(event, ResponseCreateEvent):
        return "create"
    if isinstance(event, ResponseCancelEvent):
        return "cancel"
    if isinstance(event, ConversationItemTruncateEvent):
        return f"truncate {event.item_id}@{event.audio_end_ms}"
    if isinstance(event, ConversationItemCreateEvent):
        return f"item {getattr(event.item, 'type', '?')}"
    return str(event.type)


@attrs.define
class ResponseHarness:
    actor: ResponseActor
    inbox: trio.MemorySendChannel[ResponseInbox]
    outbox: trio.MemoryReceiveChannel[ClientEvent]
    published: list[SessionEvent]
    _waiters: list[trio.Event] = attrs.Factory(list)

    async def tell(self, message: ResponseInbox) -> None:
        await self.inbox.send(message)
        await trio.testing.wait_all_tasks_blocked()

    def sent(self) -> list[ClientEvent]:
        out = []
        while True:
            try:
                out.append(self.outbox.receive_nowait())
            except trio.WouldBlock:
                return out

    async def quiet(self) -> bool:
        waiter = trio.Event()
        await self.tell(NotifyWhenQuiet(quiet=waiter))
        self._waiters.append(waiter)
        return waiter.is_set()

    async def play(self, script: Sequence[object]) -> None:
        """Runs a script of messages and checks (see the module docstring)."""
        for step in script:
            if isinstance(step, Sent):
                assert [describe(e) for e in self.sent()] == list(step.events), step
            elif isinstance(step, Quiet):
                assert await self.quiet() is step.expected, step
            else:
                await self.tell(step)  # type: ignore[arg-type]


@asynccontextmanager
async def response_actor(sink: AudioSink | None = None) -> AsyncIterator[ResponseHarness]:
    outbox_send, outbox = trio.open_memory_channel[ClientEvent](100)
    inbox_send, inbox = trio.open_memory_channel[ResponseInbox](100)
    events = EventHub()
    published: list[SessionEvent] = []
    events.observe(published.append)
    actor = ResponseActor(inbox, outbox=outbox_send, events=events, sink=sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        with inbox_send:
            yield ResponseHarness(actor, inbox_send, outbox, published)
