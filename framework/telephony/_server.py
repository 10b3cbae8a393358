"""The phone endpoint: Twilio's webhooks and Media Streams, and SIP webhooks, on one port.

:class:`PhoneServer` is an ASGI app served by hypercorn's trio worker
through the engine's guarded accept loop (a connection's failure ends that
connection only). Its routes:

* ``POST /twilio/voice``: Twilio's voice webhook. The signature is checked,
  the call's session is opened *now*, while Twilio is still connecting the
  caller (the model's connection and configuration are ready by the first
  word), and the answer is TwiML connecting the call to our stream, or a
  busy rejection at capacity;
* ``/twilio/media``: the call's Media Stream (WebSocket), see :mod:`._twilio`;
* ``POST /twilio/after``: what Twilio does once the stream has ended (hang
  up, or dial a transfer's target);
* ``POST /sip/webhook``: ``realtime.call.incoming`` from the Realtime API,
  verified (:mod:`._webhooks`), each delivery once; the call is accepted with
  the agent's configuration and a session attached to it, or rejected with
  486 Busy Here at capacity;
* ``GET /health``: the live calls.

Each call runs in a task of the server's nursery, in the context of its
:class:`~._call.PhoneCall` (so ``current_phone_call()`` works in its tools);
when the call ends its session is closed, and when the session ends the call
is hung up. Bounds: ``max_calls`` calls at once (Twilio and SIP together); a
call whose stream has not started ``stream_timeout_s`` after its webhook is
dropped; the TwiML of ended calls, kept for Twilio's ``after`` request, for
the last :data:`ENDED_KEPT` calls.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, TypeAlias

import attrs
import orjson
import trio

from framework.engine import (
    LinkLimits,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    respond,
    serve_links,
    server_config,
)
from framework.errors import ConnectionClosed, RestError
from framework.runtime import AgentLike, open_session
from framework.transport import RestClient, open_rest_client, resolve_base_url

from ._agent import greeting_of
from ._asgi import AsgiSocket, HttpRefusal, Route, route_request
from ._call import PhoneCall, enter_phone_call, leave_phone_call
from ._inbound import sip_webhook, twilio_form, url_of
from ._sip import SipLeg, call_from_event, with_call_id
from ._twilio import (
    TwilioLeg,
    read_start,
    twiml_busy,
    twiml_connect,
)
from ._webhooks import RecentDeliveries

_log = logging.getLogger("cantata.telephony")

AgentSource: TypeAlias = AgentLike | Callable[[PhoneCall], AgentLike]


def agent_for(source: AgentSource, call: PhoneCall) -> AgentLike:
    """The agent that answers ``call``: a class makes one per call, a function gets the
    call, an agent serves all."""
    if isinstance(source, type):
        made: AgentLike = source()
        return made
    if callable(source) and not hasattr(source, "session_config"):
        return source(call)
    return source  # type: ignore[return-value]


MAX_CALLS = 100
STREAM_TIMEOUT_S = 30.0
ENDED_KEPT = 1000
MAX_FRAME_BYTES = 64 * 1024
"""The largest Media Streams frame read (Twilio's are a few hundred bytes)."""
SIP_BUSY = 486
"""SIP's Busy Here: what a call hears when every line is taken."""


@attrs.define(kw_only=True, eq=False)
class PhoneServer:
    """Answers phone calls with an agent (see the module docstring).

    Args:
        agent: the agent that answers, or a function that makes one per call.
        url: the Realtime server (``None``: the hosted API; the local
            engine's ``ws://127.0.0.1:PORT/v1/realtime``).
        api_key: its key (the hosted API: ``OPENAI_API_KEY``).
        public_url: the base URL Twilio reaches this server at
            (``https://example.com``), for the TwiML's stream URL and the
            signature checks; ``None``: the request's own host.
        twilio_auth_token: signs Twilio's requests (``TWILIO_AUTH_TOKEN``);
            without it the Twilio routes refuse every request.
        webhook_secret: signs the Realtime API's webhooks
            (``OPENAI_WEBHOOK_SECRET``); without it the SIP route refuses
            every request.
        max_calls: calls at once; beyond, a call is turned away busy.
        stream_timeout_s: how long a Twilio call may take to connect its stream.
        on_call: run in each call's task once its session is up (it may
            ``async for event in call.session``); the call does not wait for it
            and cancels it when the call ends.
        lead_ms: Twilio calls: audio sent ahead of what the caller has heard.
    """

    agent: AgentSource
    url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    public_url: str | None = None
    twilio_auth_token: str | None = attrs.field(
        factory=lambda: os.environ.get("TWILIO_AUTH_TOKEN") or None, repr=False
    )
    webhook_secret: str | None = attrs.field(
        factory=lambda: os.environ.get("OPENAI_WEBHOOK_SECRET") or None, repr=False
    )
    max_calls: int = MAX_CALLS
    stream_timeout_s: float = STREAM_TIMEOUT_S
    on_call: Callable[[PhoneCall], Awaitable[None]] | None = None
    lead_ms: int | None = None
    calls: dict[str, PhoneCall] = attrs.field(factory=dict, init=False)
    """The live calls, by id."""
    _twilio: dict[str, TwilioLeg] = attrs.field(factory=dict, init=False)
    _after: OrderedDict[str, str] = attrs.field(factory=OrderedDict, init=False)
    _deliveries: RecentDeliveries = attrs.field(factory=RecentDeliveries, init=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)
    _rest: RestClient | None = attrs.field(default=None, init=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False)

    # --- lifecycle -------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[PhoneServer]:
        """Runs the server's calls for the block (the ASGI app needs it)."""
        async with AsyncExitStack() as stack:
            if self.webhook_secret:
                self._rest = await stack.enter_async_context(
                    open_rest_client(resolve_base_url(self.url), api_key=self.api_key)
                )
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    yield self
                finally:
                    for call in list(self.calls.values()):
                        call.end("the phone server stopped")
                    self._nursery = None

    async def wait_until(self, condition: Callable[[PhoneServer], bool]) -> None:
        """Returns once ``condition(server)`` holds; checked whenever a call starts or ends."""
        while not condition(self):
            changed = self._changed
            await changed.wait()

    def _agent_for(self, call: PhoneCall) -> AgentLike:
        return agent_for(self.agent, call)

    def _register(self, call: PhoneCall) -> None:
        self.calls[call.id] = call
        self._wake()

    def _forget(self, call: PhoneCall) -> None:
        self.calls.pop(call.id, None)
        leg = self._twilio.pop(call.id, None)
        if leg is not None:
            self._after[call.id] = leg.next_twiml
            while len(self._after) > ENDED_KEPT:
                self._after.popitem(last=False)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # --- a call's session ------------------------------------------------------------------

    async def _run_call(
        self,
        call: PhoneCall,
        session_url: str | None,
        *,
        audio_in: AsyncIterator[bytes] | None,
        audio_out: Any,
        ready: trio.Event,
        greet: bool,
    ) -> None:
        """One call's session, for as long as the call lasts (in the call's context)."""
        enter_phone_call(call)
        try:
            agent = self._agent_for(call)
            async with open_session(
                agent,
                url=session_url,
                api_key=self.api_key,
                audio_in=audio_in,
                audio_out=audio_out,
            ) as session:
                call.session = session
                session.observe(call.observe)
                call.answered.set()
                ready.set()
                if greet:
                    greeting = greeting_of(session.agent)
                    if greeting is not None:
                        await session.create_response(greeting)
                async with trio.open_nursery() as watchers:
                    if self.on_call is not None:
                        watchers.start_soon(self.on_call, call)
                    await call.ended.wait()
                    watchers.cancel_scope.cancel()
        except ConnectionClosed as e:
            call.end(f"the session ended ({e.code}: {e.reason or 'no reason'})")
        except Exception as e:
            _log.warning("call %s: the session failed: %s", call.id, _one_line(e))
            _log.debug("call %s: the session's error", call.id, exc_info=True)
            call.end(f"the session failed: {_one_line(e)}")
        finally:
            ready.set()
            call.end("the session ended")
            if call.carrier == "sip":
                await self._hang_up_sip(call)
            self._forget(call)

    async def _hang_up_sip(self, call: PhoneCall) -> None:
        """A SIP call whose session ended is hung up, unless it already was."""
        if call.end_reason.startswith(("hung up", "transferred")) or self._rest is None:
            return
        with trio.move_on_after(5), trio.CancelScope(shield=True):
            try:
                await self._rest.hangup_call(call.id)
            except RestError as e:
                _log.info("call %s: hang-up after the session ended: %s", call.id, e)

    def _start_call(self, call: PhoneCall, **options: Any) -> None:
        assert self._nursery is not None, "PhoneServer.running() is not entered"
        self._register(call)
        self._nursery.start_soon(partial(self._run_call, call, **options))

    async def _drop_unstreamed(self, leg: TwilioLeg) -> None:
        with trio.move_on_after(self.stream_timeout_s):
            await leg.attached.wait()
            return
        assert leg.call is not None
        leg.call.end(f"the stream did not start within {self.stream_timeout_s:g} s")

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await answer_lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, *await route_request(self, _ROUTES, scope, receive))

    def _url_of(self, scope: Scope, path: str, *, websocket: bool = False) -> str:
        return url_of(scope, self.public_url, path, websocket=websocket)

    def _twilio_form(self, scope: Scope, body: bytes) -> dict[str, str]:
        return twilio_form(
            scope, body, auth_token=self.twilio_auth_token, public_url=self.public_url
        )

    async def _voice(self, scope: Scope, body: bytes) -> tuple[str, str]:
        form = self._twilio_form(scope, body)
        call_sid = form.get("CallSid", "")
        if not call_sid:
            raise HttpRefusal(400, "the voice webhook has no CallSid")
        if call_sid in self.calls:
            leg = self._twilio.get(call_sid)
        else:
            leg = None
            if len(self.calls) >= self.max_calls:
                _log.info("call %s turned away: %d calls already", call_sid, len(self.calls))
                return "text/xml", twiml_busy()
        if leg is None:
            leg = TwilioLeg(lead_ms=self.lead_ms)
            call = PhoneCall(
                id=call_sid,
                carrier="twilio",
                leg=leg,
                caller=form.get("From") or None,
                callee=form.get("To") or None,
                metadata=form,
            )
            leg.call = call
            self._twilio[call_sid] = leg
            self._start_call(
                call,
                session_url=self.url,
                audio_in=leg.caller_audio(),
                audio_out=leg.sink,
                ready=leg.ready,
                greet=False,  # the stream greets, once the caller can hear it
            )
            assert self._nursery is not None
            self._nursery.start_soon(self._drop_unstreamed, leg)
        twiml = twiml_connect(
            self._url_of(scope, "/twilio/media", websocket=True),
            self._url_of(scope, "/twilio/after"),
            leg.token,
        )
        return "text/xml", twiml

    async def _after_stream(self, scope: Scope, body: bytes) -> tuple[str, str]:
        form = self._twilio_form(scope, body)
        twiml = self._after.pop(form.get("CallSid", ""), None)
        if twiml is None:
            twiml = (
                self._twilio[form["CallSid"]].next_twiml
                if form.get("CallSid") in self._twilio
                else _HANGUP
            )
        return "text/xml", twiml

    async def _sip_webhook(self, scope: Scope, body: bytes) -> tuple[str, str]:
        if self._rest is None:
            raise HttpRefusal(403, "SIP calls are not served: set OPENAI_WEBHOOK_SECRET")
        webhook_id, event = sip_webhook(scope, body, secret=self.webhook_secret)
        if event.get("type") != "realtime.call.incoming":
            return "text/plain", "ignored: not realtime.call.incoming"
        if not self._deliveries.first_time(webhook_id):
            return "text/plain", "duplicate delivery: already handled"
        try:
            return "text/plain", await self._incoming_sip(event)
        except RestError as e:
            if e.status in (404, 409):
                return "text/plain", f"the call is gone: {e}"  # a retry would not help
            self._deliveries.forget(webhook_id)  # the sender retries; handle it then
            raise HttpRefusal(502, f"could not answer the call: {e}") from None

    async def _incoming_sip(self, event: Mapping[str, Any]) -> str:
        assert self._rest is not None
        try:
            call = call_from_event(event, SipLeg(self._rest, ""))
        except ValueError as e:
            raise HttpRefusal(400, str(e)) from None
        leg = SipLeg(self._rest, call.id)
        call.leg = leg
        if call.id in self.calls:
            return "already answering this call"
        if len(self.calls) >= self.max_calls:
            await self._rest.reject_call(call.id, status_code=SIP_BUSY)
            return "rejected: busy"
        token = enter_phone_call(call)  # the agent's configuration may read the call
        try:
            config = self._agent_for(call).session_config()
        finally:
            leave_phone_call(token)
        await self._rest.accept_call(call.id, session=config)  # type: ignore[arg-type]
        self._start_call(
            call,
            session_url=with_call_id(self.url, call.id),
            audio_in=None,
            audio_out=leg.playout,
            ready=trio.Event(),
            greet=True,
        )
        return "accepted"

    async def _health(self, scope: Scope, body: bytes) -> tuple[str, str]:
        calls = [
            {"id": c.id, "carrier": c.carrier, "caller": c.caller} for c in self.calls.values()
        ]
        return "application/json", orjson.dumps({"status": "ok", "calls": calls}).decode()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        if scope["path"].rstrip("/") != "/twilio/media":
            await send({"type": "websocket.close", "code": 1008, "reason": "no such stream"})
            return
        await send({"type": "websocket.accept"})
        socket = AsgiSocket(receive, send)
        try:
            start = await read_start(socket)
            leg = self._twilio.get(start.call_sid) if start is not None else None
            if start is None or leg is None or not leg.owns(start) or leg.attached.is_set():
                _log.warning("refused a media stream that belongs to no waiting call")
                await socket.close(1008, "this stream belongs to no waiting call")
                return
            await leg.stream(socket, start)
            await socket.close(1000, "")
        finally:
            await socket.finish()


_HANGUP = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'

_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/twilio/voice"): PhoneServer._voice,
    ("POST", "/twilio/after"): PhoneServer._after_stream,
    ("POST", "/sip/webhook"): PhoneServer._sip_webhook,
    ("GET", "/health"): PhoneServer._health,
}
"""The HTTP endpoints: each returns its content type and body, or raises ``HttpRefusal``."""


def _one_line(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    return text[:200]


# --- serving -------------------------------------------------------------------------------


async def serve_phone(
    server: PhoneServer,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    limits: LinkLimits | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves ``server`` until cancelled; reports its base URL (``http://host:port``).

    Raises:
        OSError: the address cannot be bound.
    """
    limits = limits or LinkLimits()
    config = server_config(host, port, limits, _log, max_message_bytes=MAX_FRAME_BYTES)
    async with server.running(), trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(serve_links, server, config, limits))
        task_status.started(binds[0])


@asynccontextmanager
async def open_phone_server(
    server: PhoneServer, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Runs ``server`` for the block on a loopback port (0: any free one); yields its base URL.

    Raises:
        OSError: the address cannot be bound.
    """
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(partial(serve_phone, server, host=host, port=port))
        try:
            yield url
        finally:
            nursery.cancel_scope.cancel()
