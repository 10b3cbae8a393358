"""WAV files as a session's microphone and speaker, and pacing a source.

:class:`WavSource` is an ``audio_in`` source: a file read, converted to the
session's input format and cut into chunks at once, then handed out by
:func:`paced`, in real time by trio's clock or as fast as the session takes
them. :class:`WavSink` is an ``audio_out`` sink that plays in real time by
trio's clock, like :class:`~framework.audio.ClockSink`, and on close writes
what was heard to a WAV file.

Files are read and written whole and synchronously: they are prompts and
replies of seconds, not recordings of hours.
"""

from __future__ import annotations

import contextlib
import os
import struct
import wave
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import TracebackType

import attrs
import numpy as np
import numpy.typing as npt
import trio

from ._formats import AudioFormat, bytes_per_ms, decode, encode, sample_rate, sample_width
from ._g711 import alaw_to_pcm16, ulaw_to_pcm16
from ._resample import Samples

__all__ = ["WavSink", "WavSource", "paced", "read_wav", "write_wav"]

_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


def read_wav(path: str | os.PathLike[str]) -> tuple[Samples, int]:
    """Reads a WAV file as 16-bit mono samples and its sample rate.

    Reads integer PCM of 8, 16, 24 or 32 bits, 32- or 64-bit float, and
    G.711 mu-law and A-law, plain or in a ``WAVE_FORMAT_EXTENSIBLE`` header;
    several channels are mixed down to one.

    Raises:
        ValueError: the file is not a WAV file, or not in one of those encodings.
    """
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    header: tuple[int, int, int, int] | None = None  # tag, channels, rate, bits
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        if chunk_id == b"data" and size in (0, 0xFFFFFFFF):
            size = len(data) - position - 8  # written by a stream: the length never filled in
        body = data[position + 8 : position + 8 + size]
        if chunk_id == b"fmt " and len(body) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID's first field
            header = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if header is None:
                raise ValueError(f"{path}: data before the fmt chunk")
            return _samples(body, *header, path=path), header[2]
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    raise ValueError(f"{path}: no {'data' if header else 'fmt'} chunk")


def _samples(
    body: bytes, tag: int, channels: int, rate: int, bits: int, *, path: object
) -> Samples:
    width = (bits + 7) // 8
    if channels < 1 or rate < 1 or width < 1:
        raise ValueError(f"{path}: bad fmt chunk ({channels} channels, {rate} Hz, {bits} bits)")
    body = body[: len(body) // (width * channels) * (width * channels)]
    values: npt.NDArray[np.float64]
    if tag == _PCM and width == 1:
        values = (np.frombuffer(body, np.uint8).astype(np.float64) - 128) * 256
    elif tag == _PCM and width == 2:
        values = np.frombuffer(body, "<i2").astype(np.float64)
    elif tag == _PCM and width == 3:
        raw = np.frombuffer(body, np.uint8).reshape(-1, 3).astype(np.int32)
        # Assembled in the top 24 bits of an int32, so the sign comes out right.
        values = (raw[:, 0] << 8 | raw[:, 1] << 16 | raw[:, 2] << 24).astype(np.float64) / 65536
    elif tag == _PCM and width == 4:
        values = np.frombuffer(body, "<i4").astype(np.float64) / 65536
    elif tag == _FLOAT and width in (4, 8):
        floats = np.frombuffer(body, "<f4" if width == 4 else "<f8").astype(np.float64)
        values = np.nan_to_num(floats) * 32768
    elif tag in (_ULAW, _ALAW) and width == 1:
        pcm = ulaw_to_pcm16(body) if tag == _ULAW else alaw_to_pcm16(body)
        values = np.frombuffer(pcm, "<i2").astype(np.float64)
    else:
        raise ValueError(f"{path}: unsupported WAV encoding (format {tag:#x}, {bits} bits)")
    mono = values.reshape(-1, channels).mean(axis=1)
    samples: Samples = np.clip(np.rint(mono), -32768, 32767).astype(np.int16)
    return samples


def write_wav(path: str | os.PathLike[str], samples: npt.ArrayLike, rate: int) -> None:
    """Writes 16-bit mono samples to a PCM WAV file."""
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, dtype=np.int16).astype("<i2").tobytes())


async def paced(
    chunks: Iterable[bytes], bytes_per_ms: int, *, realtime: bool = True
) -> AsyncIterator[bytes]:
    """Hands out audio chunks in real time by trio's clock, or as fast as taken.

    In real time a chunk is handed out when its last sample would have been
    captured, counted from the first request: chunk ``n`` of 20 ms at
    ``start + (n + 1) * 20 ms``. Each time is computed from the start, not
    slept chunk by chunk, so a slow consumer does not make the stream drift;
    it catches up instead, as a microphone's buffer would.
    """
    start = trio.current_time()
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        if realtime:
            await trio.sleep_until(start + sent / bytes_per_ms / 1000)
        else:
            await trio.lowlevel.checkpoint()
        yield chunk


class WavSource:
    """A WAV file as a session's ``audio_in``, in the session's input format.

    The file is read, mixed down, resampled and encoded when the source is
    made, so a missing or unreadable file fails there, not in the session.
    Each ``async for`` plays it from the start.

    Args:
        path: the WAV file (see :func:`read_wav` for the encodings it reads).
        fmt: the session's input format (default PCM16 at 24 kHz).
        chunk_ms: the length of each chunk handed out.
        realtime: pace the chunks by trio's clock; otherwise as fast as taken.
        tail_silence_ms: silence appended after the file, so that server VAD
            hears the turn end.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fmt: AudioFormat = None,
        chunk_ms: int = 20,
        realtime: bool = True,
        tail_silence_ms: int = 0,
    ) -> None:
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
        self.path = Path(path)
        self.fmt = fmt
        self.chunk_ms = chunk_ms
        self.realtime = realtime
        self.bytes_per_ms = bytes_per_ms(fmt)
        samples, rate = read_wav(path)
        silence = np.zeros(tail_silence_ms * sample_rate(fmt) // 1000, dtype=np.int16)
        self.audio = encode(samples, fmt, rate=rate) + encode(silence, fmt, rate=sample_rate(fmt))
        """The whole stream in the wire format, tail silence included."""

    @property
    def duration_ms(self) -> int:
        return len(self.audio) // self.bytes_per_ms

    def chunks(self) -> list[bytes]:
        """The stream cut into chunks of ``chunk_ms`` (the last may be shorter)."""
        size = self.chunk_ms * self.bytes_per_ms
        return [self.audio[i : i + size] for i in range(0, len(self.audio), size)]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return paced(self.chunks(), self.bytes_per_ms, realtime=self.realtime)


@attrs.define
class _Played:
    item_id: str
    start: float  # clock time its first sample plays
    audio: bytes  # wire bytes, cut to what was heard by a clear()
    fmt: AudioFormat

    @property
    def ms(self) -> float:
        return len(self.audio) / bytes_per_ms(self.fmt)


class WavSink:
    """An ``audio_out`` sink that plays by trio's clock and saves what was heard.

    Playback is timed like :class:`~framework.audio.ClockSink`: each chunk
    starts when the previous one ends, or when it arrives if the sink had
    gone quiet, so ``played_ms`` is what a listener would have heard and
    barge-in truncates at the right place. The file gets exactly that audio:
    items in the order they played, each cut where ``clear()`` stopped it
    (the silences between them are not kept). It is written on close, as
    16-bit PCM at the wire rate (G.711 is decoded, at 8 kHz).

    ``aclose()`` first waits for the queued audio to play out; ``close()``
    stops at once, as ``clear()`` would, then writes. Either way it is
    written once; writing to a closed sink raises ``trio.ClosedResourceError``.

    Args:
        path: the WAV file to write; it is opened at once, so that a path that
            cannot be written fails here, before any audio is lost.
        fmt: the format of the audio it gets (default PCM16 at 24 kHz); a
            session sets it to its own.

    Raises:
        OSError: the file cannot be written.
    """

    def __init__(self, path: str | os.PathLike[str], *, fmt: AudioFormat = None) -> None:
        self.path = Path(path)
        # Appending creates the file without truncating one that is there; the
        # audio replaces it on close.
        self.path.open("ab").close()
        self.fmt = fmt
        self._rate = sample_rate(fmt)  # of the file: the first format's
        self._played: list[_Played] = []
        self._end = 0.0
        self._closed = False

    @property
    def bytes_per_ms(self) -> int:
        """Bytes of one millisecond of audio in its format."""
        return bytes_per_ms(self.fmt)

    def set_format(self, fmt: AudioFormat) -> None:
        """Reads what is written from now on as ``fmt``."""
        self.fmt = fmt

    def write(self, item_id: str, audio: bytes) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the WAV sink is closed")
        start = max(trio.current_time(), self._end)
        played = _Played(item_id, start, bytes(audio), self.fmt)
        self._played.append(played)
        self._end = start + played.ms / 1000

    def clear(self) -> None:
        self._cut(trio.current_time())

    def played_ms(self, item_id: str) -> int:
        now = trio.current_time()
        total = sum(
            min(p.ms, (now - p.start) * 1000)
            for p in self._played
            if p.item_id == item_id and p.start < now
        )
        return int(total + 1e-6)  # float time: 0.06 s is 59.99... ms

    @property
    def playing(self) -> bool:
        return trio.current_time() < self._end

    @property
    def playing_item(self) -> str | None:
        now = trio.current_time()
        for played in reversed(self._played):
            if played.start <= now:
                return played.item_id if now < played.start + played.ms / 1000 else None
        return None

    async def drain(self) -> None:
        """Returns once everything queued so far has played."""
        await trio.sleep_until(self._end)

    def close(self) -> None:
        """Stops playback now and writes the file (once)."""
        if self._closed:
            return
        self._closed = True
        # Outside trio there is no clock to cut by: everything queued counts.
        with contextlib.suppress(RuntimeError):
            self._cut(trio.current_time())
        pieces = [decode(p.audio, p.fmt, rate=self._rate) for p in self._played]
        write_wav(self.path, np.concatenate(pieces) if pieces else np.zeros(0), self._rate)

    async def aclose(self) -> None:
        """Waits for the queued audio to play out, then writes the file.

        If cancelled while waiting, it writes what was heard until then.
        """
        try:
            if not self._closed:
                await trio.sleep_until(self._end)
        finally:
            self.close()

    async def __aenter__(self) -> WavSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _cut(self, now: float) -> None:
        kept: list[_Played] = []
        for p in self._played:
            if p.start >= now:
                continue  # never played
            frames = int((now - p.start) * sample_rate(p.fmt) + 1e-6)
            kept.append(attrs.evolve(p, audio=p.audio[: frames * sample_width(p.fmt)]))
        self._played = kept
        self._end = min(self._end, now)
