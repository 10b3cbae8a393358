"""A ``cantata serve`` process, and a WebSocket client that sends whatever bytes it is told.

The raw client speaks RFC 6455 by hand so that tests can send what no
library would: frames torn across writes, bad opcodes, reserved bits, lies
about lengths, and messages larger than the server reads.
"""

from __future__ import annotations

import base64
import os
import re
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path

import attrs
import numpy as np
import trio

ROOT = Path(__file__).resolve().parents[2]
CANTATA = [sys.executable, "-m", "framework.apps.cli"]

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def user_text(text: str) -> dict[str, object]:
    """The ``conversation.item.create`` of a user's text message."""
    content = [{"type": "input_text", "text": text}]
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": content},
    }


async def text_turn(url: str) -> None:
    """A normal session on the side: one text turn, start to finish."""
    from .helpers import connect

    async with connect(url) as client:
        await client.send(user_text("hello"))
        await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        done = (await client.until("response.done"))[-1]
        assert done["response"]["status"] == "completed"


@attrs.define
class Output:
    """Collects a pipe's bytes as they come and hands out whole lines."""

    data: bytearray = attrs.Factory(bytearray)
    grew: trio.Event = attrs.Factory(trio.Event)
    ended: bool = False

    async def pump(self, stream: trio.abc.ReceiveStream) -> None:
        async with stream:
            while chunk := await stream.receive_some():
                self.data += chunk
                self.grew.set()
                self.grew = trio.Event()
        self.ended = True
        self.grew.set()

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    async def line_with(self, needle: str) -> str:
        """Waits for a complete line containing ``needle``."""
        while True:
            for line in self.text.splitlines(keepends=True):
                if needle in line and line.endswith("\n"):
                    return line
            if self.ended:
                raise AssertionError(f"output ended without {needle!r}:\n{self.text}")
            await self.grew.wait()


@attrs.frozen
class Served:
    process: trio.Process
    stdout: Output
    stderr: Output
    spawned: float  # time.monotonic() just before the spawn

    @property
    def url(self) -> str:
        found = re.search(r"wss?://\S+/v1/realtime", self.stdout.text)
        assert found is not None, self.stdout.text
        return found.group(0)

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def rss_kib(self) -> int:
        """The server process's resident memory."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        assert found is not None
        return int(found.group(1))


@asynccontextmanager
async def spawn(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Served]:
    """Runs ``cantata ARGS``; leaving the block kills it if it still runs."""
    async with trio.open_nursery() as nursery:
        spawned = time.monotonic()
        process: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                [*CANTATA, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
                cwd=ROOT,
                env=env,
            )
        )
        out, err = Output(), Output()
        assert process.stdout is not None and process.stderr is not None
        nursery.start_soon(out.pump, process.stdout)
        nursery.start_soon(err.pump, process.stderr)
        try:
            yield Served(process, out, err, spawned)
        finally:
            if process.returncode is None:
                process.kill()


@asynccontextmanager
async def serving(*args: str) -> AsyncIterator[Served]:
    """``cantata serve --port 0 ARGS``, once it says it is ready."""
    async with spawn("serve", "--port", "0", *args) as served:
        await served.stdout.line_with("Ready")
        yield served


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """One client frame: masked (as a client must) unless ``mask=b""``; ``length``
    may lie about the payload's size."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask != b"" else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if mask == b"":
        return head + payload
    key = os.urandom(4) if mask is None else mask
    data = np.frombuffer(payload, dtype=np.uint8)
    keys = np.frombuffer(key * (len(payload) // 4 + 1), dtype=np.uint8)[: len(payload)]
    return head + key + (data ^ keys).tobytes()


@attrs.define
class RawSocket:
    """A WebSocket client over a plain TCP stream, one byte at a time if need be."""

    stream: trio.SocketStream
    buffer: bytearray = attrs.Factory(bytearray)
    sending: trio.Lock = attrs.Factory(trio.Lock)  # pongs and frames from two tasks
    close_sent: bool = False

    @classmethod
    async def open(
        cls,
        port: int,
        *,
        path: str = "/v1/realtime",
        headers: tuple[tuple[str, str], ...] = (),
        receive_buffer: int | None = None,
        early: bytes = b"",
    ) -> RawSocket:
        """Connects and completes the opening handshake (the 101 is checked);
        ``early`` goes out in the same write as the request, before the 101."""
        sock = trio.socket.socket()
        if receive_buffer is not None:
            import socket as stdlib

            sock.setsockopt(stdlib.SOL_SOCKET, stdlib.SO_RCVBUF, receive_buffer)
        await sock.connect(("127.0.0.1", port))
        raw = cls(trio.SocketStream(sock))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers),
        ]
        try:
            await raw.stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode() + early)
            while b"\r\n\r\n" not in raw.buffer:
                chunk = await raw.stream.receive_some()
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                raw.buffer += chunk
            head, _, rest = bytes(raw.buffer).partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(head.decode("latin-1"))
        except BaseException:
            await trio.aclose_forcefully(raw.stream)
            raise
        raw.buffer = bytearray(rest)
        return raw

    async def send(self, data: bytes) -> None:
        async with self.sending:
            await self.stream.send_all(data)

    async def _fill(self, size: int) -> bool:
        while len(self.buffer) < size:
            try:
                chunk = await self.stream.receive_some()
            except trio.BrokenResourceError:
                chunk = b""
            if not chunk:
                return False
            self.buffer += chunk
        return True

    async def next_frame(self) -> tuple[int, bytes] | None:
        """The next server frame (opcode, payload), or ``None`` when the server hung up."""
        if not await self._fill(2):
            return None
        opcode, size = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        offset = 2
        if size == 126:
            if not await self._fill(4):
                return None
            size, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif size == 127:
            if not await self._fill(10):
                return None
            size, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
        if not await self._fill(offset + size):
            return None
        payload = bytes(self.buffer[offset : offset + size])
        del self.buffer[: offset + size]
        return opcode, payload

    async def until_closed(self, *, answer_close: bool = True) -> tuple[int | None, bool]:
        """Reads to the end: the server's close code (if it sent one) and
        whether it then hung up. A close frame is answered, as RFC 6455 asks."""
        code = None
        while True:
            got = await self.next_frame()
            if got is None:
                return code, True
            opcode, payload = got
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                if answer_close:
                    await self.answer_close()
            elif opcode == PING:
                await self.answer(payload)

    async def answer(self, ping: bytes) -> None:
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.send(frame(PONG, ping))

    async def send_eof(self) -> None:
        """Half-closes: the server reads the end of the stream, and may still answer."""
        async with self.sending:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.send_eof()

    async def answer_close(self) -> None:
        """Sends a normal close frame, once (unless the server has already hung up)."""
        if self.close_sent:
            return
        self.close_sent = True
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.send(frame(CLOSE, struct.pack("!H", 1000)))

    async def aclose(self) -> None:
        await self.stream.aclose()
