"""The playground's web server: the page, its assets, and one WebSocket per tab.

An ASGI app served by hypercorn's trio worker through the engine's guarded
accept loop (:func:`framework.engine.serve_links`: one task and one cancel
scope per connection, slow and vanished peers dropped), on loopback unless
told otherwise. Every asset ships in the package; the page loads no code
from anywhere else (its Content-Security-Policy says so too).

The WebSocket at ``/ws`` runs an agent session against the backend (the
local engine or the hosted API); the key, when there is one, stays in this
process. ``POST /api/client-secret`` mints an ephemeral key for the page's
direct mode, where the browser talks to the Realtime server itself.
"""

from __future__ import annotations

import logging
from functools import partial
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import orjson
import trio

from framework.agent import Agent
from framework.engine import LinkLimits, Receive, Scope, Send, serve_links, server_config
from framework.errors import CantataError, single_errors
from framework.plugin import Plugin
from framework.runtime import open_session
from framework.transport import HOSTED_URL, RestError, open_rest_client

from ._bridge import OUTBOX, BrowserSink, offer, run_bridge

_log = logging.getLogger("cantata.playground")


MAX_MESSAGE_BYTES = 1024 * 1024
"""The largest WebSocket message hypercorn reads from a page (the bridge's
own limits are smaller: it answers those with an error, this one closes)."""
MAX_BODY_BYTES = 64 * 1024
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
"""The largest recorded file sent to a page (a call of about 45 minutes, stereo)."""
MAX_RECORDED = 200
"""Recorded files offered for download at most (the latest); older ones stay on disk."""
SHUTDOWN_S = 5.0
"""How long a closing tab's last messages may take to go out."""
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Scripts, styles and images from this origin only, so the page works offline;
# WebSockets may go elsewhere, as direct mode opens one to the Realtime server.
_SECURITY = [
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        b"media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_DOWNLOAD = [(b"content-disposition", b"attachment")]


def _assets() -> dict[str, tuple[bytes, str]]:
    """The page's files by URL path, read once from the package."""
    found: dict[str, tuple[bytes, str]] = {}
    static = resources.files(__package__).joinpath("static")
    for entry in static.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            found["/static/" + entry.name] = (entry.read_bytes(), _TYPES[suffix])
    found["/"] = found["/static/index.html"]
    return found


def _json(status: int, body: object) -> tuple[int, bytes, str]:
    return status, orjson.dumps(body), "application/json"


def _error(status: int, message: str) -> tuple[int, bytes, str]:
    return _json(status, {"error": {"message": message}})


@attrs.define(eq=False, kw_only=True)
class Playground:
    """The playground as an ASGI app: one agent, one backend, many tabs.

    Args:
        agent: the agent each tab talks to.
        url: the Realtime URL sessions connect to (``None``: the hosted API).
        described: a line naming the backend, shown on the page.
        api_key: the backend's key, used here only (never sent to a page).
        max_sessions: tabs served at once; more are refused with 503.
        plugins: plugins for every session besides the agent's (a recorder).
        loopback_only: answer only requests addressed to a loopback name
            (:func:`serve_playground` sets it when it listens on loopback).
    """

    agent: Agent
    url: str | None
    described: str
    api_key: str | None = None
    max_sessions: int = 4
    plugins: list[Plugin] = attrs.Factory(list)
    loopback_only: bool = False
    sessions: int = attrs.field(default=0, init=False)
    """Tabs with a session now."""
    recorded: dict[str, Path] = attrs.field(factory=dict, init=False)
    """Files the plugins recorded of ended sessions, by the name they are served under."""
    assets: dict[str, tuple[bytes, str]] = attrs.field(factory=_assets, init=False, repr=False)
    _change: trio.Event = attrs.field(factory=trio.Event, init=False, repr=False)

    def _count(self, by: int) -> None:
        self.sessions += by
        self._change.set()
        self._change = trio.Event()

    async def wait_until_sessions(self, count: int) -> None:
        """Returns once exactly ``count`` tabs have a session (a tab's ends after its socket)."""
        while self.sessions != count:
            await self._change.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        # Served on loopback, the page answers to loopback names only: a site whose
        # name was made to resolve here (DNS rebinding) is not this page's origin.
        foreign = self.loopback_only and _host_name(scope) not in LOOPBACK
        if kind == "http":
            if foreign:
                status, body, content_type = _error(403, "open the page at http://127.0.0.1")
            else:
                status, body, content_type = await self._http(scope, receive)
            headers = [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *_SECURITY,
                *(_DOWNLOAD if scope["path"].startswith("/recordings/") else ()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
            )
        elif kind == "websocket":
            if foreign:
                if (await receive())["type"] == "websocket.connect":
                    await self._deny(send, 403, "open the page at http://127.0.0.1")
                return
            await self._websocket(scope, receive, send)

    # --- HTTP ------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive) -> tuple[int, bytes, str]:
        path, method = scope["path"], scope["method"]
        if path == "/api/client-secret":
            if method != "POST":
                return _error(405, "POST here to mint an ephemeral key")
            if not _same_origin(scope):
                return _error(403, "ephemeral keys are minted for this page only")
            body = await _read_body(receive)
            if body is None:
                return _error(413, f"the request body is over {MAX_BODY_BYTES} bytes")
            return await self._client_secret()
        if method not in ("GET", "HEAD"):
            return _error(405, f"{method} is not served here; the page is at GET /")
        if path == "/health":
            return _json(200, {"status": "ok", "sessions": self.sessions})
        if path.startswith("/recordings/"):
            return await self._recording(path.removeprefix("/recordings/"))
        asset = self.assets.get(path)
        if asset is None:
            return _error(404, f"nothing at {path[:200]}; the page is at /")
        return 200, *asset

    async def _recording(self, name: str) -> tuple[int, bytes, str]:
        """A recorded file of an ended session; only names this process recorded."""
        path = self.recorded.get(name)
        if path is None:
            return _error(404, f"no recording named {name[:100]!r}; end a session with --record")
        try:
            size = (await trio.Path(path).stat()).st_size
            if size > MAX_DOWNLOAD_BYTES:
                return _error(413, f"{name} is too large to send from here; it is at {path}")
            body = await trio.Path(path).read_bytes()
        except OSError as e:
            return _error(410, f"the recording {name!r} cannot be read any more: {e.strerror}")
        kind = "audio/wav" if path.suffix == ".wav" else "application/json"
        return 200, body, kind

    def _offer_recordings(self, session_id: str) -> list[dict[str, str]]:
        """Registers what the plugins recorded of ``session_id``; links for the page."""
        files = []
        for plugin in self.plugins:
            # A recorder lists its recordings, each with the session it recorded.
            for recording in getattr(plugin, "recordings", ()):
                if getattr(recording, "session_id", None) != session_id:
                    continue
                for path in (recording.wav_path, recording.report_path):
                    if isinstance(path, Path) and path.is_file():
                        self.recorded[path.name] = path
                        while len(self.recorded) > MAX_RECORDED:
                            del self.recorded[next(iter(self.recorded))]  # the oldest
                        files.append({"name": path.name, "url": "/recordings/" + path.name})
        return files

    async def _client_secret(self) -> tuple[int, bytes, str]:
        """An ephemeral key for the page's direct mode, from the backend's REST API."""
        base = (
            None
            if self.url is None
            else "http" + self.url.removeprefix("ws").removesuffix("/realtime")
        )
        try:
            # The agent's instructions and voice; not its tools, which run in this
            # process only: a browser client brings its own.
            config = self.agent.session_config(tools=[])
            async with open_rest_client(base, api_key=self.api_key) as rest:
                secret = await rest.create_client_secret(session=config)
        except (RestError, ValueError, OSError) as e:
            return _error(502, f"the backend did not mint a key: {e}")
        realtime = self.url or HOSTED_URL
        answer = {"value": secret.value, "expires_at": secret.expires_at, "url": realtime}
        return _json(200, {**answer, "agent": self.agent.name, "backend": self.described})

    # --- WebSocket -------------------------------------------------------------------

    async def _deny(self, send: Send, status: int, message: str) -> None:
        body = orjson.dumps({"error": {"message": message}})
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope["path"] != "/ws":
            await self._deny(send, 404, "the playground's socket is at /ws")
            return
        if not _same_origin(scope):
            # Another site open in the same browser must not drive the bot or its approvals.
            await self._deny(send, 403, "the playground answers its own page only")
            return
        if self.sessions >= self.max_sessions:
            await self._deny(send, 503, f"{self.max_sessions} tabs are open; close one")
            return
        self._count(1)
        try:
            await send({"type": "websocket.accept"})
            await self._serve_tab(receive, send)
        finally:
            self._count(-1)

    async def _serve_tab(self, receive: Receive, send: Send) -> None:
        outbox, pending = trio.open_memory_channel[bytes | str](OUTBOX)
        sink = BrowserSink(partial(offer, outbox), self.agent.output_audio_format)
        closed = False

        async def incoming() -> str | bytes | None:
            nonlocal closed
            while not closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    closed = True
                elif message["type"] == "websocket.receive":
                    text = message.get("text")
                    return text if text is not None else message.get("bytes") or b""
            return None

        # Drains what is queued once the outbox closes; it gets SHUTDOWN_S from then.
        writer = trio.CancelScope()

        async def write() -> None:
            with writer:
                async for frame in pending:
                    key = "text" if isinstance(frame, str) else "bytes"
                    await send({"type": "websocket.send", key: frame})

        ended = "the session ended"
        session_id = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            with outbox:
                try:
                    async with open_session(
                        self.agent,
                        url=self.url,
                        api_key=self.api_key,
                        audio_out=sink,
                        raw_events=True,  # the page's event log
                        plugins=self.plugins,
                        elicitation=True,  # the page answers tools' questions, as approvals
                    ) as session:
                        session_id = session.id
                        hello = {
                            "agent": self.agent.name,
                            "backend": self.described,
                            "session_id": session.id,
                            "tools": sorted(session.tools),
                        }
                        await run_bridge(
                            session,
                            sink,
                            outbox,
                            incoming,
                            hello,
                            self.agent.input_audio_format,
                        )
                except (CantataError, ValueError) as e:
                    ended = str(e).splitlines()[0]
                    _log.warning("a playground session ended: %s", ended)
                if not closed and session_id is not None:
                    files = await trio.to_thread.run_sync(self._offer_recordings, session_id)
                    if files:
                        offer(outbox, orjson.dumps({"type": "recorded", "files": files}).decode())
                if not closed:
                    offer(outbox, orjson.dumps({"type": "ended", "reason": ended}).decode())
            writer.deadline = trio.current_time() + SHUTDOWN_S
        if not closed:
            await send({"type": "websocket.close", "code": 1000, "reason": ""})


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _host_name(scope: Scope) -> str | None:
    """The name the request was addressed to (its ``Host`` header, without the port)."""
    for name, value in scope["headers"]:
        if name.lower() == b"host":
            host: str = value.decode("latin-1")
            return urlsplit("//" + host).hostname
    return None


def _same_origin(scope: Scope) -> bool:
    """Whether the request comes from the page itself (or from no page at all)."""
    headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not a browser page: a script or a test client
    return bool(urlsplit(origin).netloc == headers.get(b"host", ""))


async def _read_body(receive: Receive) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += bytes(message.get("body", b""))
        if len(body) > MAX_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return body


async def serve_playground(
    playground: Playground,
    *,
    host: str = "127.0.0.1",
    port: int = 8780,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves the playground until cancelled; reports the page's URL when listening.

    Raises:
        OSError: the address cannot be bound.
    """
    playground.loopback_only = host in LOOPBACK
    limits = LinkLimits()
    config = server_config(
        host, port, limits, _log, max_message_bytes=MAX_MESSAGE_BYTES, app_queue=16
    )
    with single_errors():  # a port in use is an OSError, not a group around one
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(partial(serve_links, playground, config, limits))
            task_status.started(binds[0] + "/")
