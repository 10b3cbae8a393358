"""A Twilio call: TwiML for Twilio's webhooks, and the Media Stream of one call.

Twilio answers a call by POSTing its voice webhook; the answer is TwiML,
which the ``twilio`` package writes: ``<Connect action=...><Stream url=...>``
connects the call's audio to our WebSocket, both ways, and when that
WebSocket closes Twilio POSTs the ``action`` URL for what to do next: hang up,
or dial the number a transfer chose (TwiML ``<Connect>``, "action"). Each
request carries ``X-Twilio-Signature``, an HMAC of the URL and the form with
the account's auth token, which :func:`signature_ok` checks with the same
package.

A :class:`TwilioLeg` is one call's Media Stream and its controls. The stream
proves it belongs to the call with a token the TwiML gave it as a custom
parameter (Twilio repeats those in ``start``). Its tasks, in one nursery,
for the life of the stream:

* the **reader** (the stream's own task) takes the caller's frames to the
  session's input (a channel of :data:`INBOUND_FRAMES`; when the session
  falls behind, frames are dropped and counted rather than let Twilio's
  socket back up), the marks to the sink, the keys to the session's events
  (:class:`~framework.runtime.DtmfReceived`), and ends at ``stop``;
* the **sender** is the sink's (:class:`~._sink.MarkedSink`): the assistant's
  frames and marks, and ``clear`` on barge-in;
* a **greeter** asks for the agent's greeting once the session is up.

Hanging up or transferring ends the stream from our side; the leg keeps the
TwiML Twilio will ask for next.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

import trio
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from framework.runtime import DtmfReceived, SessionEvent

from ._agent import greeting_of
from ._call import PhoneCall
from ._media import Connected, Dtmf, Mark, Media, MediaStreamError, Start, Stop, parse_message
from ._sink import MarkedSink

_log = logging.getLogger("cantata.telephony")

INBOUND_FRAMES = 50
"""Caller frames waiting for the session (a second of 20 ms frames)."""
APPEND_FRAMES = 5
"""Caller frames joined into one append (100 ms): a fifth of the messages to the
server for 80 ms more before speech is noticed, which barge-in accuracy does not
depend on (what was heard comes from the marks)."""
START_TIMEOUT_S = 10.0
"""How long a new stream has to send its ``start`` message."""
READY_TIMEOUT_S = 15.0
"""How long a connected stream waits for its session to be up before giving up."""
TOKEN_PARAMETER = "cantata_token"
"""The custom parameter that ties a stream to the call its TwiML was for."""


class StreamSocket(Protocol):
    """A WebSocket as the stream sees it (text frames)."""

    async def receive_text(self) -> str:
        """The next text frame; raises ``trio.EndOfChannel`` once the peer has gone."""
        ...

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


# --- TwiML and signatures --------------------------------------------------------------


def twiml_connect(stream_url: str, action_url: str, token: str) -> str:
    """The answer to the voice webhook: connect the call to our stream."""
    response = VoiceResponse()
    connect = Connect(action=action_url)
    stream = connect.stream(url=stream_url)
    stream.parameter(name=TOKEN_PARAMETER, value=token)
    response.append(connect)
    return str(response)


def twiml_next(transfer_to: str | None) -> str:
    """What Twilio does once our stream ends: dial the transfer target, or hang up."""
    response = VoiceResponse()
    if transfer_to is None:
        response.hangup()
        return str(response)
    dial = Dial()
    scheme, _, address = transfer_to.partition(":")
    if scheme.lower() == "tel":
        dial.number(address)
    else:
        dial.sip(transfer_to)
    response.append(dial)
    return str(response)


def twiml_busy() -> str:
    """The answer to a call when every line is taken."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def signature_ok(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    """Whether ``X-Twilio-Signature`` signs this URL and form with the auth token.

    A URL that does not parse (its host comes from the request's ``Host``
    header, which a client may forge as ``[``) signs nothing: no match.
    """
    try:
        return bool(RequestValidator(auth_token).validate(url, dict(params), signature))
    except ValueError:
        return False


def signature_for(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send (for the simulated carrier)."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


# --- one call's stream ---------------------------------------------------------------------


class TwilioLeg:
    """One Twilio call's Media Stream and controls (see the module docstring).

    Attributes:
        call: the call.
        token: the secret its stream must present.
        sink: the session's audio sink.
        ready: set once the session is up (or has failed: then ``call`` has ended).
        attached: set once the stream has started.
        next_twiml: what Twilio is told to do when the stream ends.
        stats: caller frames received and dropped, malformed frames.
    """

    def __init__(self, *, lead_ms: int | None = None) -> None:
        self.call: PhoneCall | None = None
        self.token = secrets.token_urlsafe(24)
        self.sink = MarkedSink() if lead_ms is None else MarkedSink(lead_ms=lead_ms)
        self._inbound_send, self._inbound = trio.open_memory_channel[bytes](INBOUND_FRAMES)
        self.ready = trio.Event()
        self.attached = trio.Event()
        self._stop = trio.Event()
        self.next_twiml = twiml_next(None)
        self.stats = {"frames_in": 0, "frames_dropped": 0, "malformed": 0}

    @property
    def _call(self) -> PhoneCall:
        assert self.call is not None, "the leg has no call yet"
        return self.call

    async def caller_audio(self) -> AsyncIterator[bytes]:
        """The caller's mu-law for the session, :data:`APPEND_FRAMES` frames at a time."""
        frames: list[bytes] = []
        async with self._inbound:
            async for frame in self._inbound:
                frames.append(frame)
                if len(frames) >= APPEND_FRAMES:
                    yield b"".join(frames)
                    frames.clear()
        if frames:
            yield b"".join(frames)

    # --- CallLeg ---------------------------------------------------------------------

    async def wait_played(self) -> None:
        await self.sink.drain()

    async def hang_up(self) -> None:
        self.next_twiml = twiml_next(None)
        self._stop.set()

    async def transfer(self, target: str) -> None:
        self.next_twiml = twiml_next(target)
        self._stop.set()
        self._call.end(f"transferred to {target}")

    def observe(self, event: SessionEvent) -> None:
        pass  # the stream itself says what was heard

    # --- the stream --------------------------------------------------------------------

    def owns(self, start: Start) -> bool:
        """Whether a stream's ``start`` presents this call's token."""
        offered = start.custom_parameters.get(TOKEN_PARAMETER, "")
        return hmac.compare_digest(offered.encode(), self.token.encode())

    async def stream(self, socket: StreamSocket, start: Start) -> None:
        """Serves the call's stream until ``stop``, a hang-up, or the socket's end."""
        self.attached.set()
        call = self._call
        reason = "the caller hung up"
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.sink.run, socket.send_text, start.stream_sid)
                nursery.start_soon(self._greet)
                nursery.start_soon(_cancel_when, nursery.cancel_scope, self._stop, call.ended)
                reason = await self._read(socket)
                nursery.cancel_scope.cancel()
        finally:
            self.sink.close()
            self._inbound_send.close()
            call.end(reason)

    async def _read(self, socket: StreamSocket) -> str:
        """Reads the stream; returns why it ended."""
        while True:
            try:
                frame = await socket.receive_text()
            except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
                return "the stream closed"
            try:
                message = parse_message(frame)
            except MediaStreamError as e:
                self.stats["malformed"] += 1
                _log.warning("call %s: ignored a malformed stream frame: %s", self._call.id, e)
                continue
            handler = _READERS.get(type(message))
            if handler is None:
                continue
            if handler(self, message):
                return "the caller hung up"

    def _media(self, message: Media) -> bool:
        self.stats["frames_in"] += 1
        try:
            self._inbound_send.send_nowait(message.payload)
        except trio.WouldBlock:
            self.stats["frames_dropped"] += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the session is closing
        return False

    def _mark(self, message: Mark) -> bool:
        self.sink.acknowledged(message.name)
        return False

    def _dtmf(self, message: Dtmf) -> bool:
        call = self._call
        event = DtmfReceived(digit=message.digit, received_at=int(time.time()))
        if call.session is not None:
            call.session.publish(event)  # the call observes it there, as on SIP
        else:
            call.press(message.digit)
        return False

    def _stop_message(self, message: Stop) -> bool:
        return True

    async def _greet(self) -> None:
        with trio.move_on_after(READY_TIMEOUT_S):
            await self.ready.wait()
        session = self._call.session
        if session is None:
            self._call.end("the session did not start")
            return
        greeting = greeting_of(session.agent)
        if greeting is not None:
            await session.create_response(greeting)


async def _cancel_when(scope: trio.CancelScope, *events: trio.Event) -> None:
    """Cancels ``scope`` once any of ``events`` is set."""
    async with trio.open_nursery() as first:
        for event in events:
            first.start_soon(_then_cancel, event, first.cancel_scope)
    scope.cancel()


async def _then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


_READERS: dict[type[object], Callable[..., bool]] = {
    Media: TwilioLeg._media,
    Mark: TwilioLeg._mark,
    Dtmf: TwilioLeg._dtmf,
    Stop: TwilioLeg._stop_message,
    Connected: lambda leg, message: False,
    Start: lambda leg, message: False,
}
"""What each message from Twilio does; ``True``: the stream is over."""


async def read_start(socket: StreamSocket) -> Start | None:
    """Reads a new stream up to its ``start`` (``None``: it never came, or was not one)."""
    with trio.move_on_after(START_TIMEOUT_S):
        while True:
            try:
                message = parse_message(await socket.receive_text())
            except MediaStreamError as e:
                _log.warning("a stream sent a malformed frame before its start: %s", e)
                return None
            except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if isinstance(message, Start):
                return message
            if not isinstance(message, Connected):
                return None
    return None
