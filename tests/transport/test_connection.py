"""The client connection against the local engine over a real loopback WebSocket.

Every test runs with both framings: trio-websocket (the default) and the
``websockets`` package's Sans-I/O protocol (``framing="websockets"``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
import trio

from framework.engine import Engine, LinkLimits, open_engine
from framework.protocol import (
    RealtimeErrorEvent,
    RealtimeSessionCreateRequest,
    SessionCreatedEvent,
    SessionUpdateEvent,
    ValidationError,
)
from framework.transport import (
    ConnectionClosed,
    Framing,
    HandshakeRefused,
    open_connection,
    resolve_url,
)

KEY = "sk-test-correct-horse-battery"
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's, for a hand-made 101
FRAMINGS: list[Framing] = ["trio-websocket", "websockets"]


@pytest.fixture(params=FRAMINGS)
def connect(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``open_connection`` with each framing in turn."""
    return functools.partial(open_connection, framing=request.param)


@pytest.mark.parametrize(
    ("url", "model", "expected"),
    [
        (None, None, "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("ws://127.0.0.1:8765/v1", "m1", "ws://127.0.0.1:8765/v1/realtime?model=m1"),
        (
            "http://127.0.0.1:8765/v1/realtime/",
            None,
            "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime",
        ),
        ("wss://x.example/v1/realtime?model=a", "b", "wss://x.example/v1/realtime?model=a"),
        (
            "https://res.openai.azure.com/openai/realtime?api-version=2025-08-28&deployment=d",
            "ignored",
            "wss://res.openai.azure.com/openai/realtime?api-version=2025-08-28&deployment=d",
        ),
    ],
)
def test_resolve_url(url: str | None, model: str | None, expected: str) -> None:
    assert resolve_url(url, model) == expected


def test_resolve_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="not a WebSocket URL"):
        resolve_url("ftp://127.0.0.1/v1", None)


async def test_hosted_api_without_a_key_is_a_clear_error(
    connect: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        async with connect():
            pass


async def test_round_trip_with_the_key(
    connect: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(10):
        async with (
            open_engine(Engine(api_key=KEY)) as running,
            connect(running.url, api_key=KEY, model="gpt-realtime") as conn,
        ):
            created = await conn.receive()
            assert isinstance(created, SessionCreatedEvent)
            await conn.send(
                {"type": "session.update", "session": {"type": "realtime", "instructions": 5}}
            )
            error = await conn.receive()
            assert isinstance(error, RealtimeErrorEvent)
            assert error.error.param == "session.instructions"
            assert KEY not in repr(conn)
    assert KEY not in caplog.text


async def test_a_wrong_key_is_refused_without_echoing_it(connect: Callable[..., Any]) -> None:
    with trio.fail_after(10):
        async with open_engine(Engine(api_key=KEY)) as running:
            with pytest.raises(HandshakeRefused) as refused:
                async with connect(running.url, api_key="sk-wrong-key-0123456789"):
                    pass
    assert refused.value.code == 401
    assert "Incorrect API key" in refused.value.reason
    assert "sk-wrong-key-0123456789" not in str(refused.value)


async def test_nothing_listening_is_connection_closed(connect: Callable[..., Any]) -> None:
    with trio.socket.socket() as sock:  # a port that is surely closed
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
        async with connect(f"ws://127.0.0.1:{port}/v1", api_key="x"):
            pass
    assert closed.value.code == 1006


async def test_bad_events_fail_before_the_wire(connect: Callable[..., Any]) -> None:
    with trio.fail_after(10):
        async with open_engine() as running, connect(running.url) as conn:
            await conn.receive()
            with pytest.raises(ValidationError, match=r"session\.instructions"):
                bad = RealtimeSessionCreateRequest(instructions=3)  # type: ignore[arg-type]
                await conn.send(SessionUpdateEvent(session=bad))
            assert conn.sent == 0


async def test_server_close_carries_code_and_reason(connect: Callable[..., Any]) -> None:
    with trio.fail_after(10):
        async with (
            open_engine(Engine(max_session_s=0.3)) as running,
            connect(running.url) as conn,
        ):
            kinds = [type(event).__name__ async for event in conn]
            # A normal close (1001, expiry) ends iteration quietly...
            assert kinds == ["SessionCreatedEvent", "RealtimeErrorEvent"]
            # ...and the next receive says why the connection is gone.
            with pytest.raises(ConnectionClosed) as closed:
                await conn.receive()
    assert closed.value.code == 1001
    assert "maximum duration" in closed.value.reason


async def test_a_dropped_line_raises_from_iteration(connect: Callable[..., Any]) -> None:
    with trio.fail_after(10):
        async with (
            open_engine(Engine(drop_after_events=1)) as running,
            connect(running.url) as conn,
        ):
            with pytest.raises(ConnectionClosed) as closed:
                async for _ in conn:
                    pass
    assert not closed.value.normal


async def test_keepalive_keeps_an_idle_connection_open(connect: Callable[..., Any]) -> None:
    with trio.fail_after(10):
        async with (
            open_engine() as running,
            connect(running.url, keepalive_interval=0.05) as conn,
        ):
            await conn.receive()
            await trio.sleep(0.5)  # ten pings answered
            assert conn.closed is None
            await conn.send({"type": "input_audio_buffer.clear"})
            assert type(await conn.receive()).__name__ == "InputAudioBufferClearedEvent"


async def test_errors_of_the_block_reach_the_caller_unwrapped(connect: Callable[..., Any]) -> None:
    with trio.fail_after(10):
        async with open_engine() as running:
            with pytest.raises(LookupError, match="mine"):
                async with connect(running.url) as conn:
                    await conn.receive()
                    raise LookupError("mine")
            # The engine saw the client leave and forgot the session.
            await trio.sleep(0.2)
            assert not running.engine.sessions


async def test_the_servers_pings_are_answered_while_the_reader_waits(
    connect: Callable[..., Any],
) -> None:
    # The engine drops a peer silent for its ping interval plus the timeout:
    # only pongs keep this connection, on which nothing else is sent, open.
    limits = LinkLimits(ping_interval_s=0.05, peer_timeout_s=0.1)
    with trio.fail_after(10):
        async with open_engine(Engine(links=limits)) as running, connect(running.url) as conn:
            await conn.receive()
            with trio.move_on_after(0.6):
                await conn.receive()  # nothing comes: the engine only pings
            assert conn.closed is None
            await conn.send({"type": "input_audio_buffer.clear"})
            assert type(await conn.receive()).__name__ == "InputAudioBufferClearedEvent"


async def test_a_large_event_crosses_whole(connect: Callable[..., Any]) -> None:
    # 3 MB of instructions: many TCP reads on the way in, one message out.
    instructions = "x" * 3_000_000
    with trio.fail_after(20):
        async with open_engine() as running, connect(running.url) as conn:
            await conn.receive()
            update = {"type": "session.update", "session": {"type": "realtime"}}
            update["session"]["instructions"] = instructions  # type: ignore[index]
            await conn.send(update)
            updated = await conn.receive()
            assert type(updated).__name__ == "SessionUpdatedEvent"
            assert updated.session.instructions == instructions


async def test_a_send_cancelled_while_the_socket_is_full_still_writes_its_frame_whole(
    connect: Callable[..., Any],
) -> None:
    # The server reads nothing for 0.3 s, so the client's socket fills and a send
    # waits halfway through a frame; the caller's deadline passes meanwhile. A
    # frame cut there would make every byte after it garbage to the server.
    from trio_websocket import ConnectionClosed as Closed
    from trio_websocket import serve_websocket

    reading, ended = trio.Event(), trio.Event()
    got: list[str] = []

    async def handler(request: Any) -> None:
        ws = await request.accept()
        await reading.wait()
        with contextlib.suppress(Closed):
            while not ended.is_set():
                got.append(await ws.get_message())
                if got[-1] == "end":
                    ended.set()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            url = f"ws://127.0.0.1:{server.port}/v1/realtime"
            async with connect(url) as conn:
                nursery.start_soon(_after, 0.3, reading.set)
                sent = []
                with trio.move_on_after(0.1):
                    for n in range(400):
                        await conn.send_text(f"{n:03d}" + "x" * 100_000)
                        sent.append(f"{n:03d}")
                assert reading.is_set()  # a send was waiting when the deadline passed
                await conn.send_text("end")
                await ended.wait()
            nursery.cancel_scope.cancel()
    assert [m[:3] for m in got[:-1]] == sent
    assert all(len(m) == 100_003 for m in got[:-1])


async def _after(delay: float, then: Callable[[], None]) -> None:
    await trio.sleep(delay)
    then()


class _Steps(trio.abc.Instrument):
    """Counts the times one task is scheduled: once per schedule point it passes."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task, self.steps = task, 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += task is self.task


@pytest.mark.parametrize("framing", ["websockets", "trio-websocket"])
async def test_plain_tcp_writes_the_kernel_takes_yield_only_now_and_then(
    framing: Framing,
) -> None:
    # On ws:// a frame the kernel takes at once is written without a schedule
    # point, as asyncio does, under either framing (trio-websocket's send lock
    # is taken at once when free); every 16th write still yields, so that a
    # tight loop of writes cannot hold the run loop.
    with trio.fail_after(10):
        async with (
            open_engine() as running,
            open_connection(running.url, framing=framing) as conn,
        ):
            await conn.receive()
            steps = _Steps(trio.lowlevel.current_task())
            trio.lowlevel.add_instrument(steps)
            try:
                for _ in range(64):
                    await conn.send_text('{"type":"input_audio_buffer.append","audio":"AAAA"}')
            finally:
                trio.lowlevel.remove_instrument(steps)
            least = 64 // 16
            assert least <= steps.steps <= least + 2
            # A cancel is still seen first, before anything is written.
            with trio.CancelScope() as scope:
                scope.cancel()
                await conn.send_text('{"type":"input_audio_buffer.clear"}')
            assert scope.cancelled_caught
            await conn.send({"type": "session.update", "session": {"type": "realtime"}})
            kinds = []
            while not kinds or kinds[-1] != "SessionUpdatedEvent":
                kinds.append(type(await conn.receive()).__name__)
            assert "InputAudioBufferClearedEvent" not in kinds


async def test_a_silent_server_is_dropped_even_while_a_send_waits_on_a_full_socket(
    connect: Callable[..., Any],
) -> None:
    # The server answers the handshake and then neither reads nor answers
    # pings. A send fills the socket and waits, holding the line; the keepalive
    # must still drop the line after its patience, and free that send.
    async def silent(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(4096)
        found = re.search(rb"(?i)sec-websocket-key: *(\S+)", request)
        assert found is not None
        accept = base64.b64encode(hashlib.sha1(found.group(1) + _WS_GUID).digest())
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, silent, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            url = f"ws://127.0.0.1:{port}/v1/realtime"
            began = trio.current_time()
            with pytest.raises(ConnectionClosed) as closed:
                async with connect(url, keepalive_interval=0.1, keepalive_timeout=0.3) as conn:
                    while True:
                        await conn.send_text("x" * 100_000)
            nursery.cancel_scope.cancel()
    assert closed.value.reason == "keepalive timed out"
    assert trio.current_time() - began < 3
