"""A simulated Twilio: a caller dialling a phone endpoint, offline.

:func:`dial` does what Twilio does for an incoming call: it POSTs the voice
webhook (signed with the auth token, as ``X-Twilio-Signature``), reads the
TwiML answer, opens the ``<Stream>`` WebSocket with its custom parameters,
and then plays the caller's part until the stream ends, when it POSTs the
``<Connect action>`` URL and keeps what Twilio would do next
(:attr:`TwilioCaller.next_twiml`).

The :class:`TwilioCaller` plays the call as Twilio does, in real time:

* **the caller's voice**: one 20 ms ``media`` frame every 20 ms, from what
  :meth:`TwilioCaller.say` queued (a WAV's mu-law, say), silence otherwise;
  keypad presses as ``dtmf``;
* **the line**: the endpoint's ``media`` frames join a playout buffer and
  play back to back in real time; after a gap, a frame starts playing
  ``playout_delay_ms`` after it arrived (a jitter buffer). A ``mark`` is
  echoed once the audio before it has played; ``clear`` stops the frame
  playing at once, drops the rest and echoes every mark still waiting;
* **what was heard**: :attr:`TwilioCaller.heard` holds every byte played, and
  :meth:`TwilioCaller.recording` the line as a timeline (silence where
  nothing played), for a WAV; :attr:`TwilioCaller.heard_by_item` counts, per
  assistant item (the endpoint names its marks ``<item>:<end byte>``), the
  bytes the caller really heard, which is the truth a barge-in's truncation
  is measured against.

Bounds: the recording and :attr:`TwilioCaller.heard` keep at most
``max_record_s`` seconds; the latest :data:`KEPT` clears and mark echoes are
kept (and the echoes counted).
"""

from __future__ import annotations

import logging
import math
import secrets
import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol
from urllib.parse import urlsplit

import attrs
import httpx2
import trio
import trio_websocket

from framework.errors import CantataError

from ._media import (
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaStreamError,
    Start,
    Stop,
    dump_message,
    parse_message,
)
from ._twilio import signature_for

_log = logging.getLogger("cantata.telephony")

FRAME_BYTES = 160
FRAME_S = 0.02
SILENCE = b"\xff"
"""Mu-law silence (the code for zero)."""
KEPT = 1000
"""The latest clears and mark echoes kept for inspection."""
PLAYED_KEPT = 500
"""Frames whose play times :meth:`TwilioCaller.heard_at` can look back on (10 s)."""
PLAYOUT_DELAY_MS = 60
"""How long a frame that arrives to an idle line waits before it plays."""


class DialError(CantataError):
    """The simulated call could not be placed; the message says why."""


class TextSocket(Protocol):
    """A WebSocket as the caller sees it (text frames)."""

    async def receive_text(self) -> str: ...

    async def send_text(self, text: str) -> None: ...


@attrs.define
class _Queued:
    """An entry of the playout buffer: a frame, or a mark after the frames before it."""

    audio: bytes = b""
    mark: str | None = None
    arrived: float = 0.0


@attrs.frozen
class _Played:
    """A frame the caller heard: whose, when it began, and the item's bytes before it."""

    item_id: str
    began: float
    before: int
    length: int


@attrs.frozen(kw_only=True)
class HeardClear:
    """A ``clear`` the caller got: when, and how much of the playing item it had heard."""

    at: float
    item_id: str | None
    heard_bytes: int


class TwilioCaller:
    """The caller's side of a simulated call (see the module docstring).

    Args:
        socket: the stream's WebSocket.
        start: the ``start`` message this call sends.
        playout_delay_ms: a frame arriving to an idle line waits this long.
        max_record_s: the longest timeline :meth:`recording` keeps.
    """

    def __init__(
        self,
        socket: TextSocket,
        start: Start,
        *,
        playout_delay_ms: int = PLAYOUT_DELAY_MS,
        max_record_s: float = 600.0,
    ) -> None:
        self._socket = socket
        self.start = start
        self._delay = playout_delay_ms / 1000
        self._max_record = int(max_record_s * 8000)
        self._outgoing: deque[bytes] = deque()
        self._buffer: deque[_Queued] = deque()
        self._arrived = trio.Event()
        self._clearing = trio.CancelScope()
        self._running = trio.CancelScope()
        self._playing: tuple[_Queued, float] | None = None
        self._said = trio.Event()
        self._sequence = 1
        self._t0 = 0.0
        self._timeline = bytearray()
        self.heard = bytearray()
        self.heard_by_item: dict[str, int] = {}
        self._last_item: str | None = None
        self._played: deque[_Played] = deque(maxlen=PLAYED_KEPT)
        self.clears: deque[HeardClear] = deque(maxlen=KEPT)
        self.marks_echoed: deque[str] = deque(maxlen=KEPT)
        self.marks_acknowledged = 0
        self.ended = trio.Event()
        self.end_reason = ""
        self.next_twiml = ""
        self.on_mark: Callable[[str, float], None] | None = None
        self.on_media: Callable[[Media, float], None] | None = None

    # --- the caller's part -----------------------------------------------------------

    async def say(self, audio: bytes) -> None:
        """Speaks mu-law ``audio`` in real time; returns once all of it was sent."""
        for i in range(0, len(audio), FRAME_BYTES):
            self._outgoing.append(audio[i : i + FRAME_BYTES].ljust(FRAME_BYTES, SILENCE))
        while self._outgoing and not self.ended.is_set():
            said = self._said = trio.Event()
            await said.wait()

    async def press(self, digits: str) -> None:
        """Presses keypad keys, one ``dtmf`` message each."""
        for digit in digits:
            await self._send(Dtmf(stream_sid=self.start.stream_sid, digit=digit))

    async def hang_up(self) -> None:
        """Ends the stream from the caller's side (``stop``)."""
        if not self.ended.is_set():
            await self._send(
                Stop(
                    stream_sid=self.start.stream_sid,
                    call_sid=self.start.call_sid,
                    account_sid=self.start.account_sid,
                )
            )
            self._end("the caller hung up")

    def heard_at(self, item_id: str, at: float) -> int:
        """Bytes of ``item_id`` the caller had heard at clock time ``at`` (recent frames only)."""
        for frame in reversed(self._played):
            if frame.item_id == item_id and frame.began <= at:
                return frame.before + min(frame.length, int((at - frame.began) * 8000))
        return 0

    def recording(self) -> bytes:
        """The line as the caller heard it, from the stream's start (mu-law, 8 kHz)."""
        return bytes(self._timeline)

    # --- running ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Plays the call until the stream ends (either side)."""
        self._t0 = trio.current_time()
        await self._socket.send_text(dump_message(Connected()))
        await self._send(self.start)
        try:
            async with trio.open_nursery() as nursery:
                self._running = nursery.cancel_scope
                nursery.start_soon(self._speak)
                nursery.start_soon(self._play)
                task_status.started()
                await self._listen()
                nursery.cancel_scope.cancel()
        finally:
            self._end("the stream closed")

    async def _send(self, message: Start | Media | Dtmf | Stop | Mark) -> None:
        self._sequence += 1
        numbered = attrs.evolve(message, sequence_number=str(self._sequence))
        try:
            await self._socket.send_text(dump_message(numbered))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The endpoint closed the stream (a hang-up): the call is over, not broken.
            self._end("the stream closed")
            self._running.cancel()

    async def _speak(self) -> None:
        """One frame every 20 ms: what was queued, else silence."""
        chunk = 0
        while True:
            chunk += 1
            await trio.sleep_until(self._t0 + chunk * FRAME_S)
            frame = self._outgoing.popleft() if self._outgoing else SILENCE * FRAME_BYTES
            if not self._outgoing:
                self._said.set()
            await self._send(
                Media(
                    stream_sid=self.start.stream_sid,
                    payload=frame,
                    track="inbound",
                    chunk=str(chunk),
                    timestamp=str(round(chunk * FRAME_S * 1000)),
                )
            )

    async def _listen(self) -> None:
        while True:
            try:
                text = await self._socket.receive_text()
            except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
                return
            try:
                message = parse_message(text)
            except MediaStreamError as e:
                raise DialError(f"the endpoint sent a malformed frame: {e}") from None
            now = trio.current_time()
            if isinstance(message, Media):
                if self.on_media is not None:
                    self.on_media(message, now)
                self._buffer.append(_Queued(audio=message.payload, arrived=now))
            elif isinstance(message, Mark):
                self._buffer.append(_Queued(mark=message.name, arrived=now))
            elif isinstance(message, Clear):
                self._clear(now)
            self._arrived.set()

    async def _play(self) -> None:
        """The line: frames back to back in real time, marks echoed as their audio ends."""
        line_free = -math.inf  # when the frame playing now ends
        while True:
            if not self._buffer:
                arrived = self._arrived = trio.Event()
                await arrived.wait()
                continue
            entry = self._buffer[0]
            if entry.mark is not None:
                self._buffer.popleft()
                await self._echo(entry.mark)
                continue
            now = trio.current_time()
            begin = line_free if line_free >= now else max(now, entry.arrived + self._delay)
            self._playing = (entry, begin)
            length = len(entry.audio) / 8000
            self._clearing = trio.CancelScope()
            with self._clearing:
                await trio.sleep_until(begin + length)
            if self._clearing.cancelled_caught:
                line_free = -math.inf
                continue
            self._buffer.popleft()
            self._playing = None
            self._heard(entry.audio, begin, self._next_mark())
            line_free = begin + length

    def _next_mark(self) -> str | None:
        """The item the frame at the head belongs to: the name of the next mark queued."""
        for queued in self._buffer:
            if queued.mark is not None:
                return queued.mark
        return None

    def _heard(self, audio: bytes, began: float, mark: str | None) -> None:
        if len(self.heard) + len(audio) <= self._max_record:
            self.heard += audio
        if mark is not None:
            item = self._last_item = mark.rpartition(":")[0]
            before = self.heard_by_item.get(item, 0)
            self.heard_by_item[item] = before + len(audio)
            self._played.append(_Played(item, began, before, len(audio)))
        offset = round((began - self._t0) * 8000)
        if offset + len(audio) <= self._max_record:
            if len(self._timeline) < offset:
                self._timeline += SILENCE * (offset - len(self._timeline))
            self._timeline[offset : offset + len(audio)] = audio

    def _clear(self, now: float) -> None:
        playing = self._playing
        if playing is not None and playing[1] <= now:
            entry, began = playing
            self._heard(entry.audio[: int((now - began) * 8000)], began, self._next_mark())
        # Between two frames (or after the last) the item is the one heard last.
        item = self._last_item
        heard = self.heard_by_item.get(item, 0) if item is not None else 0
        self.clears.append(HeardClear(at=now, item_id=item, heard_bytes=heard))
        marks = [q.mark for q in self._buffer if q.mark is not None]
        self._buffer.clear()
        if self._playing is not None:
            self._clearing.cancel()  # the line stops now
        self._playing = None
        # Twilio echoes the marks a clear dropped (Media Streams, "clear").
        self._buffer.extend(_Queued(mark=m, arrived=now) for m in marks)

    async def _echo(self, name: str) -> None:
        self.marks_echoed.append(name)
        self.marks_acknowledged += 1
        if self.on_mark is not None:
            self.on_mark(name, trio.current_time())
        await self._send(Mark(stream_sid=self.start.stream_sid, name=name))

    def _end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()


# --- dialling over the network -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Answer:
    stream_url: str
    action_url: str | None
    parameters: dict[str, str]


def _read_twiml(text: str) -> _Answer | str:
    """The ``<Connect><Stream>`` of a TwiML answer, or the verb that refused the call."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as e:
        raise DialError(f"the voice webhook did not answer TwiML: {e}") from None
    connect = root.find("Connect")
    stream = connect.find("Stream") if connect is not None else None
    if connect is None or stream is None:
        verbs = [child.tag for child in root]
        return f"no <Connect><Stream> in the answer ({', '.join(verbs) or 'empty'})"
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return _Answer(
        stream_url=stream.get("url", ""), action_url=connect.get("action"), parameters=params
    )


class _WebSocket:
    """trio-websocket as a :class:`TextSocket`."""

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self._connection = connection

    async def receive_text(self) -> str:
        try:
            message = await self._connection.get_message()
        except trio_websocket.ConnectionClosed:
            raise trio.EndOfChannel from None
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def send_text(self, text: str) -> None:
        try:
            await self._connection.send_message(text)
        except trio_websocket.ConnectionClosed:
            raise trio.BrokenResourceError("the stream closed") from None


@asynccontextmanager
async def dial(
    base_url: str,
    *,
    auth_token: str,
    caller: str = "+14155550100",
    callee: str = "+14155550199",
    call_sid: str | None = None,
    playout_delay_ms: int = PLAYOUT_DELAY_MS,
    timeout_s: float = 30.0,
) -> AsyncIterator[TwilioCaller]:
    """Places a simulated Twilio call to the phone endpoint at ``base_url``.

    Yields the caller once its stream has started; the call plays in the
    background until the stream ends or the block is left (the caller then
    hangs up). Once the stream has ended, Twilio's ``action`` request is
    made and its answer kept in ``next_twiml``.

    Raises:
        DialError: the webhook refused the call, or did not answer TwiML that
            connects a stream.
    """
    call_sid = call_sid or f"CA{secrets.token_hex(16)}"
    account_sid = f"AC{secrets.token_hex(16)}"
    form = {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": caller,
        "To": callee,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    async with httpx2.AsyncClient(timeout=timeout_s) as http:
        answer = await _post_signed(http, base_url.rstrip("/") + "/twilio/voice", form, auth_token)
        read = _read_twiml(answer)
        if isinstance(read, str):
            raise DialError(f"the call was not connected: {read}")
        start = Start(
            stream_sid=f"MZ{secrets.token_hex(16)}",
            call_sid=call_sid,
            account_sid=account_sid,
            custom_parameters=read.parameters,
        )
        async with open_media_stream(read.stream_url, timeout_s) as connection:
            call = TwilioCaller(_WebSocket(connection), start, playout_delay_ms=playout_delay_ms)
            async with trio.open_nursery() as nursery:
                await nursery.start(call.run)
                try:
                    yield call
                finally:
                    if not call.ended.is_set():
                        await call.hang_up()
                    nursery.cancel_scope.cancel()
        if read.action_url:
            call.next_twiml = await _post_signed(
                http, read.action_url, {**form, "CallStatus": "in-progress"}, auth_token
            )


@asynccontextmanager
async def open_media_stream(
    url: str, timeout_s: float = 30.0
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A WebSocket to a Media Streams endpoint (``ws://``), as Twilio opens it.

    The connection is on a TCP stream this function owns and always closes.

    trio-websocket's client leaves its socket open after a close the server
    began (it waits for the server's TCP close and then only stops reading),
    so the socket is closed here, as the Realtime transport does.

    Raises:
        DialError: the endpoint cannot be reached or refuses the WebSocket.
    """
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    resource = target.path + (f"?{target.query}" if target.query else "")
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as e:
        raise DialError(f"cannot open the stream {url}: {e or 'timed out'}") from None
    try:
        async with trio.open_nursery() as nursery:
            try:
                connection = await trio_websocket.wrap_client_stream(
                    nursery, stream, target.netloc, resource
                )
            except trio_websocket.HandshakeError as e:
                raise DialError(f"the stream {url} refused the connection: {e}") from None
            try:
                yield connection
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await connection.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


async def _post_signed(
    http: httpx2.AsyncClient, url: str, form: dict[str, str], auth_token: str
) -> str:
    headers = {"x-twilio-signature": signature_for(auth_token, url, form)}
    try:
        response = await http.post(url, data=form, headers=headers)
    except httpx2.HTTPError as e:
        raise DialError(f"cannot reach {url}: {e}") from None
    if response.status_code != 200:
        raise DialError(f"{url} answered {response.status_code}: {response.text[:200]}")
    return response.text
