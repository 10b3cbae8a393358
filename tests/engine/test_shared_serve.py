"""``cantata serve --redis``: real engine processes sharing one ``redis-server``.

Two ``cantata serve`` processes on their own ports stand in for two hosts; the
second runs ``--workers 2``. The official SDK mints a client secret on the first
and opens two sessions with it on the second, one of which its helper serves; a
call rung on the first is listed, accepted and hung up through the second.
"""

from __future__ import annotations

import json
import signal

import httpx2
import pytest
import trio
from openai import AsyncOpenAI
from trio_websocket import ConnectionClosed

from framework.transport import HandshakeRefused, open_connection

from .helpers import connect
from .served import Served, serving, spawn
from .test_sdk import in_asyncio
from .test_workers import _children, _connections

MODEL = "gpt-realtime"


def _base(served: Served) -> str:
    """The engine's base URL, ``http://host:port``."""
    return served.url.replace("ws", "http", 1).removesuffix("/v1/realtime")


async def _cantata(*args: str) -> dict[str, object]:
    """Runs ``cantata ARGS`` to its end; what it printed, as JSON."""
    async with spawn(*args) as command:
        await command.process.wait()
    assert command.process.returncode == 0, command.stderr.text
    answer: dict[str, object] = json.loads(command.stdout.text)
    return answer


async def test_two_hosts_one_with_two_workers_share_secrets_and_calls(redis_url: str) -> None:
    with trio.fail_after(90):
        async with (
            serving("--redis", redis_url) as a,
            serving("--redis", redis_url, "--workers", "2") as b,
        ):
            (helper,) = _children(b.process.pid)
            minting, ws_base, port = _base(a) + "/v1", b.url.removesuffix("/realtime"), b.port

            async def client() -> tuple[list[str | None], tuple[int, int]]:
                async with AsyncOpenAI(api_key="sk-any", base_url=minting, max_retries=0) as sdk:
                    secret = await sdk.realtime.client_secrets.create(
                        session={"type": "realtime", "instructions": "Be brief.", "model": MODEL}
                    )
                async with (
                    AsyncOpenAI(api_key=secret.value, websocket_base_url=ws_base) as browser,
                    browser.realtime.connect(model=MODEL) as first,
                    browser.realtime.connect(model=MODEL) as second,
                ):
                    said = []
                    for conn in (first, second):
                        created = await conn.recv()
                        assert created.type == "session.created"
                        said.append(created.session.instructions)
                    return said, (_connections(helper, port), _connections(b.process.pid, port))

            said, (on_helper, on_primary) = await in_asyncio(client, seconds=20)
            assert said == ["Be brief.", "Be brief."]
            # Turns go primary, helper: a session with a secret moves like a plain one.
            assert (on_helper, on_primary) == (1, 1)

            # A call rung on A: B lists it with its holder, and drives it.
            rung = await _cantata("ring", "--engine", _base(a))
            call_id = str(rung["call_id"])
            listed = await _cantata("calls", "--engine", _base(b))
            calls = listed["calls"]
            assert isinstance(calls, list)
            assert [(c["id"], c["state"], c["engine"]["address"]) for c in calls] == [
                (call_id, "ringing", a.url)
            ]
            async with httpx2.AsyncClient(base_url=_base(b), timeout=10) as http:
                accepted = await http.post(
                    f"/v1/realtime/calls/{call_id}/accept",
                    json={"type": "realtime", "instructions": "Hello from B."},
                )
                assert accepted.status_code == 200, accepted.text
                with pytest.raises(HandshakeRefused) as elsewhere:
                    async with open_connection(f"{b.url}?call_id={call_id}", api_key="sk-any"):
                        pass
                assert elsewhere.value.code == 421
                assert a.url in elsewhere.value.reason
                async with connect(f"{a.url}?call_id={call_id}") as caller:
                    await caller.send({"type": "session.update", "session": {"type": "realtime"}})
                    updated = (await caller.until("session.updated"))[-1]
                    assert updated["session"]["instructions"] == "Hello from B."
                    hangup = await http.post(f"/v1/realtime/calls/{call_id}/hangup")
                    assert hangup.status_code == 200, hangup.text
                    with pytest.raises(ConnectionClosed) as closed:
                        while True:
                            await caller.ws.get_message()
                assert closed.value.reason.code == 1000
            listed = await _cantata("calls", "--engine", _base(b))
            assert [c["state"] for c in listed["calls"]] == ["ended"]  # type: ignore[union-attr]
            # A stops as Ctrl-C stops it, and forgets its calls on the way out.
            a.process.send_signal(signal.SIGINT)
            await a.process.wait()
            assert a.process.returncode == 0, a.stderr.text
            assert (await _cantata("calls", "--engine", _base(b)))["calls"] == []
        assert "Traceback" not in a.stderr.text + b.stderr.text


async def test_an_unreachable_redis_is_one_line_at_start() -> None:
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0", "--redis", "redis://127.0.0.1:1/0") as served:
            await served.process.wait()
        assert served.process.returncode == 1
        lines = served.stderr.text.strip().splitlines()
        assert len(lines) == 1, served.stderr.text
        assert lines[0].startswith("cantata serve: Redis at redis://127.0.0.1:1/0 did not answer")
        assert "--redis" in lines[0]
