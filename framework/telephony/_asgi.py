"""The ASGI plumbing of the phone endpoint: request bodies, headers, a WebSocket.

Hypercorn hands the endpoint ASGI messages; these helpers read a bounded
request body, look up a header, and give a WebSocket the text-frame interface
the stream code speaks (:class:`AsgiSocket`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from framework.engine import Receive, Scope, Send

Route = Callable[[Any, Scope, bytes], Awaitable[tuple[str, str]]]
"""An HTTP endpoint: given its app, the scope and the body, its content type and text."""

MAX_BODY_BYTES = 64 * 1024
"""The largest request body read (Twilio's forms and OpenAI's events are small)."""


class HttpRefusal(Exception):
    """An HTTP answer other than 200: its status and one line of text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class AsgiSocket:
    """A stream's WebSocket over the ASGI messages (text frames)."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.closed = False
        self.gone = False

    async def receive_text(self) -> str:
        while not self.gone:
            message = await self._receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                return str(text)
            if message["type"] == "websocket.disconnect":
                self.gone = True
        raise trio.EndOfChannel

    async def send_text(self, text: str) -> None:
        if self.closed or self.gone:
            raise trio.BrokenResourceError("the stream is closed")
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed and not self.gone:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def finish(self, grace_s: float = 5.0) -> None:
        """Reads until the peer has gone, for at most ``grace_s``: hypercorn waits for
        the application to take the disconnect before it lets the connection go."""
        with trio.move_on_after(grace_s):
            while not self.gone:
                message = await self._receive()
                self.gone = message["type"] == "websocket.disconnect"


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HttpRefusal(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def route_request(
    app: object, routes: Mapping[tuple[str, str], Route], scope: Scope, receive: Receive
) -> tuple[int, str, bytes]:
    """Reads the request and runs its route; the status, content type and body to send.

    A route answers 200 with what it returns, or raises :class:`HttpRefusal`
    for another status; a path no route serves is 404.
    """
    route = (scope["method"], scope["path"].rstrip("/"))
    try:
        body = await read_body(receive)
        handler = routes.get(route)
        if handler is None:
            raise HttpRefusal(404, f"no such endpoint: {route[0]} {route[1]}")
        content_type, text = await handler(app, scope, body)
        return 200, content_type, text.encode()
    except HttpRefusal as e:
        return e.status, "text/plain", e.text.encode()
