"""The Realtime WebSocket connection, as a client, on trio-websocket.

:func:`open_connection` owns one WebSocket and one nursery holding its
keepalive task. Events go out as JSON text frames (:func:`to_json` checks
them first) and come back parsed into typed server events. When the peer
closes or the line drops, the next ``send``/``receive`` raises
:class:`ConnectionClosed` with the close code and reason; iteration ends
quietly on a normal close.

API keys live only in request headers: never in the URL, a repr, a log line
or an error message.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeAlias, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import trio
import trio_websocket

from framework.errors import ConnectionClosed, HandshakeRefused, single_errors
from framework.protocol import ClientEvent, ServerEvent, parse_server_event, to_json

from ._direct import DirectStream, ShieldedStream

HOSTED_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
# An audio delta of a few seconds is several hundred kilobytes of base64, and
# conversation.item.retrieved carries a whole item's audio.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
RECEIVE_BYTES = 65536
"""The most one read of the socket takes. An audio delta of 100 ms is about
6.5 kB of JSON: trio-websocket's own 4 KiB would read it in two wakes."""
KEEPALIVE_INTERVAL_S = 20.0
KEEPALIVE_TIMEOUT_S = 10.0

_log = logging.getLogger("cantata.transport")

Framing: TypeAlias = Literal["trio-websocket", "websockets"]
"""What frames a connection's WebSocket (see :func:`open_connection`)."""


def resolve_url(url: str | None, model: str | None) -> str:
    """The WebSocket URL to dial, from a Realtime URL or a base URL.

    ``None`` is the hosted API. ``http(s)`` schemes become ``ws(s)``; a base
    URL such as ``ws://127.0.0.1:8765/v1`` gets ``/realtime`` appended; the
    model goes in the ``model`` query parameter unless the URL names one (or,
    Azure-style, a ``deployment``).
    """
    parts = urlsplit(url or HOSTED_URL)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL: {url!r} (expected ws://, wss://, http(s)://)")
    path = parts.path.rstrip("/")
    if not path.endswith("/realtime"):
        path += "/realtime"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "model" not in query and "deployment" not in query:
        query["model"] = model or DEFAULT_MODEL
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _is_azure(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.endswith((".openai.azure.com", ".cognitiveservices.azure.com"))


def _auth_headers(url: str, api_key: str | None) -> list[tuple[bytes, bytes]]:
    if not api_key:
        return []
    if _is_azure(url):
        return [(b"api-key", api_key.encode())]
    return [(b"authorization", b"Bearer " + api_key.encode())]


async def _tls_handshake(stream: trio.SSLStream[trio.SocketStream], host: str) -> None:
    """The TLS handshake; a failure is a :class:`ConnectionClosed` that says what to check."""
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as e:
        await trio.aclose_forcefully(stream)
        cause = e.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = f"the TLS certificate of {host} is not trusted ({cause.verify_message})"
        else:
            detail = getattr(cause, "reason", None) or cause or "the server closed the connection"
            reason = (
                f"the TLS handshake with {host} failed ({detail}); if the server speaks "
                "plain WebSocket, use ws:// instead of wss://"
            )
        raise ConnectionClosed(1006, reason) from None


def refusal(status: int, body: bytes | None) -> HandshakeRefused:
    """Our error for a refused handshake, with the server's message when it sent one."""
    message = ""
    if body:
        try:
            decoded = orjson.loads(body)
            message = str(decoded.get("error", {}).get("message", ""))
        except (ValueError, AttributeError):
            message = body[:200].decode("utf-8", "replace")
    return HandshakeRefused(status, message or f"HTTP {status}")


class RealtimeConnection(abc.ABC):
    """One open Realtime WebSocket (from :func:`open_connection`).

    The events are the same whichever framing carries them; a subclass moves
    the frames (``send_text``, ``receive_text``, ``aclose``, ``_ping``) on a
    stream that writes whole (see :mod:`._direct`).
    """

    def __init__(self, url: str, stream: trio.abc.Stream) -> None:
        self.url = url
        self._stream = stream
        self._closed: ConnectionClosed | None = None
        self.sent = 0
        self.received = 0

    def __repr__(self) -> str:
        return f"<RealtimeConnection {self.url} {'closed' if self._closed else 'open'}>"

    @property
    def closed(self) -> ConnectionClosed | None:
        """Why the connection ended, once it has."""
        return self._closed

    @abc.abstractmethod
    async def send_text(self, text: str) -> None:
        """Sends one already-serialized event, whole: a cancel never cuts a frame."""

    @abc.abstractmethod
    async def receive_text(self) -> str:
        """The next frame's text, unparsed."""

    @abc.abstractmethod
    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Closes the connection with a closing handshake (bounded by a timeout)."""

    @abc.abstractmethod
    async def _ping(self) -> None:
        """Sends a ping and returns when its pong is read.

        Raises:
            ConnectionClosed: the connection has ended.
        """

    async def _keepalive(self, interval: float, patience: float) -> None:
        """Pings every ``interval`` seconds; a pong missing after ``patience`` drops the line.

        Each ping runs in a task of its own, so that the patience also covers a
        ping that cannot even be written: a frame the server does not read holds
        the line, and waits for it whole. Dropping the line closes the stream
        under that frame too.
        """
        async with trio.open_nursery() as nursery:
            while self._closed is None:
                await trio.sleep(interval)
                answered = trio.Event()
                nursery.start_soon(self._ping_once, answered)
                with trio.move_on_after(patience):
                    await answered.wait()
                if answered.is_set():
                    continue  # a pong, or the end of the connection (then _closed is set)
                if self._closed is None:
                    _log.warning(
                        "no pong from %s in %.0f s; dropping the connection", self.url, patience
                    )
                    self._closed = ConnectionClosed(1006, "keepalive timed out")
                nursery.cancel_scope.cancel()
                await trio.aclose_forcefully(self._stream)
                return

    async def _ping_once(self, answered: trio.Event) -> None:
        with contextlib.suppress(ConnectionClosed):  # it has set _closed
            await self._ping()
        answered.set()

    async def send(self, event: ClientEvent | Mapping[str, Any]) -> None:
        """Sends one client event (a protocol object, or a plain dict sent as is).

        Raises:
            ValidationError: the event is not a valid client event (the path is named).
            ConnectionClosed: the connection has ended.
        """
        text = (
            orjson.dumps(event).decode()
            if isinstance(event, Mapping)
            else to_json(event)  # raises ValidationError naming the bad path
        )
        await self.send_text(text)

    async def receive(self) -> ServerEvent:
        """The next server event, parsed.

        Raises:
            ConnectionClosed: the connection has ended.
            ProtocolError: the frame is not a valid event (it carries the raw text).
        """
        return parse_server_event(await self.receive_text())

    def __aiter__(self) -> AsyncIterator[ServerEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ServerEvent]:
        while True:
            try:
                event = await self.receive()
            except ConnectionClosed as e:
                if e.normal:
                    return
                raise
            yield event


class _EagerSendLock:
    """trio-websocket's send lock, taken without a schedule point when it is free.

    trio's own lock makes every frame a pass of the run loop and a poll of the
    kernel, the largest fixed cost per audio chunk left after the framing. On
    a :class:`DirectStream` the stream yields every few writes itself, so a run
    of sends still lets other tasks in; a cancel is still seen here, before the
    frame's bytes are written.
    """

    def __init__(self) -> None:
        self._lock = trio.StrictFIFOLock()

    async def __aenter__(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()


class _TrioWebSocketConnection(RealtimeConnection):
    """The default framing: trio-websocket (wsproto), with its own reader task."""

    def __init__(
        self, ws: trio_websocket.WebSocketConnection, stream: trio.abc.Stream, url: str
    ) -> None:
        super().__init__(url, stream)
        self._ws = ws
        # trio-websocket writes every frame under this lock, made once per
        # connection. A release that names it otherwise keeps trio's lock and its
        # cost; over TLS the stream yields per write anyway.
        lock = getattr(ws, "_stream_lock", None)
        free = isinstance(lock, trio.StrictFIFOLock) and not lock.locked()
        if free and isinstance(stream, DirectStream):
            ws._stream_lock = _EagerSendLock()  # type: ignore[assignment]

    def _ended(self, error: trio_websocket.ConnectionClosed) -> ConnectionClosed:
        if self._closed is None:
            reason = error.reason
            if reason is None:
                self._closed = ConnectionClosed(1006, "the connection dropped")
            else:
                self._closed = ConnectionClosed(reason.code, reason.reason or reason.name)
        return self._closed

    async def send_text(self, text: str) -> None:
        if self._closed is not None:
            raise self._closed
        try:
            # A cancel is seen at trio-websocket's lock, before any byte is written
            # (it makes frames without compression, so a frame made and not sent
            # changes nothing); the stream writes the rest whole.
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed as e:
            raise self._ended(e) from None
        self.sent += 1

    async def receive_text(self) -> str:
        if self._closed is not None:
            raise self._closed
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as e:
            raise self._ended(e) from None
        self.received += 1
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            self._closed = ConnectionClosed(code, reason or "closed by the client")
        await self._ws.aclose(code, reason)

    async def _ping(self) -> None:
        try:
            await self._ws.ping()
        except trio_websocket.ConnectionClosed as e:
            raise self._ended(e) from None


@asynccontextmanager
async def open_connection(
    url: str | None = None,
    *,
    api_key: str | None = None,
    model: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    connect_timeout: float = 10.0,
    keepalive_interval: float | None = KEEPALIVE_INTERVAL_S,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT_S,
    framing: Framing = "trio-websocket",
) -> AsyncIterator[RealtimeConnection]:
    """Opens a Realtime WebSocket for the duration of the block.

    Args:
        url: a Realtime or base URL (``None``: the hosted API). The local
            engine is ``ws://127.0.0.1:8765/v1/realtime``.
        api_key: sent as ``Authorization: Bearer`` (``api-key`` for Azure);
            for the hosted API it defaults to ``OPENAI_API_KEY``.
        model: the ``model`` query parameter.
        headers: extra request headers.
        connect_timeout: seconds allowed for TCP, TLS and the handshake.
        keepalive_interval: seconds between pings (``None``: no pings).
        keepalive_timeout: seconds a ping may wait for its pong (and to be
            sent, behind a write the server does not read) before the line is
            dropped.
        framing: what frames the WebSocket: ``"trio-websocket"`` (the default),
            or ``"websockets"``, the ``websockets`` package's Sans-I/O protocol
            (C masking, frames read in the reader's own task, no task between).
            Its pongs are read by whoever reads events, so keepalive needs a
            reader (a session always has one).

    Raises:
        HandshakeRefused: the server refused the connection.
        ConnectionClosed: the server could not be reached, or the connection
            ended while the block was waiting on it.
        ValueError: no key for the hosted API, or ``url`` is not a WebSocket URL.
    """
    if url is None and api_key is None:
        api_key = os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ValueError(
                "connecting to the hosted API needs a key: set OPENAI_API_KEY or pass api_key "
                "(or pass url= for the local engine)"
            )
    target = resolve_url(url, model)
    extra = _auth_headers(target, api_key) + [(k.encode(), v.encode()) for k, v in headers]
    parts = urlsplit(target)
    secure = parts.scheme == "wss"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if secure else 80)
    host_header = host if port in (80, 443) else f"{host}:{port}"
    resource = f"{parts.path}?{parts.query}" if parts.query else parts.path
    # The TCP stream is ours, not trio-websocket's: on a refused handshake its
    # own connect helpers leave the socket open, and a long-lived process
    # retrying with a bad key would leak one per attempt.
    try:
        with trio.fail_after(connect_timeout):
            stream: DirectStream | ShieldedStream
            if secure:
                tls = await trio.open_ssl_over_tcp_stream(
                    host, port, ssl_context=ssl.create_default_context(), https_compatible=True
                )
                # Handshaken here: inside trio-websocket a failed TLS handshake
                # would only show as a WebSocket handshake that never comes.
                await _tls_handshake(tls, host_header)
                stream = ShieldedStream(tls)
            else:
                stream = DirectStream(await trio.open_tcp_stream(host, port))
    except trio.TooSlowError:
        raise ConnectionClosed(
            1006, f"no answer from {host_header} in {connect_timeout:g} s"
        ) from None
    except OSError as e:
        raise ConnectionClosed(
            1006, f"cannot connect to {host_header}: {e.strerror or e}"
        ) from None
    try:
        with single_errors():
            if framing == "websockets":
                from ._sansio import open_sansio  # only when asked for: it builds on this module

                opened = open_sansio(stream, target, host_header, extra, connect_timeout)
            else:
                opened = _open_trio_websocket(
                    stream, target, host_header, resource, extra, connect_timeout
                )
            async with opened as connection, trio.open_nursery() as nursery:
                if keepalive_interval:
                    nursery.start_soon(connection._keepalive, keepalive_interval, keepalive_timeout)
                try:
                    yield connection
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


@asynccontextmanager
async def _open_trio_websocket(
    stream: DirectStream | ShieldedStream,
    target: str,
    host_header: str,
    resource: str,
    extra: list[tuple[bytes, bytes]],
    connect_timeout: float,
) -> AsyncIterator[RealtimeConnection]:
    """The WebSocket handshake and the connection on trio-websocket."""
    try:
        with single_errors():
            async with trio.open_nursery() as nursery:
                try:
                    with trio.fail_after(connect_timeout):
                        ws = await trio_websocket.wrap_client_stream(
                            nursery,
                            # Any trio stream will do; the annotation names only the
                            # two kinds trio-websocket opens itself.
                            cast(trio.SocketStream, stream),
                            host_header,
                            resource,
                            extra_headers=extra,
                            message_queue_size=256,
                            max_message_size=MAX_MESSAGE_BYTES,
                            receive_buffer_size=RECEIVE_BYTES,
                        )
                except trio.TooSlowError:
                    raise ConnectionClosed(
                        1006, f"no handshake from {host_header} in {connect_timeout:g} s"
                    ) from None
                try:
                    yield _TrioWebSocketConnection(ws, stream, target)
                finally:
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await ws.aclose()
                    nursery.cancel_scope.cancel()
    except trio_websocket.ConnectionRejected as e:
        raise refusal(e.status_code, e.body) from None
