"""The Realtime WebSocket on the ``websockets`` package's Sans-I/O protocol, driven on trio.

hypercorn serves the engine's HTTP. A connection whose first request asks
for a WebSocket is served here instead (:mod:`._network` decides), because
the WebSocket is the engine's hot path and hypercorn's costs a fixed price
per frame: a queue hop and a task switch for every message read, a lock, an
h11 event and a system call for every message written, and masking in
Python. Here the session's reader parses frames inline, in its own task;
the writer hands over a batch of events as one write; unmasking is the
package's C helper. The framing is the package's (RFC 6455, checked by its
own suite): this module only moves bytes and keeps the engine's bounds.

The bounds are :class:`~._network.Link`'s, kept by the same clock: a message
larger than ``max_message_bytes`` is refused with close code 1009 and the
connection closed; a write the peer does not take within ``peer_timeout_s``
drops it; a ping goes out every ``ping_interval_s`` and a peer silent for the
interval plus ``peer_timeout_s`` is dropped; after the server's close frame
the peer has ``close_grace_s`` to answer it.

Pings and silence are kept by a watchdog task per connection, not by a
deadline on every read: a voice client sends fifty frames a second, and a
cancel scope per read was an eighth of the engine's time.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import trio
from websockets.datastructures import Headers
from websockets.frames import OP_BINARY, OP_CONT, OP_TEXT, Frame
from websockets.http11 import Request, Response
from websockets.protocol import CLOSED, CLOSING, OPEN
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from ._outbox import Disconnected

if TYPE_CHECKING:
    from ._network import Link

_log = logging.getLogger("cantata.engine")

SUBPROTOCOL = Subprotocol("realtime")
"""The one subprotocol the engine accepts (browsers also offer their key as one)."""
_MAX_REASON = 123  # bytes of a close reason that fit a control frame (RFC 6455, 5.5)
_WHY_FAILED = {
    1002: "it broke the WebSocket protocol",
    1007: "it sent text that is not UTF-8",
    1009: "a message was larger than the engine accepts",
}


def _subprotocol(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


class WebSocketOpening:
    """A WebSocket handshake the engine has not answered yet: accept it or deny it."""

    def __init__(
        self,
        link: Link,
        protocol: ServerProtocol,
        request: Request,
        response: Response,
        early: list[Frame],
    ) -> None:
        self.link = link
        self._protocol = protocol
        self._response = response  # the 101 that accept() sends
        self._early = early  # frames the client sent before its 101 came
        self._watchdogs: trio.Nursery | None = None
        path, _, query = request.path.partition("?")
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "path": path,
            "query_string": query.encode("latin-1", "replace"),
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1", "replace"))
                for name, value in request.headers.raw_items()
            ],
            "subprotocols": [
                name.strip()
                for value in request.headers.get_all("Sec-WebSocket-Protocol")
                for name in value.split(",")
            ],
        }
        """The request as an ASGI scope shows it (the engine reads its handshake from that)."""

    @classmethod
    async def read(cls, link: Link, head: bytes, max_message_bytes: int) -> WebSocketOpening | None:
        """Parses the handshake request in ``head``; None when it is no valid WebSocket
        request (the peer has then been answered, 400 or 426, and the link closed)."""
        protocol = ServerProtocol(max_size=max_message_bytes, select_subprotocol=_subprotocol)
        protocol.receive_data(head)
        events = protocol.events_received()
        request = events[0] if events else None
        if isinstance(request, Request):
            response = protocol.accept(request)
            if response.status_code == 101:
                # A client may send frames right behind its request: the protocol
                # has parsed them already, and they are the session's.
                early = [frame for frame in events[1:] if isinstance(frame, Frame)]
                return cls(link, protocol, request, response, early)
            protocol.send_response(response)
        await WebSocket(link, protocol).flush()
        return None

    async def deny(self, status: int, body: bytes) -> None:
        """Answers the handshake with an HTTP error and a JSON body, and ends the link."""
        headers = Headers(
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
        )
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        self._protocol.send_response(Response(status, reason, headers, body))
        await WebSocket(self.link, self._protocol).flush()

    async def serve(self, handler: Callable[[WebSocketOpening], Awaitable[None]]) -> None:
        """Runs ``handler`` on this opening; the WebSocket it accepts is watched meanwhile."""
        async with trio.open_nursery() as nursery:
            self._watchdogs = nursery
            await handler(self)
            nursery.cancel_scope.cancel()

    async def accept(self, subprotocol: str | None) -> WebSocket:
        """Completes the handshake (the subprotocol was chosen when the request was read)."""
        assert self._watchdogs is not None, "accept() is for the handler that serve() runs"
        self._protocol.send_response(self._response)
        websocket = WebSocket(self.link, self._protocol)
        websocket.take(self._early)
        await websocket.flush()
        self._watchdogs.start_soon(websocket.watch)
        return websocket


class WebSocket:
    """One open WebSocket: the session's :class:`~._outbox.BatchConnection`.

    The session's reader reads through :meth:`receive`, which also answers
    pings; :meth:`watch` sends the engine's own pings and watches the peer's
    silence; the session's writer writes through :meth:`send_batch`. Both write through
    :meth:`flush` under one lock, so frames leave in the order they were made.
    """

    def __init__(self, link: Link, protocol: ServerProtocol) -> None:
        self.link = link
        self._protocol = protocol
        self._messages: deque[str | bytes] = deque()
        self._fragments: list[bytes | bytearray | memoryview] = []
        self._binary = False
        self._write_lock = trio.Lock()
        self._heard = trio.current_time()  # when the peer last sent a byte
        self._close_deadline = math.inf
        self.closed = False
        """The server sent its close frame, or the client went away."""
        self.disconnected = False
        """The client went away (or finished the closing handshake)."""

    # --- writing -------------------------------------------------------------------------

    async def flush(self) -> None:
        """Writes whatever the protocol has made (frames, a response, the end of the stream).

        Shielded: what is taken from the protocol is written whole or the link
        is dropped (a write has its own deadline), so a task cancelled mid-way
        cannot lose a close frame another task made, nor cut a frame in half.
        Most reads leave nothing to write: that costs no scope and no lock.
        The lock queues writers first come, first served, and a writer takes its
        place in the queue without yielding, so bytes leave in the order the
        protocol made them.
        """
        data = self._protocol.data_to_send()
        if not data:
            return
        with trio.CancelScope(shield=True):
            async with self._write_lock:
                payload = b"".join(data)
                if payload:
                    await self.link.write(payload)
                if not data[-1]:  # the protocol's end-of-stream marker
                    await self.link.write_eof()

    async def send(self, text: str) -> None:
        await self.send_batch([text.encode()])

    async def send_batch(self, frames: Sequence[bytes]) -> None:
        if self.closed:
            raise Disconnected
        send_text = self._protocol.send_text
        for frame in frames:
            send_text(frame)
        await self.flush()

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self._protocol.state is OPEN:
            cut = reason.encode()[:_MAX_REASON].decode(errors="ignore")
            self._protocol.send_close(code, cut)
            self._close_deadline = trio.current_time() + self.link.limits.close_grace_s
            await self.flush()

    async def abort(self) -> None:
        # The closest the protocol comes to dropping the line, and what clients see
        # of it either way: an abnormal close (1011).
        await self.close(1011, "connection dropped by the engine's drop_after_events knob")

    # --- reading -------------------------------------------------------------------------

    async def receive(self) -> str | bytes:
        while not self._messages:
            if self.closed:
                raise Disconnected
            await self._read()
        return self._messages.popleft()

    async def _read(self) -> None:
        """Reads once from the peer and takes in what arrived (the watchdog keeps time)."""
        try:
            data = await self.link.read()
        except trio.BrokenResourceError:
            self.closed = self.disconnected = True
            raise Disconnected("the peer reset the connection") from None
        self._heard = trio.current_time()
        if data:
            self._protocol.receive_data(bytes(data))
        else:
            self._protocol.receive_eof()
        self.take(self._protocol.events_received())
        await self.flush()  # pongs, the echo of a close, the end of the stream

    async def watch(self) -> None:
        """Pings the peer every ``ping_interval_s``; drops it once silent for ``silence_s``.

        A drop cancels every task serving the connection (:meth:`Link.drop`).
        """
        limits = self.link.limits
        interval = limits.ping_interval_s
        if interval is None:
            return  # no pings, and so no silence that counts as gone
        next_ping = trio.current_time() + interval
        while True:
            silent_at = self._heard + limits.silence_s
            await trio.sleep_until(min(next_ping, silent_at))
            now = trio.current_time()
            if now >= self._heard + limits.silence_s:
                self.closed = self.disconnected = True
                self.link.drop(
                    f"the peer sent nothing, not even a pong, for {limits.silence_s:g} s"
                )
                return
            if now >= next_ping:
                next_ping = now + interval
                if self._protocol.state is OPEN:
                    self._protocol.send_ping(b"")
                    await self.flush()

    def take(self, events: Sequence[Request | Response | Frame]) -> None:
        """Takes in frames the protocol parsed: messages for the session, or its end."""
        protocol = self._protocol
        for frame in events:
            assert isinstance(frame, Frame)
            opcode = frame.opcode
            if opcode is OP_TEXT or opcode is OP_BINARY:
                self._binary = opcode is OP_BINARY
                self._fragments = [frame.data]
            elif opcode is OP_CONT:
                self._fragments.append(frame.data)
            else:
                continue  # control frames: the protocol has answered them
            if frame.fin and not self._message(b"".join(self._fragments)):
                return
        if protocol.state is CLOSED or protocol.close_rcvd is not None:
            self.closed = self.disconnected = True  # the peer left, or closed the WebSocket
        elif protocol.state is CLOSING and not self.closed and protocol.close_sent is not None:
            self._failed(protocol.close_sent.code)  # the protocol failed the connection

    def _message(self, data: bytes) -> bool:
        """Queues a whole message for the session; False when it failed the connection."""
        self._fragments = []
        if self._binary:
            self._messages.append(data)
            return True
        try:
            self._messages.append(data.decode())
        except UnicodeDecodeError as e:
            # RFC 6455, 8.1: text that is not UTF-8 fails the connection.
            self._protocol.fail(1007, f"{e.reason} at position {e.start}")
            self._failed(1007)
            return False
        return True

    def _failed(self, code: int) -> None:
        """The protocol sent a close frame for the peer's fault: the peer has the grace
        to leave, and what it sends meanwhile is read and dropped."""
        self.closed = True
        self._close_deadline = trio.current_time() + self.link.limits.close_grace_s
        why = _WHY_FAILED.get(code, "the WebSocket failed")
        _log.info("closed the connection from %s: %s (closed with %d)", self.link.peer, why, code)

    async def finish(self, grace_s: float) -> None:
        """Reads and discards until the client is gone, until the close deadline (then cuts it).

        ``grace_s`` bounds the wait when the server sent no close frame here.
        """
        if not math.isfinite(self._close_deadline):
            self._close_deadline = trio.current_time() + grace_s
        with trio.move_on_at(self._close_deadline):
            try:
                await self.flush()  # a close frame whose flush the session's end cut short
                while not self.disconnected:
                    self._messages.clear()
                    await self._read()
            except Disconnected:
                return
        if self.disconnected:
            self.link.end()
        else:
            self.link.drop("the peer did not leave after its session ended")
