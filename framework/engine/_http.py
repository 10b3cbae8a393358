"""What every server on the guarded accept loop shares: its ASGI plumbing.

The engine, the phone server, the playground and every fleet role serve
through :func:`~._network.serve_links` with hypercorn underneath; each needs
the same hypercorn configuration, the same answer to ASGI's lifespan
messages, and (the plain HTTP ones) the same whole-body response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.config import Config

from ._network import LinkLimits

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def server_config(
    host: str,
    port: int,
    limits: LinkLimits,
    log: logging.Logger,
    *,
    max_message_bytes: int | None = None,
    app_queue: int | None = None,
) -> Config:
    """hypercorn's configuration for a server on the guarded accept loop.

    Args:
        host: the address to bind.
        port: the port (0: any free one).
        limits: the links' bounds; their ping interval is hypercorn's too.
        log: where hypercorn's errors go (no access log).
        max_message_bytes: the largest WebSocket message (``None``: hypercorn's).
        app_queue: WebSocket messages queued for the app (``None``: hypercorn's).
    """
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = log
    config.websocket_ping_interval = limits.ping_interval_s
    if max_message_bytes is not None:
        config.websocket_max_message_size = max_message_bytes
    if app_queue is not None:
        config.max_app_queue_size = app_queue
    return config


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Answers ASGI's lifespan messages: nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send: Send, status: int, content_type: str, body: bytes) -> None:
    """Sends one whole HTTP response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
