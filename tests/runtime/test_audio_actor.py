"""The AudioInputActor against a scripted server: appends, commits, a source, its end."""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator

import pytest
import trio
from trio.testing import MockClock

from framework import Agent, open_session
from framework.protocol import (
    InputAudioBufferAppendEvent,
    InputAudioBufferCommitEvent,
    ResponseCreateEvent,
)
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
