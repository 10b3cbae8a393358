"""The engine's network face: an ASGI app served by hypercorn's trio worker.

One port serves the Realtime WebSocket endpoint (``/v1/realtime``) and plain
HTTP (a health check today; the REST endpoints of client secrets and calls
later), as the hosted API does. Each accepted WebSocket becomes one
:class:`EngineSession`, run in the connection's own task; it ends with the
connection and the engine forgets it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import attrs
import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ._brain import Brain, Rules, ScriptedBrain
from ._config import DEFAULT_MODEL
from ._session import Disconnected, EngineSession, SessionOptions
from ._speech import NoTranscriber, Synthesizer, ToneSynthesizer, Transcriber

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_log = logging.getLogger("cantata.engine")


def _error_body(message: str, *, code: str | None, type: str = "invalid_request_error") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": None, "code": code}})


def _mask(key: str) -> str:
    return f"{key[:3]}...{key[-4:]}" if len(key) > 8 else "***"


class _AsgiConnection:
    """A session's :class:`Connection` over the ASGI WebSocket messages."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.closed = False

    async def receive(self) -> str | bytes:
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    return text  # type: ignore[no-any-return]
                return message.get("bytes") or b""
            if kind == "websocket.disconnect":
                self.closed = True
                raise Disconnected

    async def send(self, text: str) -> None:
        if self.closed:
            raise Disconnected
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def abort(self) -> None:
        # ASGI gives no access to the socket; an abnormal close (1011) is the
        # closest a server can come to dropping the line.
        await self.close(1011, "connection dropped by the engine's drop_after_events knob")


@attrs.define(kw_only=True, eq=False)
class Engine:
    """The local Realtime engine: its plug-ins, its knobs and its live sessions.

    Args (all keyword-only, all optional):
        brain: decides responses; default a :class:`ScriptedBrain` over
            ``rules`` (or the built-in rules).
        rules: rules for the default scripted brain.
        transcriber, synthesizer: speech plug-ins (default: none, and a tone).
        api_key: when set, clients must present it (``Authorization: Bearer``).
        model: the model reported when a client names none.
        max_session_s: test knob; sessions expire after this many seconds.
        latency_ms: test knob; added before every event the engine sends.
        drop_after_events: test knob; the connection is dropped after this many events.
    """

    rules: Rules | None = None
    brain: Brain | None = None
    transcriber: Transcriber = attrs.field(factory=NoTranscriber)
    synthesizer: Synthesizer = attrs.field(factory=ToneSynthesizer)
    api_key: str | None = attrs.field(default=None, repr=False)
    model: str = DEFAULT_MODEL
    max_session_s: float | None = None
    latency_ms: int = 0
    drop_after_events: int | None = None
    sessions: set[EngineSession] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        if self.brain is None:
            self.brain = ScriptedBrain(self.rules) if self.rules is not None else ScriptedBrain()

    @property
    def options(self) -> SessionOptions:
        assert self.brain is not None
        return SessionOptions(
            brain=self.brain,
            transcriber=self.transcriber,
            synthesizer=self.synthesizer,
            model=self.model,
            max_session_s=self.max_session_s,
            latency_ms=self.latency_ms,
            drop_after_events=self.drop_after_events,
        )

    def banner(self, url: str) -> str:
        """What the engine tells its operator when it starts."""
        assert self.brain is not None
        lines = [
            f"Cantata local Realtime engine on {url}",
            f"  brain:       {self.brain.name} - {self.brain.description}",
            f"  transcriber: {self.transcriber.name}",
            f"  synthesizer: {self.synthesizer.name}",
            "  auth:        "
            + ("API key required" if self.api_key else "none (any key is accepted)"),
        ]
        return "\n".join(lines)

    # --- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/")
        if path in ("", "/health", "/v1/health"):
            status, body = 200, orjson.dumps({"status": "ok", "sessions": len(self.sessions)})
        else:
            status, body = (
                404,
                _error_body(f"Invalid URL ({scope['method']} {scope['path']})", code="not_found"),
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _deny(self, send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})

    def _presented_key(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name.lower() == b"authorization":
                text: str = value.decode("latin-1").strip()
                return text[7:].strip() if text.lower().startswith("bearer ") else text
        # Browsers cannot set headers on a WebSocket; the hosted API takes the key
        # as a subprotocol instead.
        for protocol in scope.get("subprotocols", []):
            if protocol.startswith("openai-insecure-api-key."):
                return str(protocol.split(".", 1)[1])
        return None

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        if scope["path"].rstrip("/") != "/v1/realtime":
            await self._deny(
                send, 404, _error_body(f"Invalid URL ({scope['path']})", code="not_found")
            )
            return
        if self.api_key is not None:
            key = self._presented_key(scope)
            if key != self.api_key:
                message = (
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    if not key
                    else f"Incorrect API key provided: {_mask(key)}."
                )
                await self._deny(send, 401, _error_body(message, code="invalid_api_key"))
                return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "call_id" in query:
            await self._deny(
                send,
                404,
                _error_body(f"Call not found: {query['call_id'][0]}", code="call_not_found"),
            )
            return
        if query.get("intent", [""])[0] == "transcription":
            await self._deny(
                send,
                400,
                _error_body(
                    "Transcription sessions are not supported by this version of the local engine.",
                    code="unsupported_intent",
                ),
            )
            return
        subprotocol = "realtime" if "realtime" in scope.get("subprotocols", []) else None
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        connection = _AsgiConnection(receive, send)
        for name, value in scope["headers"]:
            if name.lower() == b"openai-beta" and b"realtime=v1" in value:
                # The hosted API turned the beta protocol off and says so at once.
                await connection.close(4000, "beta_api_shape_disabled")
                return
        model = query.get("model", [None])[0]
        session = EngineSession(self.options, connection, model=model)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
        await connection.close(1000, "")


def _hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = _log
    config.websocket_ping_interval = None
    # The engine answers oversized events itself with an error event; hypercorn's
    # own limit (which closes the socket) only guards against abuse.
    config.websocket_max_message_size = 64 * 1024 * 1024
    config.graceful_timeout = 1.0
    return config


async def serve_engine(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves the engine until cancelled; reports its WebSocket URL when listening."""
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve(
                engine,  # type: ignore[arg-type]
                _hypercorn_config(host, port),
                task_status=task_status,
                mode="asgi",
            )
        )
        http_url = binds[0]
        task_status.started(http_url.replace("http://", "ws://", 1) + "/v1/realtime")
        await trio.sleep(math.inf)


@attrs.frozen
class RunningEngine:
    """An engine listening on loopback (from :func:`open_engine`)."""

    engine: Engine
    url: str
    """The WebSocket URL of the Realtime endpoint, ``ws://host:port/v1/realtime``."""

    @property
    def http_url(self) -> str:
        """The base URL of the REST endpoints, ``http://host:port/v1``."""
        return self.url.replace("ws://", "http://", 1).removesuffix("/realtime")


@asynccontextmanager
async def open_engine(
    engine: Engine | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEngine]:
    """Runs an engine for the duration of the block (port 0: any free port)."""
    engine = engine or Engine()
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(
            lambda task_status: serve_engine(engine, host=host, port=port, task_status=task_status)
        )
        try:
            yield RunningEngine(engine, url)
        finally:
            nursery.cancel_scope.cancel()
