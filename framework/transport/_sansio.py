"""The Realtime WebSocket on the ``websockets`` package's Sans-I/O protocol, driven on trio.

The option :func:`~._connection.open_connection` takes as
``framing="websockets"``. The framing is the package's (RFC 6455, its own
suite; masking in C); this module only moves bytes. What it saves over the
default per frame: no reader task and no queue between it and the session's
reader (frames are parsed in the task that asks for the next event), masking
in C instead of Python, and one lock-free write when nothing else is writing.
On plain TCP (``ws://``: the local engine, or a proxy that ends TLS) a frame the
kernel takes at once is written without a schedule point, as asyncio writes
(see :class:`~._direct.DirectStream`); a cancel is still seen first.

Pongs, and the answer to the server's close, are written by whoever reads, so
a ping waits for the reader to see its pong: a session always has a reader.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import OP_BINARY, OP_CONT, OP_PONG, OP_TEXT, Frame
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN
from websockets.uri import parse_uri

from framework.errors import ConnectionClosed

from ._connection import MAX_MESSAGE_BYTES, RECEIVE_BYTES, RealtimeConnection, refusal

_CLOSE_WAIT_S = 5.0  # for the server's answer to our close frame
# The protocol's own logger stays above DEBUG: at DEBUG it would write every
# handshake header, the API key among them.
_protocol_log = logging.getLogger("cantata.transport.websocket")
_protocol_log.setLevel(logging.INFO)


class SansIOConnection(RealtimeConnection):
    """One open WebSocket on ``websockets``' :class:`ClientProtocol` over a trio stream."""

    def __init__(self, stream: trio.abc.Stream, protocol: ClientProtocol, url: str) -> None:
        super().__init__(url, stream)
        self._protocol = protocol
        self._messages: deque[str | bytes] = deque()
        self._fragments: list[bytes] = []
        self._binary = False
        self._write_lock = trio.StrictFIFOLock()
        self._pong = trio.Event()
        self._reading = False  # a task is in receive_some (only one may be)
        self._over = trio.Event()  # the peer's close, or the end of the stream, was read

    # --- writing ---------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Writes what the protocol has made, whole, in the order it was made.

        Bytes taken from the protocol are written or the line is dropped, so a
        cancelled writer cannot cut a frame in half. The lock is taken without
        yielding when it is free, so writers keep their order.
        """
        data = self._protocol.data_to_send()
        if not data:
            return
        payload = b"".join(data)
        if not payload:
            return
        lock = self._write_lock
        try:
            # A free lock is taken without a checkpoint, so writers keep their order.
            lock.acquire_nowait()
        except trio.WouldBlock:
            with trio.CancelScope(shield=True):
                await lock.acquire()
        try:
            await self._stream.send_all(payload)  # whole, even if this task is cancelled
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._drop("the connection dropped")
        finally:
            lock.release()

    def _drop(self, reason: str) -> None:
        if self._closed is None:
            self._closed = ConnectionClosed(1006, reason)

    def _check_open(self) -> None:
        if self._closed is not None:
            raise self._closed
        if self._protocol.state is not OPEN:
            raise self._close_seen()

    async def send_text(self, text: str) -> None:
        self._check_open()
        # A cancel is seen before the frame is made: the write may not yield.
        await trio.lowlevel.checkpoint_if_cancelled()
        self._protocol.send_text(text.encode())
        await self._flush()
        if self._closed is not None:
            raise self._closed
        self.sent += 1

    # --- reading ---------------------------------------------------------------------------

    async def receive_text(self) -> str:
        while not self._messages:
            if self._closed is not None:
                raise self._closed
            await self._read()
        self.received += 1
        message = self._messages.popleft()
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def _read(self) -> None:
        self._reading = True
        try:
            data = await self._stream.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        finally:
            self._reading = False
        protocol = self._protocol
        if data:
            protocol.receive_data(bytes(data))
        else:
            protocol.receive_eof()
        self._take(protocol.events_received())
        await self._flush()  # pongs, the answer to a close
        if protocol.state is CLOSED or protocol.close_rcvd is not None or not data:
            self._close_seen()
            self._over.set()

    def _take(self, events: Sequence[object]) -> None:
        for frame in events:
            if not isinstance(frame, Frame):
                continue
            opcode = frame.opcode
            if opcode is OP_TEXT or opcode is OP_BINARY:
                if frame.fin:
                    data = frame.data
                    self._messages.append(
                        bytes(data) if opcode is OP_BINARY else bytes(data).decode()
                    )
                else:
                    self._binary = opcode is OP_BINARY
                    self._fragments = [bytes(frame.data)]
            elif opcode is OP_CONT:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    self._messages.append(whole if self._binary else whole.decode())
            elif opcode is OP_PONG:
                self._pong.set()

    def _close_seen(self) -> ConnectionClosed:
        """The connection's end as the protocol saw it: the peer's close, or a drop."""
        if self._closed is None:
            received = self._protocol.close_rcvd
            sent = self._protocol.close_sent
            if received is not None:
                self._closed = ConnectionClosed(received.code, received.reason)
            elif sent is not None:
                # We failed the connection (a message too large, a protocol error).
                self._closed = ConnectionClosed(sent.code, sent.reason)
            else:
                self._closed = ConnectionClosed(1006, "the connection dropped")
        return self._closed

    # --- closing and keepalive -----------------------------------------------------------

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            self._closed = ConnectionClosed(code, reason or "closed by the client")
        if self._protocol.state is OPEN:
            self._protocol.send_close(code, reason)
            with trio.CancelScope(shield=True):
                await self._flush()
                with trio.move_on_after(_CLOSE_WAIT_S):
                    # The server's answer, read here unless a reader is already waiting
                    # for it (a stream takes one reader at a time).
                    while not self._over.is_set():
                        if self._reading:
                            await self._over.wait()
                        else:
                            await self._read()

    async def _ping(self) -> None:
        """A ping, answered when whoever reads events reads its pong."""
        self._check_open()
        self._pong = pong = trio.Event()
        self._protocol.send_ping(b"")
        await self._flush()
        await pong.wait()


@asynccontextmanager
async def open_sansio(
    stream: trio.abc.Stream,
    target: str,
    host_header: str,
    extra: list[tuple[bytes, bytes]],
    connect_timeout: float,
) -> AsyncIterator[RealtimeConnection]:
    """The WebSocket handshake on ``stream``, then the connection for the block.

    Raises:
        HandshakeRefused: the server answered with another status than 101.
        ConnectionClosed: no answer in time, or the stream ended first.
    """
    protocol = ClientProtocol(parse_uri(target), max_size=MAX_MESSAGE_BYTES, logger=_protocol_log)
    request = protocol.connect()
    for name, value in extra:
        request.headers[name.decode()] = value.decode()
    protocol.send_request(request)
    connection = SansIOConnection(stream, protocol, target)
    try:
        with trio.fail_after(connect_timeout):
            await connection._flush()
            while True:
                try:
                    data = await stream.receive_some(RECEIVE_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if data:
                    protocol.receive_data(bytes(data))
                else:
                    protocol.receive_eof()
                events = protocol.events_received()
                if protocol.handshake_exc is not None:
                    error = protocol.handshake_exc
                    if isinstance(error, InvalidStatus):
                        raise refusal(error.response.status_code, error.response.body)
                    raise ConnectionClosed(1006, f"the WebSocket handshake failed: {error}")
                if events and isinstance(events[0], Response):
                    # Frames that came right behind the 101 are the session's.
                    connection._take(events[1:])
                    break
                if not data:
                    raise ConnectionClosed(1006, "the server closed the connection")
    except trio.TooSlowError:
        raise ConnectionClosed(
            1006, f"no handshake from {host_header} in {connect_timeout:g} s"
        ) from None
    try:
        yield connection
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_WAIT_S):
            await connection.aclose()
