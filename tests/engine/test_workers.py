"""``cantata serve --workers 2``: plain sessions are spread over two processes; the
calls registry and client secrets stay in the primary, and work from any client."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import httpx2
import trio

from .helpers import connect
from .served import serving, spawn, text_turn


def _children(pid: int) -> list[int]:
    """Child processes, of whichever thread started them."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


def _connections(pid: int, port: int) -> int:
    """TCP connections to the engine's ``port`` that the process holds."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            inodes.add(fields[9])
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            held += os.readlink(f"/proc/{pid}/fd/{fd}").removeprefix("socket:[")[:-1] in inodes
    return held


async def test_two_workers_share_the_sessions() -> None:
    with trio.fail_after(60):
        async with serving("--workers", "2") as served:
            (helper,) = _children(served.process.pid)
            port = served.port
            async with connect(served.url) as a, connect(served.url) as b:
                # Turns go primary, helper, primary, ...: one of the two is the helper's.
                assert _connections(helper, port) == 1
                assert _connections(served.process.pid, port) == 1
                for client in (a, b):
                    await client.send({"type": "input_audio_buffer.clear"})
                    await client.until("input_audio_buffer.cleared")
            await text_turn(served.url)
            await text_turn(served.url)

            # A client secret minted over REST works for the session that presents it:
            # the primary keeps every session that carries one.
            base = served.url.replace("ws", "http", 1).removesuffix("/realtime")
            async with httpx2.AsyncClient() as http:
                minted = await http.post(
                    f"{base}/realtime/client_secrets",
                    json={"session": {"type": "realtime", "instructions": "be brief"}},
                )
            assert minted.status_code == 200, minted.text
            secret = minted.json()["value"]
            for _ in range(2):  # whoever's turn it is
                headers = [("Authorization", f"Bearer {secret}")]
                async with connect(served.url, headers=headers) as client:
                    await client.send({"type": "session.update", "session": {"type": "realtime"}})
                    updated = (await client.until("session.updated"))[-1]
                    assert updated["session"]["instructions"] == "be brief"

            # The primary waits for its helper before it exits.
            served.process.send_signal(signal.SIGINT)
            await served.process.wait()
            assert served.process.returncode == 0
            assert not await trio.Path(f"/proc/{helper}").exists()
        assert "Traceback" not in served.stderr.text


async def test_workers_need_plain_websockets() -> None:
    with trio.fail_after(30):
        tls = ("--certfile", "x.pem", "--keyfile", "y.pem")
        async with spawn("serve", "--port", "0", "--workers", "2", *tls) as served:
            await served.process.wait()
        assert served.process.returncode == 2
        assert "--workers" in served.stderr.text
        assert len(served.stderr.text.strip().splitlines()) == 1
