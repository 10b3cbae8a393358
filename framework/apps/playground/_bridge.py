"""One browser tab, one agent session: the WebSocket between them.

The page sends JSON control messages as text frames (a typed message, an
approval, where playback stands) and microphone audio as binary frames
(PCM16, 24 kHz, mono). The bridge sends back every session event as JSON,
the assistant's audio as binary frames (the item id in front of the PCM,
see :func:`audio_frame`), and the session's metrics after each turn.

The page faces the network: a message that is not JSON, too large, of an
unknown type or with a wrongly typed field gets an ``error`` message naming
what was wrong, and the session goes on.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import numpy as np
import orjson
import trio

from framework.audio import AudioFormat, Decoder, Encoder, bytes_per_ms
from framework.errors import ConnectionClosed
from framework.protocol import (
    UNSET,
    AudioPCM,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeSessionCreateRequest,
    ServerVad,
    SessionUpdateEvent,
    WireObject,
    to_dict,
)
from framework.runtime import ServerEventReceived, Session, SessionEvent, TurnMeasured

_log = logging.getLogger("cantata.playground")

PAGE_RATE = 24000
"""The page captures and plays PCM16 at 24 kHz, mono."""
BYTES_PER_MS = 48
"""Bytes of one millisecond of the page's audio."""
MAX_CONTROL_BYTES = 64 * 1024
"""The largest control message taken; a longer one is refused with an error."""
MAX_AUDIO_FRAME_MS = 1000
"""The longest microphone frame taken (the page sends about 40 ms at a time)."""
ITEMS_KEPT = 64
"""Assistant items whose playback the sink remembers (a barge-in cuts the latest)."""
OUTBOX = 512
"""Messages queued for a page that reads slowly; beyond it, audio is dropped
(counted) and events wait, so the session's hub drops the oldest for us."""
_ELIDED = ("response.output_audio.delta", "response.audio.delta")


def plain(value: object) -> Any:
    """``value`` as JSON data: attrs classes as dicts, wire objects as on the wire.

    Infinite numbers (a deadline that never comes) become ``None``; anything
    else unknown becomes its ``str``, so that one odd value cannot stop the page.
    """
    if isinstance(value, WireObject):
        return to_dict(value)
    if attrs.has(type(value)):
        return {f.name: plain(getattr(value, f.name)) for f in attrs.fields(type(value))}  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    return str(value)


class BadMessage(Exception):
    """A message from the page the bridge cannot act on; the page is told why."""


def _is_page_format(fmt: AudioFormat) -> bool:
    return fmt is None or (isinstance(fmt, AudioPCM) and fmt.rate in (PAGE_RATE, UNSET))


def audio_frame(item_id: str, pcm: bytes) -> bytes:
    """The binary frame of assistant audio: id length (1 byte), the id, the PCM."""
    name = item_id.encode()[:255]
    return bytes([len(name)]) + name + pcm


class BrowserSink:
    """An audio sink whose speaker is the page: it knows what the page has played.

    The page's playback worklet counts the samples it has played of each
    item and reports them (``played`` messages, several times a second and
    when playback stops). Between reports the position runs on with the
    clock, capped at what was sent, so a barge-in truncates within a few
    milliseconds of what the user heard.

    The page plays PCM16 at 24 kHz; audio in another format (G.711 for a
    phone agent) is converted on its way, and counted in its own format.
    """

    def __init__(self, send: Callable[[bytes | str], bool], fmt: AudioFormat = None) -> None:
        self._send = send
        self.bytes_per_ms = bytes_per_ms(fmt)
        self._decoder = None if _is_page_format(fmt) else Decoder(fmt, rate=PAGE_RATE)
        self._sent: dict[str, int] = {}  # bytes sent per item
        self._heard: dict[str, float] = {}  # ms the page last said it played, per item
        self._item: str | None = None  # the item the page plays now
        self._reported_at = 0.0
        self._running = False  # the page was playing at its last report
        self._end = 0.0  # when what was sent will have played, by our clock
        self.dropped_bytes = 0

    def write(self, item_id: str, audio: bytes) -> None:
        pcm = audio if self._decoder is None else self._decoder.decode(audio).tobytes()
        if not self._send(audio_frame(item_id, pcm)):
            self.dropped_bytes += len(audio)
            return
        if item_id not in self._sent and len(self._sent) >= ITEMS_KEPT:
            oldest = next(iter(self._sent))
            del self._sent[oldest]
            self._heard.pop(oldest, None)
        self._sent[item_id] = self._sent.get(item_id, 0) + len(audio)
        now = trio.current_time()
        self._end = max(now, self._end) + len(audio) / self.bytes_per_ms / 1000
        if self._item is None:
            self._item = item_id
            self._reported_at, self._running = now, True

    def clear(self) -> None:
        # Freeze the position where it stands now; the page stops on "clear".
        if self._item is not None:
            self._heard[self._item] = self.played_ms(self._item)
        self._running = False
        self._item = None
        self._end = trio.current_time()
        self._send(orjson.dumps({"type": "clear"}).decode())

    def report(self, item_id: str, played_ms: float, playing: bool) -> None:
        """What the page says it has played of ``item_id`` (a ``played`` message)."""
        if item_id not in self._sent:
            raise BadMessage(f"no audio was sent for item {item_id!r}")
        self._heard[item_id] = min(float(played_ms), self._sent[item_id] / self.bytes_per_ms)
        self._item = item_id if playing else None
        self._running = playing
        self._reported_at = trio.current_time()
        if not playing:
            self._end = min(self._end, self._reported_at)

    def played_ms(self, item_id: str) -> int:
        heard = self._heard.get(item_id, 0.0)
        if self._running and item_id == self._item:
            heard += (trio.current_time() - self._reported_at) * 1000
        return round(min(heard, self._sent.get(item_id, 0) / self.bytes_per_ms))

    @property
    def playing(self) -> bool:
        return self._running or trio.current_time() < self._end

    @property
    def playing_item(self) -> str | None:
        return self._item if self.playing else None


def encode_event(event: SessionEvent, now: float) -> dict[str, Any]:
    """A session event as the page reads it: its class name and its fields.

    Deadlines (trio clock) become ``expires_in_s``; raw audio deltas keep
    their size, not their audio, so the event log stays readable.
    """
    if isinstance(event, ServerEventReceived):
        data = to_dict(event.event)
        if data.get("type") in _ELIDED and isinstance(data.get("delta"), str):
            data["delta"] = f"<{len(data['delta']) * 3 // 4} bytes of audio>"
        return {"type": "event", "kind": "ServerEvent", "data": data}
    data = plain(event)
    request = data.get("request")
    if isinstance(request, dict) and "deadline" in request:
        deadline = request.pop("deadline")  # None when there is none (inf: see plain)
        request["expires_in_s"] = None if deadline is None else round(deadline - now, 3)
    return {"type": "event", "kind": type(event).__name__, "data": data}


def _field(
    message: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = attrs.NOTHING
) -> Any:
    value = message.get(name, default)
    if value is attrs.NOTHING:
        raise BadMessage(f"a {message['type']!r} message needs {name!r}")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # JSON's true and false are not numbers here, though Python's bool is an int.
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        expected = " or ".join(k.__name__ for k in kinds)
        raise BadMessage(f"{message['type']}.{name}: expected {expected}")
    return value


@attrs.define(eq=False)
class Bridge:
    """Runs one page's session: the page's messages in, the session's events out.

    Args:
        session: the open agent session.
        sink: its audio sink (the page's speaker).
        send_wait: queues a message for the page, waiting while the queue is full.
    """

    session: Session
    sink: BrowserSink
    send_wait: Callable[[str], Awaitable[None]]
    encoder: Encoder | None = None
    """Turns the page's microphone into the session's input format (``None``: it is)."""
    ending: bool = False
    """The page asked to end the session (its recording is then offered)."""

    async def forward_events(self) -> None:
        """Every session event to the page; the metrics after each turn."""
        async for event in self.session:
            try:
                frame = orjson.dumps(encode_event(event, trio.current_time())).decode()
            except (TypeError, ValueError, orjson.JSONEncodeError) as e:
                # An event the page cannot be shown is named, not allowed to end the session.
                _log.warning("could not show %s on the page: %s", type(event).__name__, e)
                kind = type(event).__name__
                frame = orjson.dumps({"type": "event", "kind": kind, "data": {}}).decode()
            await self.send_wait(frame)
            if isinstance(event, TurnMeasured):
                await self.send_metrics()

    async def send_metrics(self) -> None:
        metrics = self.session.metrics
        summary = {
            "turns": metrics.turn_count,
            "usage": plain(metrics.usage),
            "cost_usd": metrics.cost_usd,
            "interruptions": metrics.interruptions,
            "reconnects": metrics.reconnects,
            "audio_dropped_bytes": self.sink.dropped_bytes,
        }
        await self.send_wait(orjson.dumps({"type": "metrics", "session": summary}).decode())

    async def receive(self, frame: str | bytes) -> None:
        """Acts on one frame from the page; a bad one is answered with an ``error``."""
        try:
            if isinstance(frame, bytes):
                await self._audio(frame)
            else:
                await self._control(frame)
        except BadMessage as e:
            await self.send_wait(orjson.dumps({"type": "error", "message": str(e)}).decode())
        except ConnectionClosed:
            raise
        except Exception as e:
            # A fault of ours on one message must not end the session the page holds.
            _log.warning("the playground failed on a message from the page", exc_info=True)
            failed = f"the playground failed on this message ({type(e).__name__}); see its log"
            await self.send_wait(orjson.dumps({"type": "error", "message": failed}).decode())

    async def _audio(self, frame: bytes) -> None:
        if len(frame) % 2 or len(frame) > MAX_AUDIO_FRAME_MS * BYTES_PER_MS:
            raise BadMessage(
                "audio frames are PCM16 at 24 kHz: an even number of bytes, "
                f"at most {MAX_AUDIO_FRAME_MS} ms each"
            )
        if frame and self.encoder is not None:
            frame = self.encoder.encode(np.frombuffer(frame, dtype="<i2"))
        if frame:
            await self.session.send_audio(frame)

    async def _control(self, frame: str) -> None:
        if len(frame) > MAX_CONTROL_BYTES:
            raise BadMessage(f"control messages are at most {MAX_CONTROL_BYTES} bytes")
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError as e:
            raise BadMessage(f"not JSON: {e}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadMessage('a control message is a JSON object with a "type"')
        handler = _HANDLERS.get(message["type"])
        if handler is None:
            raise BadMessage(
                f"unknown message type {message['type'][:40]!r}; known: {', '.join(_HANDLERS)}"
            )
        await handler(self, message)

    # --- what the page asks (one handler per message type) ---------------------------

    async def _text(self, message: dict[str, Any]) -> None:
        text = _field(message, "text", str).strip()
        if not text:
            raise BadMessage("text: empty")
        await self.session.send_text(text)

    async def _decide(self, message: dict[str, Any]) -> None:
        call_id = _field(message, "call_id", str)
        try:
            if message["type"] == "approve":
                self.session.approve(call_id, always=_field(message, "always", bool, False))
            else:
                reason = _field(message, "reason", str, "the user declined")
                self.session.reject(call_id, reason[:500])
        except KeyError:
            raise BadMessage(
                f"no approval waits for call {call_id[:60]!r}: answered or timed out"
            ) from None

    async def _played(self, message: dict[str, Any]) -> None:
        played = _field(message, "ms", (int, float))
        if not 0 <= played < 1e9:
            raise BadMessage("played.ms: out of range")
        self.sink.report(
            _field(message, "item", str), played, _field(message, "playing", bool, False)
        )

    async def _interrupt(self, message: dict[str, Any]) -> None:
        await self.session.interrupt()

    async def _commit(self, message: dict[str, Any]) -> None:
        await self.session.commit()

    async def _answer(self, message: dict[str, Any]) -> None:
        question = _field(message, "id", str)
        action = _field(message, "action", str)
        try:
            if action == "accept":
                content = _field(message, "content", dict, None)
                self.session.answer_elicitation(question, content)
            elif action == "decline":
                self.session.decline_elicitation(question)
            elif action == "cancel":
                self.session.cancel_elicitation(question)
            else:
                raise BadMessage("elicitation.action: accept, decline or cancel")
        except KeyError:
            raise BadMessage(
                f"no question waits under {question[:60]!r}: answered or timed out"
            ) from None

    async def _end(self, message: dict[str, Any]) -> None:
        self.ending = True

    async def _mode(self, message: dict[str, Any]) -> None:
        mode = _field(message, "mode", str)
        if mode not in ("hands-free", "push-to-talk"):
            raise BadMessage("mode: hands-free or push-to-talk")
        # Push-to-talk is manual turns (no VAD): the page commits when the key is let go.
        detection = ServerVad() if mode == "hands-free" else None
        await self.session.send(
            SessionUpdateEvent(
                session=RealtimeSessionCreateRequest(
                    audio=RealtimeAudioConfig(
                        input=RealtimeAudioConfigInput(turn_detection=detection)
                    )
                )
            )
        )


_Handler = Callable[[Bridge, dict[str, Any]], Awaitable[None]]
_HANDLERS: dict[str, _Handler] = {
    "text": Bridge._text,
    "approve": Bridge._decide,
    "reject": Bridge._decide,
    "played": Bridge._played,
    "interrupt": Bridge._interrupt,
    "commit": Bridge._commit,
    "end": Bridge._end,
    "elicitation": Bridge._answer,
    "mode": Bridge._mode,
}


async def run_bridge(
    session: Session,
    sink: BrowserSink,
    outbox: trio.MemorySendChannel[bytes | str],
    incoming: Callable[[], Awaitable[str | bytes | None]],
    hello: dict[str, Any],
    input_format: AudioFormat = None,
) -> None:
    """Runs the page's session until the page leaves or the session ends.

    ``input_format`` is the session's input audio format, which the page's
    microphone is converted to.
    """
    encoder = None if _is_page_format(input_format) else Encoder(input_format, rate=PAGE_RATE)
    bridge = Bridge(session, sink, outbox.send, encoder)
    await outbox.send(orjson.dumps({"type": "hello", **hello}).decode())

    async def events_then_stop(cancel: trio.CancelScope) -> None:
        with contextlib.suppress(ConnectionClosed):
            await bridge.forward_events()
        cancel.cancel()  # the session ended: stop reading the page

    async with trio.open_nursery() as nursery:
        nursery.start_soon(events_then_stop, nursery.cancel_scope)
        with contextlib.suppress(ConnectionClosed):
            while not bridge.ending and (frame := await incoming()) is not None:
                await bridge.receive(frame)
        nursery.cancel_scope.cancel()


def offer(outbox: trio.MemorySendChannel[bytes | str], frame: bytes | str) -> bool:
    """Queues a frame for the page without waiting; ``False`` when it cannot."""
    try:
        outbox.send_nowait(frame)
    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True
