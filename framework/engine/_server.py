"""The engine's network face: an ASGI app served by hypercorn's trio worker.

One port serves the Realtime WebSocket endpoint (``/v1/realtime``) and plain
HTTP (a health check, and the REST endpoints of client secrets and calls in
:mod:`._rest`), as the hosted API does. Each accepted WebSocket becomes one
:class:`EngineSession`, run in the connection's own task; it ends with the
connection and the engine forgets it. A WebSocket authenticated with a client
secret starts from the secret's configuration; one opened with ``?call_id=``
attaches to an accepted call, starts from the configuration given at accept,
and is closed with :data:`HANGUP_CLOSE_CODE` when the call is hung up.

Client secrets and calls are asked of :mod:`._registry`, which also knows those
of the engines sharing a Redis, when the engine is served with one.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Protocol
from urllib.parse import parse_qs

import attrs
import orjson
import trio
from hypercorn.config import Config

from ._brain import Brain, Rules, ScriptedBrain
from ._config import DEFAULT_MODEL
from ._hosted_mcp import HostedMcpClient
from ._http import Receive, Scope, Send, answer_lifespan, server_config
from ._network import Link, LinkLimits, current_link, serve_handed, serve_links
from ._operator import PREFIX as OPERATOR_PREFIX
from ._operator import dtmf_on_call, operate
from ._registry import Registry
from ._rest import (
    HANGUP_CLOSE_CODE,
    HANGUP_CLOSE_REASON,
    MAX_BODY_BYTES,
    Call,
    ClientSecret,
    Clock,
    HttpError,
    HttpResponse,
    RestState,
    error_body,
)
from ._session import Connection, Disconnected, EngineSession, SessionOptions
from ._shared import SharedState
from ._speech import NoTranscriber, Synthesizer, ToneSynthesizer, Transcriber
from ._vad import ClassifierFactory, EnergyClassifier
from ._workers import (
    HELPER_FD,
    HELPER_URL,
    Helpers,
    receive_handed,
    settle_collector,
    start_helpers,
)

_log = logging.getLogger("cantata.engine")
_CALL_ACTION = re.compile(r"^/v1/realtime/calls/([^/]+)/(accept|reject|hangup|refer)$")


class _AsgiConnection:
    """A session's :class:`Connection` over the ASGI WebSocket messages."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.closed = False
        """The server sent its close frame, or the client went away."""
        self.disconnected = False
        """The client went away (or finished the closing handshake)."""

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
                self.closed = self.disconnected = True
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

    async def finish(self, grace_s: float) -> None:
        """Reads and discards until the client is gone, for at most ``grace_s`` (then cuts it).

        hypercorn hands the client's frames, and finally its departure, to a
        queue only the application reads; an application that stopped reading
        would leave hypercorn waiting on that queue with the connection open.
        """
        with trio.move_on_after(grace_s):
            while not self.disconnected:
                message = await self._receive()
                self.disconnected = message["type"] == "websocket.disconnect"
        link = current_link()
        if link is None:
            return
        if self.disconnected:
            link.end()
        else:
            link.drop("the peer did not leave after its session ended")


class Socket(Connection, Protocol):
    """A session's connection as the server holds it."""

    async def finish(self, grace_s: float) -> None:
        """After the session: waits (at most ``grace_s``) for the client to leave, then cuts it."""
        ...


class Opening(Protocol):
    """A WebSocket handshake to answer: served by hypercorn (ASGI) or by :mod:`._websocket`."""

    @property
    def scope(self) -> Scope:
        """The request as an ASGI scope: path, query string, headers, subprotocols."""
        ...

    async def deny(self, status: int, body: bytes) -> None:
        """Refuses the handshake with an HTTP status and a JSON body."""
        ...

    async def accept(self, subprotocol: str | None) -> Socket:
        """Completes the handshake; the open connection."""
        ...


@attrs.define
class _AsgiOpening:
    """A handshake that came through hypercorn, as ASGI messages."""

    scope: Scope
    _receive: Receive
    _send: Send

    async def deny(self, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json")]
        await self._send(
            {"type": "websocket.http.response.start", "status": status, "headers": headers}
        )
        await self._send({"type": "websocket.http.response.body", "body": body})

    async def accept(self, subprotocol: str | None) -> _AsgiConnection:
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})
        return _AsgiConnection(self._receive, self._send)


@attrs.define(kw_only=True, eq=False)
class Engine:
    """The local Realtime engine: its plug-ins, its knobs and its live sessions.

    Args (all keyword-only, all optional):
        brain: decides responses; default a :class:`ScriptedBrain` over
            ``rules`` (or the built-in rules).
        rules: rules for the default scripted brain.
        transcriber, synthesizer: speech plug-ins (default: none, and a tone).
        vad: builds the VAD's frame classifier for each session input, given
            its rate (default: energy; ``plugins.speech.SileroVad`` is a model).
        api_key: when set, clients must present it (``Authorization: Bearer``);
            WebSockets also take the unexpired client secrets the engine minted.
        model: the model reported when a client names none.
        clock: wall time in epoch seconds, for client-secret expiry (tests pass a fake).
        max_session_s: how long a session may last, in seconds (default
            :data:`MAX_SESSION_S`, the hosted API's 60 minutes; ``math.inf``: no limit).
        latency_ms: test knob; added before every event the engine sends.
        drop_after_events: test knob; the connection is dropped after this many events.
        refuse_connections_s: test knob; WebSocket handshakes are refused (HTTP 503)
            for this long after the engine starts (see :meth:`refuse`).
        mcp_client: runs hosted MCP (``type: "mcp"``) tools; the engine never
            looks one up itself (``cantata serve`` and ``framework.testing`` inject
            the installed one); without it every hosted MCP listing fails and says so.
        links: how long the engine waits on a slow or silent peer, and pings
            it (see :class:`LinkLimits`).
        webhook_url: where a call rung through the operator interface is
            announced, as a signed ``realtime.call.incoming`` webhook.
        webhook_secret: the Standard Webhooks secret that signs it (``whsec_...``);
            required with ``webhook_url``.
    """

    rules: Rules | None = None
    brain: Brain | None = None
    transcriber: Transcriber = attrs.field(factory=NoTranscriber)
    synthesizer: Synthesizer = attrs.field(factory=ToneSynthesizer)
    vad: ClassifierFactory = EnergyClassifier
    api_key: str | None = attrs.field(default=None, repr=False)
    model: str = DEFAULT_MODEL
    max_session_s: float | None = None
    latency_ms: int = 0
    drop_after_events: int | None = None
    refuse_connections_s: float = 0.0
    mcp_client: HostedMcpClient | None = None
    clock: Clock = time.time
    links: LinkLimits = attrs.field(factory=LinkLimits)
    webhook_url: str | None = None
    webhook_secret: str | None = attrs.field(default=None, repr=False)
    sessions: set[EngineSession] = attrs.field(factory=set, init=False)
    connections: set[Link] = attrs.field(factory=set, init=False)
    """The open TCP connections (when served by :func:`serve_engine`)."""
    _change: trio.Event = attrs.field(factory=trio.Event, init=False, repr=False)
    _refusing: tuple[float, int] | None = attrs.field(default=None, init=False, repr=False)
    refused: int = attrs.field(default=0, init=False)
    """WebSocket handshakes refused by the ``refuse`` knob so far."""
    rest: RestState = attrs.field(init=False)
    """Client secrets and calls (see :mod:`._rest`)."""
    registry: Registry = attrs.field(init=False)
    """The client secrets and calls, here and in a shared Redis (see :mod:`._registry`)."""

    def __attrs_post_init__(self) -> None:
        if self.brain is None:
            self.brain = ScriptedBrain(self.rules) if self.rules is not None else ScriptedBrain()
        self.rest = RestState(model=self.model, clock=self.clock)
        self.registry = Registry(rest=self.rest)
        self.rest.changed = self.registry.changed
        self.registry.actions["dtmf"] = partial(dtmf_on_call, self)
        if self.webhook_url is not None and not self.webhook_secret:
            raise ValueError("a webhook URL needs a webhook secret to sign with")

    def _changed(self) -> None:
        self._change.set()
        self._change = trio.Event()

    async def wait_until(self, condition: Callable[[Engine], bool]) -> None:
        """Returns once ``condition(engine)`` holds; it is checked again whenever a
        session or a connection opens or closes."""
        while not condition(self):
            await self._change.wait()

    def ring(
        self,
        *,
        caller: str = "sip:+14155550100@cantata.invalid",
        callee: str = "sip:agent@cantata.invalid",
        headers: Sequence[tuple[str, str]] = (),
    ) -> Call:
        """Simulates an incoming SIP call, as a SIP trunk would deliver it.

        The call rings until it is accepted or rejected over REST;
        ``call.webhook_event()`` is the ``realtime.call.incoming`` webhook
        the hosted API would send for it.
        """
        return self.rest.ring(caller=caller, callee=callee, headers=headers)

    @property
    def shared(self) -> SharedState | None:
        """The state shared with other engines through Redis, while served with one."""
        return self.registry.shared

    def refuse(self, seconds: float, *, status: int = 503) -> None:
        """Test knob: refuses WebSocket handshakes with ``status`` for ``seconds`` from now.

        An outage of the server as a client meets it when it dials again;
        sessions already open are left alone. ``seconds`` 0 ends it.
        """
        self._refusing = (trio.current_time() + seconds, status) if seconds > 0 else None

    def admit(self) -> int | None:
        """Whether a handshake may go ahead now: ``None``, or the status that refuses it."""
        if self._refusing is None:
            if self.refuse_connections_s <= 0:
                return None
            # Counted from the first handshake: the engine has no start-up hook of its own.
            self.refuse(self.refuse_connections_s)
            self.refuse_connections_s = 0.0
            assert self._refusing is not None
        until, status = self._refusing
        if trio.current_time() >= until:
            self._refusing = None
            return None
        self.refused += 1
        return status

    @property
    def options(self) -> SessionOptions:
        assert self.brain is not None
        return SessionOptions(
            brain=self.brain,
            transcriber=self.transcriber,
            synthesizer=self.synthesizer,
            vad=self.vad,
            model=self.model,
            max_session_s=self.max_session_s,
            latency_ms=self.latency_ms,
            drop_after_events=self.drop_after_events,
            mcp_client=self.mcp_client,
        )

    def banner(self, url: str) -> str:
        """What the engine tells its operator when it starts."""
        assert self.brain is not None
        lines = [
            f"Cantata local Realtime engine on {url}",
            f"  brain:       {self.brain.name} - {self.brain.description}",
            f"  transcriber: {described(self.transcriber)}",
            f"  synthesizer: {described(self.synthesizer)}",
            f"  vad:         {described(self.vad)}",
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
            await answer_lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/")
        if path in ("", "/health", "/v1/health"):
            response = HttpResponse(
                200,
                orjson.dumps(
                    {
                        "status": "ok",
                        "sessions": len(self.sessions),
                        "connections": len(self.connections),
                    }
                ),
            )
        else:
            try:
                if path.startswith(OPERATOR_PREFIX + "/"):
                    body = await _read_body(receive)
                    key = self._presented_key(scope)
                    rest = path.removeprefix(OPERATOR_PREFIX)
                    response = await operate(self, scope["method"], rest, body, key)
                else:
                    response = await self._rest(scope, receive, path)
            except HttpError as e:
                response = e.response()
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
        ]
        headers += [(k.encode(), v.encode()) for k, v in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _rest(self, scope: Scope, receive: Receive, path: str) -> HttpResponse:
        method = scope["method"]
        action = _CALL_ACTION.match(path)
        if method != "POST" or not (
            action or path in ("/v1/realtime/client_secrets", "/v1/realtime/calls")
        ):
            raise HttpError(404, f"Invalid URL ({method} {scope['path']})", code="not_found")
        key = self._presented_key(scope)
        # Only a browser's call to POST /realtime/calls may use a client secret.
        secret = await self.registry.authorize(
            key, api_key=self.api_key, ephemeral_ok=path == "/v1/realtime/calls"
        )
        body = await _read_body(receive)
        if path == "/v1/realtime/client_secrets":
            return await self.registry.mint(body)
        if action is None:
            response = self.rest.create_call(_header(scope, b"content-type"), body, secret)
            await self.registry.flush()
            return response
        call_id, verb = action.groups()
        return await self.registry.act_anywhere(verb, call_id, body)

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
        await self.serve_websocket(_AsgiOpening(scope, receive, send))

    async def serve_websocket(self, opening: Opening) -> None:
        """Answers a WebSocket handshake and serves the session it opens."""
        scope = opening.scope
        if scope["path"].rstrip("/") != "/v1/realtime":
            await opening.deny(404, error_body(f"Invalid URL ({scope['path']})", code="not_found"))
            return
        refusal = self.admit()
        if refusal is not None:
            await opening.deny(
                refusal,
                error_body(
                    "The server is temporarily unavailable; try again shortly.",
                    code="server_unavailable",
                    type="server_error",
                ),
            )
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        call: Call | None = None
        try:
            secret = await self.registry.authorize(
                self._presented_key(scope), api_key=self.api_key, ephemeral_ok=True
            )
            if "call_id" in query:
                call = await self.registry.attachable(query["call_id"][0])
        except HttpError as e:
            await opening.deny(e.status, e.body())
            return
        # Taken before the next await, so that two sockets racing for one call
        # cannot both attach; a hangup before the scope is entered still counts.
        attachment = trio.CancelScope()
        if call is not None:
            call.attachment = attachment
            self.rest.changed(call)
        try:
            await self._serve_socket(opening, query, secret, call, attachment)
        finally:
            if call is not None:
                call.attachment = None
                self.rest.changed(call)

    async def _serve_socket(
        self,
        opening: Opening,
        query: dict[str, list[str]],
        secret: ClientSecret | None,
        call: Call | None,
        attachment: trio.CancelScope,
    ) -> None:
        scope = opening.scope
        intent = query.get("intent", [""])[0]
        transcription = intent == "transcription" or (secret is not None and secret.transcription)
        if transcription and call is not None:
            await opening.deny(
                400,
                error_body(
                    "A call is a realtime session; transcription sessions are served over "
                    "WebSocket only.",
                    code="unsupported_intent",
                ),
            )
            return
        if intent == "transcription" and secret is not None and not secret.transcription:
            await opening.deny(
                400,
                error_body(
                    "This client secret is for a realtime session; mint one with a session of "
                    "type 'transcription' to connect with ?intent=transcription.",
                    code="invalid_value",
                ),
            )
            return
        subprotocol = "realtime" if "realtime" in scope.get("subprotocols", []) else None
        connection = await opening.accept(subprotocol)
        for name, value in scope["headers"]:
            if name.lower() == b"openai-beta" and b"realtime=v1" in value:
                # The hosted API turned the beta protocol off and says so at once.
                await connection.close(4000, "beta_api_shape_disabled")
                await connection.finish(self.links.close_grace_s + 1)
                return
        # A call or a client secret fixes the configuration, model included.
        initial = call.session if call is not None else secret.session if secret else None
        model = initial.model if initial is not None else query.get("model", [None])[0]
        session = EngineSession(
            self.options,
            connection,
            model=model if isinstance(model, str) else None,
            config=initial,
            # Every socket attached to a call reports the call's one session.
            session_id=call.session_id if call is not None else None,
            transcription=transcription,
        )
        session.link = current_link()
        self.sessions.add(session)
        self._changed()
        try:
            with attachment:
                await session.run()
        finally:
            self.sessions.discard(session)
            self._changed()
        if attachment.cancelled_caught:
            await connection.close(HANGUP_CLOSE_CODE, HANGUP_CLOSE_REASON)
        else:
            await connection.close(1000, "")
        await connection.finish(self.links.close_grace_s + 1)


def described(part: object) -> str:
    """A part as its operator reads it: its ``description`` if it has one, else its name.

    A transcriber limited to a grammar says so in its description.
    """
    text = getattr(part, "description", None) or getattr(part, "name", None)
    return str(text) if text else "energy (the level of the audio)"


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HttpError(
                413,
                f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                code="request_too_large",
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""The largest WebSocket message read at all: larger ones close the connection
with 1009. Events above the session's own limit (16 MiB) and up to this one get
an ``error`` event instead, and the session goes on."""
APP_QUEUE = 4
"""Messages hypercorn queues for a session that is busy; beyond it, the kernel's
socket buffers push back on the client."""


def _hypercorn_config(
    host: str, port: int, links: LinkLimits, certfile: str | None, keyfile: str | None
) -> Config:
    config = server_config(
        host, port, links, _log, max_message_bytes=MAX_MESSAGE_BYTES, app_queue=APP_QUEUE
    )
    if certfile is not None:
        config.certfile = certfile
        config.keyfile = keyfile
        # WebSocket clients negotiate HTTP/1.1; the engine does not serve HTTP/2.
        config.alpn_protocols = ["http/1.1"]
    return config


async def serve_engine(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    certfile: str | None = None,
    keyfile: str | None = None,
    workers: int | None = None,
    redis: str | None = None,
    public_url: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves the engine until cancelled; reports its WebSocket URL when listening.

    Args:
        engine: the engine to serve.
        host, port: where to listen (port 0: any free port).
        certfile, keyfile: a PEM certificate chain and its private key, both or
            neither: with them the engine speaks TLS only, and its URLs are
            ``wss://`` and ``https://``.
        workers: None when the engine shares its process with other work. A
            number when the engine owns the process (``cantata serve``): that
            many processes serve sessions (see :mod:`._workers`; more than one
            needs plain ``ws://``), and each tunes its garbage collector.
        redis: a Redis URL: client secrets and calls are shared with every
            engine using it (see :mod:`._shared`).
        public_url: the WebSocket URL other engines name when a call this one
            holds is asked for there (default: the URL it listens on).

    Raises:
        ValueError: only one of ``certfile`` and ``keyfile``; workers with TLS,
            or fewer than one.
        OSError: the address cannot be bound, or a TLS file cannot be read.
        ssl.SSLError: the TLS files are not a certificate and its key.
        SharedStoreError: Redis does not answer at ``redis``.
    """
    _check_tls(certfile, keyfile)
    if workers is not None and (workers < 1 or (workers > 1 and certfile is not None)):
        raise ValueError("workers must be at least 1, and more than 1 needs plain ws:// (no TLS)")
    config = _hypercorn_config(host, port, engine.links, certfile, keyfile)

    def track(link: Link, opened: bool) -> None:
        (engine.connections.add if opened else engine.connections.discard)(link)
        engine._changed()

    async with engine.registry.sharing(redis), trio.open_nursery() as nursery:
        helper_fd = os.environ.get(HELPER_FD) if workers is not None else None
        if helper_fd is not None:  # a helper of a primary (see _workers)
            handed = await nursery.start(receive_handed, int(helper_fd))
            url = os.environ.get(HELPER_URL, "")
            await engine.registry.serve(nursery, public_url or url)
            settle_collector()
            task_status.started(url)
            await serve_handed(
                engine,
                config,
                engine.links,
                handed,
                on_link=track,
                on_websocket=engine.serve_websocket,
            )
            # The primary is gone: the helper stops as its command does on SIGTERM.
            signal.raise_signal(signal.SIGTERM)
            return
        helpers = Helpers([])
        binds: list[str] = await nursery.start(
            partial(
                serve_links,
                engine,
                config,
                engine.links,
                on_link=track,
                on_websocket=engine.serve_websocket,
                hand_off=lambda stream, head: helpers.hand_off(stream, head),
            )
        )
        url = _websocket_url(binds[0])
        await engine.registry.serve(nursery, public_url or url)
        if workers is not None and workers > 1:
            helpers = await nursery.start(_keep_helpers, workers - 1, url, redis is not None)
        if workers is not None:
            settle_collector()
        task_status.started(url)


async def _keep_helpers(
    count: int,
    url: str,
    secrets_shared: bool,
    task_status: trio.TaskStatus[Helpers] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with start_helpers(count, url, secrets_shared=secrets_shared) as helpers:
        task_status.started(helpers)
        await trio.sleep_forever()


def _check_tls(certfile: str | None, keyfile: str | None) -> None:
    if (certfile is None) != (keyfile is None):
        raise ValueError("TLS needs both a certificate file and its key file")


def _websocket_url(http_url: str) -> str:
    """The Realtime endpoint's URL from the server's base URL (``https`` gives ``wss``)."""
    return "ws" + http_url.removeprefix("http") + "/v1/realtime"


@attrs.frozen
class RunningEngine:
    """An engine listening on loopback (from :func:`open_engine`)."""

    engine: Engine
    url: str
    """The WebSocket URL of the Realtime endpoint, ``ws://host:port/v1/realtime``
    (``wss://`` with TLS)."""

    @property
    def http_url(self) -> str:
        """The base URL of the REST endpoints, ``http://host:port/v1`` (``https://`` with TLS)."""
        return "http" + self.url.removeprefix("ws").removesuffix("/realtime")


@asynccontextmanager
async def open_engine(
    engine: Engine | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: str | None = None,
    keyfile: str | None = None,
    redis: str | None = None,
) -> AsyncIterator[RunningEngine]:
    """Runs an engine for the duration of the block (port 0: any free port).

    ``certfile`` and ``keyfile`` serve it over TLS, and ``redis`` shares its
    client secrets and calls, as :func:`serve_engine` does.

    Raises:
        ValueError: only one of ``certfile`` and ``keyfile``.
    """
    _check_tls(certfile, keyfile)
    engine = engine or Engine()
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(
            lambda task_status: serve_engine(
                engine,
                host=host,
                port=port,
                certfile=certfile,
                keyfile=keyfile,
                redis=redis,
                task_status=task_status,
            )
        )
        try:
            yield RunningEngine(engine, url)
        finally:
            nursery.cancel_scope.cancel()
