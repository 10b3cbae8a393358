"""The engine's TCP face: it accepts connections and keeps each one in its bounds.

hypercorn speaks HTTP/1.1 and WebSocket for the engine, one connection at a
time, but its trio worker runs every connection in the server's own nursery:
one exception escaping one connection ends the server, and nothing watches a
peer that stops reading. So the engine runs its own accept loop
(:func:`serve_links`) and hands hypercorn each connection wrapped in a
:class:`Link`, in a task and a cancel scope of its own:

* **A guard.** An exception from a connection's task (hypercorn's or the
  engine's) is logged as one line (the traceback at debug level) and ends that
  connection only. hypercorn 0.18 has such a bug: after it refuses an
  oversized message with close code 1009 it keeps the message's buffer, and
  the next frame of the other kind (binary after text) raises ``TypeError``.
* **Poisoned buffers are never fed.** When the server's 1009 close goes out,
  the link reads nothing more: the peer's later frames never reach that buffer.
* **Slow and vanished peers.** A write the peer does not take within
  ``peer_timeout_s`` (it stopped reading), a connection silent for longer than
  the WebSocket ping interval plus ``peer_timeout_s`` (no pong), and a reset
  connection drop the link: its scope is cancelled, which ends hypercorn's
  tasks and the session with it (hypercorn's own writes are shielded from
  cancellation, so the deadline sits inside them, in :meth:`Link.send_all`).
* **A closing handshake with a deadline.** Once the server has sent a close
  frame the peer has ``close_grace_s`` to answer it before the link is cut.
* **HTTP/1.1 only.** A connection that turns to HTTP/2 (prior knowledge or an
  ``h2c`` upgrade) is dropped: the Realtime API's WebSocket is HTTP/1.1, and an
  HTTP/2 connection would multiply every per-connection bound by its streams.

**WebSockets leave hypercorn.** The first request on a connection is read
here; when it asks for a WebSocket, the connection is served by
:mod:`._websocket` (the ``websockets`` package's protocol, driven inline by
the session) with the same bounds, and hypercorn never sees it. Everything
else, and any later request on a kept-alive connection, is hypercorn's, with
the bytes already read handed back to it first.

What one connection can hold, inbound: hypercorn's message buffer (at most
``max_message_bytes``), its copy handed to the engine, and the ``app_queue``
messages queued for the engine; the kernel's socket buffers push back on the
peer beyond that.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

from ._websocket import WebSocketOpening

_log = logging.getLogger("cantata.engine")

_H2_PREFACE = b"PRI * HTTP/2.0"
_SWITCHING = b"HTTP/1.1 101 "
_CLOSE_FRAME = 0x88  # FIN + opcode 8: a server frame is sent whole, unmasked
_TOO_BIG = (1009).to_bytes(2, "big")
_HEAD_END = b"\r\n\r\n"
MAX_HEAD_BYTES = 16 * 1024
"""The most a request's head may take before hypercorn alone handles it (its own limit)."""

WebSocketHandler = Callable[[WebSocketOpening], Awaitable[None]]
"""Serves a WebSocket whose handshake has been read: accepts it or denies it."""
HandOff = Callable[[trio.SocketStream, bytes], Awaitable[bool]]
"""Offered each WebSocket request's connection and head: True when it took the
connection (another process serves it; see :mod:`._workers`)."""

_current: contextvars.ContextVar[Link | None] = contextvars.ContextVar(
    "cantata_engine_link", default=None
)


def current_link() -> Link | None:
    """The link of the connection the calling task serves (``None`` outside one)."""
    return _current.get()


@attrs.frozen(kw_only=True)
class LinkLimits:
    """How long the engine waits on a peer.

    Args:
        peer_timeout_s: a write the peer has not taken after this long, or
            this long past a ping without a byte back, drops the connection.
        ping_interval_s: WebSocket pings this often (``None``: no pings, and
            then silence is never a reason to drop).
        close_grace_s: after the server's close frame, how long the peer has
            to finish the closing handshake.
    """

    peer_timeout_s: float = 20.0
    ping_interval_s: float | None = 20.0
    close_grace_s: float = 5.0

    @property
    def silence_s(self) -> float:
        """How long a peer may send nothing at all (pongs included)."""
        if self.ping_interval_s is None:
            return math.inf
        return self.ping_interval_s + self.peer_timeout_s


class Link:
    """One client connection: its byte stream, watched, and the scope that ends it.

    hypercorn reads and writes through it as through the stream itself (any
    other attribute, such as TLS's ``do_handshake``, is the stream's).
    """

    def __init__(self, stream: trio.abc.Stream, peer: str, limits: LinkLimits) -> None:
        self.stream = stream
        self.peer = peer
        self.limits = limits
        self.scope = trio.CancelScope()
        self.dropped: str | None = None
        """Why the engine cut this connection, once it has."""
        self._first = True
        self._replay = b""  # bytes read before hypercorn took over, handed to it first
        self._websocket = False
        self._close_deadline = math.inf
        self._poisoned = False
        # trio refuses a send_eof while a send_all is under way and the other way
        # round; hypercorn's own lock covers its writes, not the EOF it sends on close.
        self._send_lock = trio.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def drop(self, reason: str) -> None:
        """Cuts the connection: every task serving it is cancelled."""
        if self.dropped is None:
            self.dropped = reason
            _log.info("dropped the connection from %s: %s", self.peer, reason)
        self.scope.cancel()

    def end(self) -> None:
        """Ends a connection whose work is done (its WebSocket closed both ways).

        hypercorn would otherwise keep it open until its ping task next wakes.
        """
        self.scope.cancel()

    def _gone(self, reason: str) -> trio.BrokenResourceError:
        self.drop(reason)
        return trio.BrokenResourceError(reason)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        head = bytes(data[:16])
        if not self._websocket and head.startswith(_SWITCHING):
            if b"\r\nupgrade: h2c" in bytes(data).lower():
                raise self._gone("it asked for HTTP/2, which the engine does not serve")
            self._websocket = True
        elif self._websocket and head[:1] == bytes([_CLOSE_FRAME]):
            self._close_deadline = min(
                self._close_deadline, trio.current_time() + self.limits.close_grace_s
            )
            # hypercorn sends 1009 when a message outgrew its buffer, and keeps
            # that buffer: nothing the peer sends later may reach it.
            self._poisoned = head[2:4] == _TOO_BIG
        await self.write(data)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Writes all of ``data``, or drops the link if the peer takes none of it in time."""
        timeout = self.limits.peer_timeout_s
        with trio.move_on_after(timeout) as timer:
            async with self._send_lock:
                try:
                    await self.stream.send_all(data)
                except trio.BrokenResourceError:
                    raise self._gone("the peer reset the connection") from None
        if timer.cancelled_caught:
            raise self._gone(f"the peer took nothing written to it for {timeout:g} s")

    async def read(self, max_bytes: int | None = None) -> bytes | bytearray:
        """The next bytes from the peer (``b""`` at its end); the caller keeps the deadlines."""
        if self._replay:
            data, self._replay = self._replay, b""
            return data
        try:
            return await self.stream.receive_some(max_bytes)
        except trio.BrokenResourceError:
            raise self._gone("the peer reset the connection") from None

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._poisoned:
            raise self._gone("a message was larger than the engine accepts (closed with 1009)")
        silence = self.limits.silence_s
        deadline = min(trio.current_time() + silence, self._close_deadline)
        with trio.move_on_at(deadline) as timer:
            data = await self.read(max_bytes)
        if timer.cancelled_caught:
            if deadline == self._close_deadline:
                raise self._gone("the peer did not finish the closing handshake")
            raise self._gone(f"the peer sent nothing, not even a pong, for {silence:g} s")
        if self._first:
            self._first = False
            if bytes(data[: len(_H2_PREFACE)]) == _H2_PREFACE:
                raise self._gone("it spoke HTTP/2, which the engine does not serve")
        return data

    async def read_head(self) -> bytes:
        """Reads the first request's head (and whatever came with it), to be handed on.

        Stops at the blank line that ends the head, at :data:`MAX_HEAD_BYTES`,
        when the peer stops sending, or at once when the first byte cannot
        begin an HTTP request (hypercorn then answers it). A TLS client
        dialling the plain port sends its hello and waits: answered at once, it
        reports the mismatch instead of waiting for its timeout.
        """
        head = b""
        with trio.move_on_after(self.limits.peer_timeout_s):
            while _HEAD_END not in head and len(head) < MAX_HEAD_BYTES:
                data = await self.receive_some()
                if not data:
                    break
                head += data
                if not head[:1].isupper():  # every method is an upper-case token
                    break
        return head

    def hand_back(self, data: bytes) -> None:
        """Bytes already read, for the next reader (hypercorn) to get first."""
        self._replay = data

    async def write_eof(self) -> None:
        """Half-closes the connection where the stream can (TLS cannot: it closes with the link)."""
        if hasattr(self.stream, "send_eof"):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await self.send_eof()

    async def send_eof(self) -> None:
        # hypercorn closes a connection while one of its tasks may still be writing
        # to it. The EOF only precedes the close, so it is skipped then.
        if self._send_lock.locked():
            return
        send_eof: Callable[[], Awaitable[None]] = self.stream.send_eof  # type: ignore[attr-defined]
        async with self._send_lock:
            await send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def _serve_link(
    app: Any,
    config: Config,
    context: WorkerContext,
    limits: LinkLimits,
    on_link: Callable[[Link, bool], None],
    on_websocket: WebSocketHandler | None,
    hand_off: HandOff | None,
    stream: trio.abc.Stream,
    head: bytes | None = None,
) -> None:
    """Runs one connection through hypercorn, guarded (see the module docstring).

    ``head`` is the first request's head when another process has read it.
    """
    try:
        socket = stream.transport_stream.socket  # type: ignore[attr-defined]
    except AttributeError:
        socket = stream.socket  # type: ignore[attr-defined]
    try:
        peer = repr_socket_addr(socket.family, socket.getpeername())
    except OSError:
        peer = "a peer already gone"
    link = Link(stream, peer, limits)
    _current.set(link)
    on_link(link, True)
    try:
        with link.scope:
            if on_websocket is not None:
                try:
                    head = head if head is not None else await link.read_head()
                except trio.BrokenResourceError:
                    return  # the link was dropped, and said why
                if _asks_for_websocket(head):
                    if (
                        hand_off is not None
                        and isinstance(stream, trio.SocketStream)
                        and await hand_off(stream, head)
                    ):
                        return
                    opening = await WebSocketOpening.read(
                        link, head, config.websocket_max_message_size
                    )
                    if opening is not None:
                        await opening.serve(on_websocket)
                    return
                link.hand_back(head)
            await TCPServer(app, config, context, ConnectionState({}), link)  # type: ignore[arg-type]
    except Exception as error:
        _log.warning(
            "closed the connection from %s after an error serving it: %s",
            peer,
            _one_line(error),
        )
        _log.debug("the error serving %s", peer, exc_info=True)
    finally:
        on_link(link, False)
        await trio.aclose_forcefully(stream)


def _asks_for_websocket(head: bytes) -> bool:
    """Whether a whole request head is a GET that asks to upgrade to a WebSocket."""
    if _HEAD_END not in head or not head.startswith(b"GET "):
        return False
    for line in head.split(_HEAD_END, 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def _one_line(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    return text if len(text) <= 200 else text[:199] + "…"


async def serve_links(
    app: Any,
    config: Config,
    limits: LinkLimits,
    *,
    on_link: Callable[[Link, bool], None] = lambda link, opened: None,
    on_websocket: WebSocketHandler | None = None,
    hand_off: HandOff | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves an ASGI app on ``config.bind`` until cancelled, one guarded task per connection.

    Reports the bound base URLs (``http://`` or ``https://``) once listening.
    ``on_link`` is told of each connection as it opens and closes. With
    ``on_websocket``, a connection whose first request asks for a WebSocket is
    handed to it instead of to the app (see the module docstring), unless
    ``hand_off`` takes the connection first.

    Raises:
        OSError: an address cannot be bound, or a TLS file cannot be read.
        ssl.SSLError: the TLS files are not a certificate and its key.
    """
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    sockets = config.create_sockets()
    context: ssl.SSLContext | None = config.create_ssl_context()
    listeners: list[trio.abc.Listener[Any]] = []
    binds: list[str] = []
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.listen(config.backlog)
        listener: trio.abc.Listener[Any] = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        scheme = "http"
        if context is not None:
            listener = trio.SSLListener(listener, context, https_compatible=True)
            scheme = "https"
        listeners.append(listener)
        binds.append(f"{scheme}://{repr_socket_addr(sock.family, sock.getsockname())}")
    worker = WorkerContext(None)
    handler = partial(_serve_link, wrapped, config, worker, limits, on_link, on_websocket, hand_off)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(trio.serve_listeners, handler, listeners))
        task_status.started(binds)


async def serve_handed(
    app: Any,
    config: Config,
    limits: LinkLimits,
    connections: trio.abc.ReceiveChannel[tuple[trio.SocketStream, bytes]],
    *,
    on_link: Callable[[Link, bool], None] = lambda link, opened: None,
    on_websocket: WebSocketHandler,
) -> None:
    """Serves connections another process accepted (each with its first head), as
    :func:`serve_links` serves its own, until ``connections`` ends."""
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    worker = WorkerContext(None)
    async with trio.open_nursery() as nursery:
        async for stream, head in connections:
            nursery.start_soon(
                partial(
                    _serve_link,
                    wrapped,
                    config,
                    worker,
                    limits,
                    on_link,
                    on_websocket,
                    None,
                    stream,
                    head,
                )
            )
        nursery.cancel_scope.cancel()  # the primary is gone: so is the server
