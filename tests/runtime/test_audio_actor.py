"""The AudioInputActor against a scripted server: appends, commits, a source, its end."""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator

import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import MockClock

from framework import Agent, open_session
from framework.protocol import (
    InputAudioBufferAppendEvent,
    InputAudioBufferCommitEvent,
    ResponseCreateEvent,
    to_json,
)
from framework.runtime._audio_actor import frame_text
from framework.runtime._messages import CommitAudio
from framework.testing import ScriptedServer


def _audio(server: ScriptedServer) -> list[bytes]:
    return [base64.b64decode(e.audio) for e in server.of_type(InputAudioBufferAppendEvent)]


def _kinds(server: ScriptedServer) -> list[str]:
    wanted = {
        "input_audio_buffer.append": "append",
        "input_audio_buffer.commit": "commit",
        "response.create": "create",
    }
    return [wanted[e.type] for e in server.received if e.type in wanted]


@pytest.mark.parametrize(
    ("respond", "expected"),
    [(True, ["append", "append", "commit", "create"]), (False, ["append", "append", "commit"])],
)
async def test_a_commit_follows_the_audio_sent_before_it(
    autojump_clock: MockClock, respond: bool, expected: list[str]
) -> None:
    server = ScriptedServer()
    async with open_session(Agent(turn_detection=None), connection=server) as session:
        await session.send_audio(b"\x01\x00" * 480)
        await session.send_audio(b"\x02\x00" * 480)
        await session.commit(respond=respond)
        # commit() returns once the commit is queued: it is on the wire by now.
        await server.expect(InputAudioBufferCommitEvent)
        if respond:
            await server.expect(ResponseCreateEvent)
    assert _kinds(server) == expected
    assert _audio(server) == [b"\x01\x00" * 480, b"\x02\x00" * 480]


async def test_a_chunk_sent_while_a_commit_is_handed_over_goes_after_it(
    autojump_clock: MockClock,
) -> None:
    # A commit handed to the actor waiting on its inbox has left the inbox's buffer
    # before the actor acts on it. A chunk another task sends in that instant (the
    # microphone, while push-to-talk is released) must not be written ahead of it.
    server = ScriptedServer()
    async with open_session(Agent(turn_detection=None), connection=server) as session:
        await trio.testing.wait_all_tasks_blocked()
        await session.send_audio(b"\x01\x00" * 480)
        # What commit() does, without its wait: the actor is handed the commit and
        # has not run yet when the next chunk comes.
        session._to_audio.send_nowait(CommitAudio(respond=False, queued=trio.Event()))
        await session.send_audio(b"\x02\x00" * 480)
        await trio.sleep(1)
    assert _kinds(server) == ["append", "commit", "append"]
    assert _audio(server) == [b"\x01\x00" * 480, b"\x02\x00" * 480]


async def test_a_source_is_read_at_its_own_pace(autojump_clock: MockClock) -> None:
    chunks = [bytes([n, 0]) * 480 for n in range(1, 6)]
    paced: list[float] = []

    async def microphone() -> AsyncIterator[bytes]:
        for chunk in chunks:
            paced.append(trio.current_time())
            yield chunk
            await trio.sleep(0.02)

    server = ScriptedServer()
    async with open_session(Agent(), connection=server, audio_in=microphone()) as session:
        await trio.sleep(1)
        stats = session.statistics()
    assert _audio(server) == chunks
    assert stats["audio_bytes_sent"] == sum(map(len, chunks))
    assert [round(b - a, 3) for a, b in itertools.pairwise(paced)] == [0.02] * 4


async def test_leaving_stops_an_endless_source(autojump_clock: MockClock) -> None:
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        while True:
            read += 1
            yield b"\x00\x00" * 480
            await trio.sleep(0.02)

    server = ScriptedServer()
    with trio.fail_after(10):
        async with open_session(Agent(), connection=server, audio_in=endless()):
            await trio.sleep(0.1)
    before = read
    await trio.sleep(1)
    assert read == before > 0
    assert len(server.of_type(InputAudioBufferAppendEvent)) == before


class _SlowWire:
    """A wire whose every send takes 20 ms: the outbox fills, and chunks queue."""

    def __init__(self, inner: ScriptedServer) -> None:
        self.inner = inner

    async def send_text(self, text: str) -> None:
        await trio.sleep(0.02)
        await self.inner.send_text(text)

    async def receive_text(self) -> str:
        return await self.inner.receive_text()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.aclose(code, reason)


async def test_chunks_and_commits_keep_their_order_when_the_outbox_is_full(
    autojump_clock: MockClock,
) -> None:
    # 400 chunks behind a slow wire: the first go straight to the outbox, the
    # rest wait in the inbox once it is full, and a commit between them waits
    # in line. None may overtake another, whichever way it went.
    server = ScriptedServer()
    chunks = [n.to_bytes(2, "little") * 480 for n in range(400)]
    async with open_session(Agent(turn_detection=None), connection=_SlowWire(server)) as session:
        for chunk in chunks[:300]:
            await session.send_audio(chunk)
        await session.commit(respond=False)
        for chunk in chunks[300:]:
            await session.send_audio(chunk)
        await session.commit(respond=False)
        await server.expect(InputAudioBufferCommitEvent)
        stats = session.statistics()
    kinds = _kinds(server)
    assert kinds == ["append"] * 300 + ["commit"] + ["append"] * 100 + ["commit"]
    assert _audio(server) == chunks
    assert stats["audio_bytes_sent"] == sum(map(len, chunks))


@given(st.binary(max_size=2000))
def test_an_append_from_the_template_is_what_the_converter_writes(audio: bytes) -> None:
    event = InputAudioBufferAppendEvent(audio=base64.b64encode(audio).decode())
    assert orjson.loads(frame_text(event)) == orjson.loads(to_json(event))


@pytest.mark.parametrize(
    "event",
    [
        InputAudioBufferAppendEvent(audio='AAAA"}, "type": "session.update'),
        InputAudioBufferAppendEvent(audio="AA\\u0041"),
        InputAudioBufferAppendEvent(audio="AA\nAA"),
        InputAudioBufferAppendEvent(audio="AAAA", event_id="mine"),
        InputAudioBufferAppendEvent(audio="AAAA", extra={"note": 1}),
    ],
)
def test_an_append_the_template_cannot_write_goes_through_the_converter(
    event: InputAudioBufferAppendEvent,
) -> None:
    assert frame_text(event) == to_json(event)


class _TaskWire(_SlowWire):
    """A wire that notes which task wrote each frame, and can hold the writer up."""

    def __init__(self, inner: ScriptedServer) -> None:
        super().__init__(inner)
        self.writers: list[tuple[str, trio.lowlevel.Task]] = []
        self.delays: list[float] = []  # the next sends' durations, in order

    async def send_text(self, text: str) -> None:
        self.writers.append((orjson.loads(text)["type"], trio.lowlevel.current_task()))
        if self.delays:
            await trio.sleep(self.delays.pop(0))
        await self.inner.send_text(text)


async def test_a_chunk_is_written_in_the_callers_task_while_the_writer_is_idle(
    autojump_clock: MockClock,
) -> None:
    server = ScriptedServer()
    wire = _TaskWire(server)
    async with open_session(Agent(turn_detection=None), connection=wire) as session:
        await trio.testing.wait_all_tasks_blocked()
        await session.send_audio(b"\x01\x00" * 480)
        me = trio.lowlevel.current_task()
        appends = [task for kind, task in wire.writers if kind == "input_audio_buffer.append"]
        assert appends == [me]  # written before send_audio returned, by its caller
        # While the writer is busy with a slow frame, the next chunk waits behind it
        # in the outbox, and the writer writes it.
        wire.delays = [0.5]
        await session.send_text("hello", respond=False)
        await session.send_audio(b"\x02\x00" * 480)
        await server.expect(InputAudioBufferAppendEvent)
        await trio.sleep(1)
    kinds = [kind for kind, _ in wire.writers]
    assert kinds[-2:] == ["conversation.item.create", "input_audio_buffer.append"]
    assert wire.writers[-1][1] is not me
    assert _audio(server) == [b"\x01\x00" * 480, b"\x02\x00" * 480]


_STEPS = st.lists(
    st.tuples(st.sampled_from(["audio", "text", "commit"]), st.sampled_from([0.0, 0.0, 0.01])),
    max_size=30,
)


@given(_STEPS)
def test_whatever_way_each_part_takes_it_reaches_the_wire_in_the_order_it_was_sent(
    steps: list[tuple[str, float]],
) -> None:
    # Chunks go straight to the wire, through the outbox or through the inbox,
    # depending on what is queued and whether the writer is busy (a send may take
    # 10 ms here); texts and commits go through the outbox. The server must see
    # every one of them in the order the application sent them.
    async def scenario() -> tuple[list[str], list[str]]:
        server = ScriptedServer(answer_items=False)
        wire = _TaskWire(server)
        sent: list[str] = []
        async with open_session(Agent(turn_detection=None), connection=wire) as session:
            for n, (kind, delay) in enumerate(steps):
                wire.delays.append(delay)
                if kind == "audio":
                    await session.send_audio(n.to_bytes(2, "little") * 160)
                    sent.append(f"audio {n}")
                elif kind == "text":
                    await session.send_text(f"text {n}", respond=False)
                    sent.append(f"text {n}")
                else:
                    await session.commit(respond=False)
                    sent.append("commit")
            with trio.fail_after(60):
                for _ in range(len(steps) + 1):  # and the session.update
                    await server.expect(object)
        seen = []
        for event in server.received:
            if isinstance(event, InputAudioBufferAppendEvent):
                seen.append(f"audio {int.from_bytes(base64.b64decode(event.audio)[:2], 'little')}")
            elif isinstance(event, InputAudioBufferCommitEvent):
                seen.append("commit")
            elif event.type == "conversation.item.create":
                text = orjson.loads(to_json(event))["item"]["content"][0]["text"]
                seen.append(f"text {text[5:]}")
        return sent, seen

    sent, seen = trio.run(scenario, clock=MockClock(autojump_threshold=0))
    assert seen == sent
