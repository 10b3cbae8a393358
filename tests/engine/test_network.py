"""The engine's TCP face against peers that misbehave: no one connection ends
the server, and a peer that stops reading, stops answering or never leaves
loses its session within a bounded time.

The server runs as ``cantata serve`` in a subprocess where its survival is the
point, and in process (on loopback, real sockets) where the test must look at
the engine's sessions and connections.
"""

from __future__ import annotations

import gc
import json
import struct
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from framework.engine import Engine, EngineSession, LinkLimits, RunningEngine, open_engine
from framework.engine._server import MAX_MESSAGE_BYTES

from .helpers import connect
from .served import BINARY, CLOSE, TEXT, RawSocket, frame, serving, text_turn


async def test_an_oversized_message_then_other_frames_do_not_end_the_server() -> None:
    """hypercorn keeps an oversized message's buffer after its 1009 close; a binary
    frame and then any frame used to raise in it and end the whole process."""
    with trio.fail_after(60):
        async with serving() as served:
            raw = await RawSocket.open(served.port)
            try:
                await raw.send(frame(TEXT, b"a" * (MAX_MESSAGE_BYTES + 1)))
                code, hung_up = None, False
                # The close frame arrives while the rest is still being refused.
                while code is None:
                    got = await raw.next_frame()
                    assert got is not None, "hung up without a close frame"
                    if got[0] == CLOSE:
                        code = struct.unpack("!H", got[1][:2])[0]
                assert code == 1009
                for data in (frame(BINARY, b"\x00binary"), frame(TEXT, b"{}")):
                    try:
                        await raw.send(data)
                    except trio.BrokenResourceError:
                        break  # the server has already cut the line: fine
                    await trio.sleep(0.2)  # each in its own read, as a slow client sends them
                _, hung_up = await raw.until_closed()
                assert hung_up
            finally:
                await raw.aclose()
            assert served.process.returncode is None
            await text_turn(served.url)  # the server still serves
        assert "Traceback" not in served.stderr.text
        assert "1009" in served.stderr.text  # one line says why that connection was cut


@asynccontextmanager
async def _engine(**limits: float | None) -> AsyncIterator[RunningEngine]:
    async with open_engine(Engine(links=LinkLimits(**limits))) as running:  # type: ignore[arg-type]
        yield running


def _port(running: RunningEngine) -> int:
    return int(running.url.split(":")[2].split("/")[0])


async def _session_of(engine: Engine) -> weakref.ref[EngineSession]:
    await engine.wait_until(lambda engine: bool(engine.sessions))
    (session,) = engine.sessions
    return weakref.ref(session)


async def _freed(engine: Engine, session: weakref.ref[EngineSession]) -> None:
    """Waits until the session and its connection are gone, and the session's memory with them."""
    await engine.wait_until(lambda engine: not engine.sessions and not engine.connections)
    gc.collect()
    assert session() is None, "the ended session is still referenced"


async def _flood(raw: RawSocket) -> None:
    """Asks for far more than a socket buffer holds, and reads none of it."""
    text = "x" * 200_000
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    # Each item comes back twice (conversation.item.added and .done).
    create = frame(TEXT, json.dumps({"type": "conversation.item.create", "item": item}).encode())
    try:
        for _ in range(200):  # 80 MB of conversation.item.added and .done to send back
            await raw.send(create)
    except trio.BrokenResourceError:
        pass  # the engine cut the line


async def _freed_while_flooding(engine: Engine, raw: RawSocket) -> None:
    session = await _session_of(engine)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_flood, raw)
        await _freed(engine, session)
        nursery.cancel_scope.cancel()


async def test_a_peer_that_stops_reading_loses_its_session() -> None:
    with trio.fail_after(30):
        async with _engine(peer_timeout_s=1.0, ping_interval_s=None) as running:
            raw = await RawSocket.open(_port(running), receive_buffer=4096)
            await _freed_while_flooding(running.engine, raw)
            await raw.aclose()


async def test_a_peer_that_stops_reading_and_then_leaves_loses_its_session() -> None:
    with trio.fail_after(30):
        # A long peer timeout: the departure, not the timeout, must free it.
        async with _engine(peer_timeout_s=60.0, ping_interval_s=None) as running:
            raw = await RawSocket.open(_port(running), receive_buffer=4096)
            session = await _session_of(running.engine)
            with trio.move_on_after(2):
                await _flood(raw)  # until the engine stops reading, and then some
            await raw.aclose()  # with unread data: the kernel resets the connection
            await _freed(running.engine, session)


async def test_a_peer_that_answers_no_pings_is_dropped() -> None:
    with trio.fail_after(30):
        async with _engine(peer_timeout_s=1.0, ping_interval_s=0.3) as running:
            raw = await RawSocket.open(_port(running))
            session = await _session_of(running.engine)
            start = trio.current_time()
            pings = 0
            while (got := await raw.next_frame()) is not None:
                pings += got[0] == 0x9  # read everything, answer nothing
            await _freed(running.engine, session)
            assert pings >= 2
            assert trio.current_time() - start < 1.3 + 2.0
            await raw.aclose()


async def test_a_quiet_client_that_answers_pings_keeps_its_session() -> None:
    with trio.fail_after(30):
        async with (
            _engine(peer_timeout_s=1.0, ping_interval_s=0.3) as running,
            connect(running.url) as client,
        ):
            await trio.sleep(3.0)  # ten ping intervals of silence from the application
            assert len(running.engine.sessions) == 1
            await client.send({"type": "input_audio_buffer.clear"})
            await client.until("input_audio_buffer.cleared")


async def test_a_peer_that_never_answers_the_close_is_cut_after_the_grace() -> None:
    with trio.fail_after(30):
        engine = Engine(max_session_s=0.3, links=LinkLimits(close_grace_s=0.5))
        async with open_engine(engine) as running:
            raw = await RawSocket.open(_port(running))
            session = await _session_of(engine)
            closed_at = None
            while (got := await raw.next_frame()) is not None:
                if got[0] == CLOSE:
                    closed_at = trio.current_time()  # and never answer it
            assert closed_at is not None
            assert trio.current_time() - closed_at < 0.5 + 1.5
            await _freed(engine, session)
            await raw.aclose()


async def test_frames_sent_right_behind_the_handshake_are_served() -> None:
    """The handshake is read together with whatever follows it; a client that does
    not wait for the 101 must lose none of its first events."""
    clear = frame(TEXT, json.dumps({"type": "input_audio_buffer.clear"}).encode())
    with trio.fail_after(30):
        async with _engine() as running:
            raw = await RawSocket.open(_port(running), early=clear + clear)
            kinds = []
            while kinds.count("input_audio_buffer.cleared") < 2:
                got = await raw.next_frame()
                assert got is not None, f"hung up after {kinds}"
                if got[0] == TEXT:
                    kinds.append(json.loads(got[1])["type"])
            assert kinds[0] == "session.created"
            await raw.aclose()
