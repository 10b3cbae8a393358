"""A recording proxy on loopback: what a third-party client and the engine said.

The clients under test parse server frames their own way (and the JS ones in
another process), so the frames are taken off the wire instead: the proxy
relays the bytes between client and engine untouched, and reads a copy of the
WebSocket frames (RFC 6455 section 5) going each way. It can speak TLS on
either side, so a client that dials only ``wss://`` still talks to the engine
through it, and the engine's own TLS is on the path too.

One change to the bytes: the client's ``Sec-WebSocket-Extensions`` header is
dropped, so no compression is negotiated and every frame reads as sent.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import attrs
import numpy as np
import trio

_TEXT, _BINARY, _CLOSE = 0x1, 0x2, 0x8
_MAX_HEAD = 64 * 1024


@attrs.define
class Frame:
    """One message that crossed the proxy."""

    sender: str
    """``"client"`` or ``"server"``."""
    kind: str
    """``"text"``, ``"binary"`` or ``"close"``."""
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


@attrs.define
class Tap:
    """Everything both sides sent, in the order the proxy read it."""

    frames: list[Frame] = attrs.Factory(list)
    requests: list[str] = attrs.Factory(list)
    """The request line and headers of each WebSocket handshake."""

    def server_events(self) -> list[dict[str, Any]]:
        return [f.json() for f in self.frames if f.sender == "server" and f.kind == "text"]

    def client_events(self) -> list[dict[str, Any]]:
        return [f.json() for f in self.frames if f.sender == "client" and f.kind == "text"]

    def binary_from_server(self) -> list[Frame]:
        return [f for f in self.frames if f.sender == "server" and f.kind == "binary"]


class _Reader:
    """Reassembles messages from a byte stream of WebSocket frames."""

    def __init__(self, tap: Tap, sender: str) -> None:
        self.tap = tap
        self.sender = sender
        self.buffer = bytearray()
        self.message = bytearray()
        self.kind = ""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while (frame := self._frame()) is not None:
            fin, opcode, payload = frame
            if opcode in (_TEXT, _BINARY):
                self.kind = "text" if opcode == _TEXT else "binary"
                self.message = bytearray(payload)
            elif opcode == 0x0:  # continuation of a fragmented message
                self.message += payload
            elif opcode == _CLOSE:
                self.tap.frames.append(Frame(self.sender, "close", payload))
                continue
            else:
                continue  # ping and pong
            if fin:
                self.tap.frames.append(Frame(self.sender, self.kind, bytes(self.message)))

    def _frame(self) -> tuple[bool, int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        masked, length = bool(buf[1] & 0x80), buf[1] & 0x7F
        at = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, at = int.from_bytes(buf[2:4], "big"), 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, at = int.from_bytes(buf[2:10], "big"), 10
        mask = b""
        if masked:
            mask, at = bytes(buf[at : at + 4]), at + 4
        if len(buf) < at + length:
            return None
        payload = bytes(buf[at : at + length])
        del buf[: at + length]
        if masked:  # clients mask every frame (section 5.3)
            key = np.resize(np.frombuffer(mask, dtype=np.uint8), length)
            payload = (np.frombuffer(payload, dtype=np.uint8) ^ key).tobytes()
        return fin, opcode, payload


async def _read_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    """The HTTP head (through the blank line) and whatever came after it."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        if not chunk or len(data) > _MAX_HEAD:
            raise trio.BrokenResourceError("no HTTP head")
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    return bytes(data[:end]), bytes(data[end:])


def _without_extensions(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    return b"\r\n".join(
        line for line in lines if not line.lower().startswith(b"sec-websocket-extensions:")
    )


async def _pump(source: trio.abc.Stream, sink: trio.abc.Stream, reader: _Reader) -> None:
    try:
        while data := await source.receive_some():
            reader.feed(data)
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    # Either side ending ends the relay: close both, so the other pump stops too.
    with trio.move_on_after(1) as cleanup:
        cleanup.shield = True
        await sink.aclose()
        await source.aclose()


@asynccontextmanager
async def open_tap(
    upstream: str,
    *,
    server_ssl: ssl.SSLContext | None = None,
    upstream_ssl: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[str, Tap]]:
    """A proxy to the engine at ``upstream`` (its ``ws://`` or ``wss://`` URL).

    Yields the URL to give the client (the same path, on the proxy's port;
    ``wss://`` when ``server_ssl`` is given) and the :class:`Tap` it records.
    """
    target = urlsplit(upstream)
    host, port = target.hostname or "127.0.0.1", target.port or 443
    tap = Tap()

    async def relay(client: trio.SocketStream) -> None:
        downstream: trio.abc.Stream = client
        if server_ssl is not None:
            downstream = trio.SSLStream(client, server_ssl, server_side=True)
        engine: trio.abc.Stream = await trio.open_tcp_stream(host, port)
        if upstream_ssl is not None:
            engine = trio.SSLStream(engine, upstream_ssl, server_hostname=host)
        try:
            head, rest = await _read_head(downstream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await engine.aclose()
            await downstream.aclose()
            return
        tap.requests.append(head.decode("latin-1"))
        await engine.send_all(_without_extensions(head) + rest)
        client_reader = _Reader(tap, "client")
        client_reader.feed(rest)
        answer, more = await _read_head(engine)
        await downstream.send_all(answer + more)
        server_reader = _Reader(tap, "server")
        server_reader.feed(more)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, downstream, engine, client_reader)
            nursery.start_soon(_pump, engine, downstream, server_reader)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, relay, 0, host="127.0.0.1"))
        proxy_port = listeners[0].socket.getsockname()[1]
        scheme = "wss" if server_ssl is not None else "ws"
        query = f"?{target.query}" if target.query else ""
        yield f"{scheme}://127.0.0.1:{proxy_port}{target.path}{query}", tap
        nursery.cancel_scope.cancel()
