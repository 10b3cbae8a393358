"""The engine's fault knobs: what a client's continuity is tested against.

A connection dropped at a chosen moment, a session ended before the
``expires_at`` it announced, and handshakes refused for a while, each through
the operator interface (as a test or an operator drives a running engine) and
the engine's options. Real sockets on loopback; the client is trio-websocket.
"""

from __future__ import annotations

import httpx2
import pytest
import trio
from trio_websocket import ConnectionClosed

from framework.engine import Engine, OperatorClient, OperatorError, RunningEngine, open_engine
from framework.errors import HandshakeRefused
from framework.transport import open_connection

from .helpers import connect


def _operator(http: httpx2.AsyncClient, running: RunningEngine) -> OperatorClient:
    return OperatorClient(http, running.http_url.removesuffix("/v1"), api_key=None)


async def test_a_dropped_session_dies_without_a_closing_handshake() -> None:
    with trio.fail_after(20):
        async with (
            open_engine(Engine()) as running,
            httpx2.AsyncClient(timeout=10) as http,
            connect(running.url) as client,
        ):
            session_id = client.received[0]["session"]["id"]
            await _operator(http, running).drop(session_id)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await client.recv()
            # No close frame: the line died (trio-websocket reports no reason).
            assert closed.value.reason is None or closed.value.reason.code == 1006
            await running.engine.wait_until(lambda engine: not engine.sessions)


async def test_a_session_expired_early_says_so_and_closes_1001() -> None:
    with trio.fail_after(20):
        async with (
            open_engine(Engine()) as running,
            httpx2.AsyncClient(timeout=10) as http,
            connect(running.url) as client,
        ):
            created = client.received[0]["session"]
            assert created["expires_at"] > trio.current_time()  # an hour away, announced
            await _operator(http, running).expire(created["id"])
            events = await client.until("error")
            error = events[-1]["error"]
            assert error["code"] == "session_expired"
            assert error["message"] == "Your session hit the maximum duration of 60 minutes."
            with pytest.raises(ConnectionClosed) as closed:
                await client.recv()
            assert closed.value.reason.code == 1001


async def test_handshakes_are_refused_for_a_while_then_accepted() -> None:
    engine = Engine()
    with trio.fail_after(20):
        async with open_engine(engine) as running, httpx2.AsyncClient(timeout=10) as http:
            operator = _operator(http, running)
            await operator.refuse(0.5, status=503)
            # Our client, which closes its socket when refused (trio-websocket's leaks it).
            with pytest.raises(HandshakeRefused) as refused:
                async with open_connection(running.url):
                    pass
            assert refused.value.code == 503
            assert "temporarily unavailable" in refused.value.reason
            await trio.sleep(0.6)  # the outage is a span of real time
            async with connect(running.url) as client:
                assert client.received[0]["type"] == "session.created"
            assert engine.refused == 1


async def test_refusal_as_an_option_counts_from_the_first_handshake() -> None:
    engine = Engine(refuse_connections_s=0.4)
    with trio.fail_after(20):
        async with open_engine(engine) as running:
            for _ in range(2):
                with pytest.raises(HandshakeRefused):
                    async with open_connection(running.url):
                        pass
            await trio.sleep(0.5)
            async with connect(running.url) as client:
                assert client.received[0]["type"] == "session.created"
    assert engine.refused == 2


async def test_fault_requests_name_what_is_wrong() -> None:
    with trio.fail_after(20):
        async with open_engine(Engine()) as running, httpx2.AsyncClient(timeout=10) as http:
            operator = _operator(http, running)
            for call, says in (
                (operator.drop("sess_nope"), "is not live"),
                (operator.expire("sess_nope"), "is not live"),
                (operator.refuse(-1), "'seconds'"),
                (operator.refuse(1, status=200), "'status'"),
            ):
                with pytest.raises(OperatorError) as info:
                    await call
                assert says in str(info.value)


async def test_input_statistics_count_every_appended_millisecond() -> None:
    import base64

    engine = Engine()
    with trio.fail_after(20):
        async with open_engine(engine) as running, connect(running.url) as client:
            chunk = base64.b64encode(bytes(48 * 20)).decode()  # 20 ms of PCM16 at 24 kHz
            for _ in range(10):
                await client.send({"type": "input_audio_buffer.append", "audio": chunk})
            await client.send({"type": "input_audio_buffer.clear"})
            await client.until("input_audio_buffer.cleared")
            (session,) = engine.sessions
            stats = session.statistics().input
    assert stats.received_ms == 200
    assert stats.buffered_ms == 0
