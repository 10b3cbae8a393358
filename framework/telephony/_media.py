"""Twilio Media Streams on the wire: the WebSocket messages, both ways.

A bidirectional stream (``<Connect><Stream>``) is JSON text frames, each with
an ``event`` discriminator. Twilio sends ``connected``, ``start`` (the call's
ids, its custom parameters and the media format), ``media`` (20 ms of the
caller's G.711 mu-law at 8 kHz, base64), ``mark`` (a mark we sent, once the
audio before it has played, or once a ``clear`` dropped it), ``dtmf`` and
``stop``. We send ``media``, ``mark`` and ``clear``. Both directions are
modelled here because the simulated carrier (:mod:`._carrier`) speaks
Twilio's side.

:func:`parse_message` reads a frame into one of the message classes (dispatch by a
table on ``event``) and raises :class:`MediaStreamError`, with the field at
fault, for anything else; :func:`dump_message` writes one. Field names follow
Twilio's (``streamSid``, ``sequenceNumber``, ``customParameters``); numbers
Twilio sends as strings are read as strings and turned into ints where used.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import attrs
import orjson
import pybase64

from framework.errors import CantataError

__all__ = [
    "Clear",
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "MediaStreamError",
    "Start",
    "Stop",
    "StreamMessage",
    "dump_message",
    "parse_message",
]


class MediaStreamError(CantataError, ValueError):
    """A frame that is not a Media Streams message; the message says why."""


@attrs.frozen(kw_only=True)
class Connected:
    """The first message of a stream: the protocol it speaks."""

    protocol: str = "Call"
    version: str = "1.0.0"


@attrs.frozen(kw_only=True)
class Start:
    """The stream's metadata, sent once after ``connected``."""

    stream_sid: str
    call_sid: str
    account_sid: str = ""
    tracks: tuple[str, ...] = ("inbound",)
    custom_parameters: Mapping[str, str] = attrs.field(factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1
    sequence_number: str = "1"


@attrs.frozen(kw_only=True)
class Media:
    """Audio: the caller's (with ``track``, ``chunk`` and ``timestamp``) or ours to play."""

    stream_sid: str
    payload: bytes
    """Raw G.711 mu-law bytes (base64 on the wire)."""
    track: str | None = None
    chunk: str | None = None
    timestamp: str | None = None
    """Milliseconds since the stream started, as Twilio sends it (a string)."""
    sequence_number: str | None = None


@attrs.frozen(kw_only=True)
class Mark:
    """A named point in our audio; Twilio sends it back once the audio before it played."""

    stream_sid: str
    name: str
    sequence_number: str | None = None


@attrs.frozen(kw_only=True)
class Clear:
    """Drops every audio frame Twilio holds for playback (barge-in)."""

    stream_sid: str


@attrs.frozen(kw_only=True)
class Dtmf:
    """A keypad key the caller pressed."""

    stream_sid: str
    digit: str
    track: str = "inbound_track"
    sequence_number: str | None = None


@attrs.frozen(kw_only=True)
class Stop:
    """The stream ended (the caller hung up, or the call moved on)."""

    stream_sid: str
    call_sid: str = ""
    account_sid: str = ""
    sequence_number: str | None = None


StreamMessage: TypeAlias = Connected | Start | Media | Mark | Clear | Dtmf | Stop


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise MediaStreamError(f"{key}: expected an object, got {type(value).__name__}")
    return value


def _text(data: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        if value is None:
            raise MediaStreamError(f"{key}: missing")
        raise MediaStreamError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _maybe_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    # Twilio sends these counters as strings; a number is read the same.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _stream(data: Mapping[str, Any]) -> str:
    return _text(data, "streamSid")


def _parse_connected(data: Mapping[str, Any]) -> Connected:
    return Connected(protocol=_text(data, "protocol", "Call"), version=_text(data, "version", ""))


def _parse_start(data: Mapping[str, Any]) -> Start:
    start = _object(data, "start")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise MediaStreamError("start.tracks: expected a list of strings")
    params = start.get("customParameters", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise MediaStreamError("start.customParameters: expected an object of strings")
    media = start.get("mediaFormat", {})
    if not isinstance(media, dict):
        raise MediaStreamError("start.mediaFormat: expected an object")
    rate = media.get("sampleRate", 8000)
    channels = media.get("channels", 1)
    if not isinstance(rate, int) or not isinstance(channels, int):
        raise MediaStreamError("start.mediaFormat: sampleRate and channels must be integers")
    return Start(
        stream_sid=_text(start, "streamSid", data.get("streamSid")),
        call_sid=_text(start, "callSid"),
        account_sid=_text(start, "accountSid", ""),
        tracks=tuple(tracks),
        custom_parameters=dict(params),
        encoding=_text(media, "encoding", "audio/x-mulaw"),
        sample_rate=rate,
        channels=channels,
        sequence_number=_maybe_text(data, "sequenceNumber") or "",
    )


def _parse_media(data: Mapping[str, Any]) -> Media:
    media = _object(data, "media")
    try:
        payload = pybase64.b64decode(_text(media, "payload"), validate=True)
    except binascii.Error:
        raise MediaStreamError("media.payload: not base64") from None
    return Media(
        stream_sid=_stream(data),
        payload=payload,
        track=_maybe_text(media, "track"),
        chunk=_maybe_text(media, "chunk"),
        timestamp=_maybe_text(media, "timestamp"),
        sequence_number=_maybe_text(data, "sequenceNumber"),
    )


def _parse_mark(data: Mapping[str, Any]) -> Mark:
    return Mark(
        stream_sid=_stream(data),
        name=_text(_object(data, "mark"), "name"),
        sequence_number=_maybe_text(data, "sequenceNumber"),
    )


def _parse_clear(data: Mapping[str, Any]) -> Clear:
    return Clear(stream_sid=_stream(data))


def _parse_dtmf(data: Mapping[str, Any]) -> Dtmf:
    dtmf = _object(data, "dtmf")
    return Dtmf(
        stream_sid=_stream(data),
        digit=_text(dtmf, "digit"),
        track=_text(dtmf, "track", "inbound_track"),
        sequence_number=_maybe_text(data, "sequenceNumber"),
    )


def _parse_stop(data: Mapping[str, Any]) -> Stop:
    stop = data.get("stop", {})
    if not isinstance(stop, dict):
        raise MediaStreamError("stop: expected an object")
    return Stop(
        stream_sid=_stream(data),
        call_sid=_text(stop, "callSid", ""),
        account_sid=_text(stop, "accountSid", ""),
        sequence_number=_maybe_text(data, "sequenceNumber"),
    )


_PARSERS: dict[str, Callable[[Mapping[str, Any]], StreamMessage]] = {
    "connected": _parse_connected,
    "start": _parse_start,
    "media": _parse_media,
    "mark": _parse_mark,
    "clear": _parse_clear,
    "dtmf": _parse_dtmf,
    "stop": _parse_stop,
}
"""How each ``event`` is read."""


def parse_message(frame: str | bytes) -> StreamMessage:
    """Reads one Media Streams frame.

    Raises:
        MediaStreamError: not JSON, not an object, an unknown ``event``, or a
            field missing or of the wrong type (the message names it).
    """
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        raise MediaStreamError(f"not JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise MediaStreamError(f"expected a JSON object, got {type(data).__name__}")
    event = data.get("event")
    parser = _PARSERS.get(event) if isinstance(event, str) else None
    if parser is None:
        known = ", ".join(_PARSERS)
        raise MediaStreamError(f"event: {event!r} is not a Media Streams event ({known})")
    return parser(data)


def _payload(data: bytes) -> str:
    return pybase64.b64encode_as_string(data)


def _with_sequence(message: dict[str, Any], sequence: str | None) -> dict[str, Any]:
    if sequence is not None:
        message["sequenceNumber"] = sequence
    return message


def _dump_connected(m: Connected) -> dict[str, Any]:
    return {"event": "connected", "protocol": m.protocol, "version": m.version}


def _dump_start(m: Start) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": m.sequence_number,
        "streamSid": m.stream_sid,
        "start": {
            "streamSid": m.stream_sid,
            "accountSid": m.account_sid,
            "callSid": m.call_sid,
            "tracks": list(m.tracks),
            "customParameters": dict(m.custom_parameters),
            "mediaFormat": {
                "encoding": m.encoding,
                "sampleRate": m.sample_rate,
                "channels": m.channels,
            },
        },
    }


def _dump_media(m: Media) -> dict[str, Any]:
    media: dict[str, Any] = {"payload": _payload(m.payload)}
    for key, value in (("track", m.track), ("chunk", m.chunk), ("timestamp", m.timestamp)):
        if value is not None:
            media[key] = value
    return _with_sequence(
        {"event": "media", "streamSid": m.stream_sid, "media": media}, m.sequence_number
    )


def _dump_mark(m: Mark) -> dict[str, Any]:
    return _with_sequence(
        {"event": "mark", "streamSid": m.stream_sid, "mark": {"name": m.name}}, m.sequence_number
    )


def _dump_clear(m: Clear) -> dict[str, Any]:
    return {"event": "clear", "streamSid": m.stream_sid}


def _dump_dtmf(m: Dtmf) -> dict[str, Any]:
    return _with_sequence(
        {"event": "dtmf", "streamSid": m.stream_sid, "dtmf": {"track": m.track, "digit": m.digit}},
        m.sequence_number,
    )


def _dump_stop(m: Stop) -> dict[str, Any]:
    stop = {"accountSid": m.account_sid, "callSid": m.call_sid}
    return _with_sequence(
        {"event": "stop", "streamSid": m.stream_sid, "stop": stop}, m.sequence_number
    )


_DUMPERS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    Connected: _dump_connected,
    Start: _dump_start,
    Media: _dump_media,
    Mark: _dump_mark,
    Clear: _dump_clear,
    Dtmf: _dump_dtmf,
    Stop: _dump_stop,
}
"""How each message is written."""


def dump_message(message: StreamMessage) -> str:
    """The frame of one message, as JSON text."""
    return orjson.dumps(_DUMPERS[type(message)](message)).decode()
