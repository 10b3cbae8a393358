"""The protocol's audio formats as bytes on the wire, to and from samples.

A format is a protocol format object (``AudioPCM``, ``AudioPCMU``,
``AudioPCMA``) or ``None``, the protocol's default (PCM16 at 24 kHz). Audio
on the application side is 16-bit mono samples at any rate, 24 kHz unless
told: :func:`encode` and :func:`decode` resample and apply the G.711 codec in
one step, and :class:`Encoder` / :class:`Decoder` do the same for a stream
of chunks (microphones, speakers).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from framework.protocol import AudioPCM, AudioPCMA, AudioPCMU, RealtimeAudioFormats

from ._g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from ._resample import Resampler, Samples, resample

__all__ = [
    "PCM_RATE",
    "AudioFormat",
    "Decoder",
    "Encoder",
    "bytes_per_ms",
    "decode",
    "encode",
    "sample_rate",
    "sample_width",
]

AudioFormat: TypeAlias = RealtimeAudioFormats | None
"""A protocol audio format; ``None`` is the protocol's default, PCM16 at 24 kHz."""

PCM_RATE = 24000
"""The rate of the protocol's PCM format, and the default rate of samples here."""

_G711_RATE = 8000


def sample_rate(fmt: AudioFormat) -> int:
    """The format's sample rate on the wire (24000 for PCM, 8000 for G.711)."""
    if fmt is None:
        return PCM_RATE
    if isinstance(fmt, AudioPCM):
        return fmt.rate if isinstance(fmt.rate, int) else PCM_RATE
    if isinstance(fmt, AudioPCMU | AudioPCMA):
        return _G711_RATE
    raise ValueError(f"unsupported audio format: {fmt!r}")


def sample_width(fmt: AudioFormat) -> int:
    """Bytes of one sample on the wire (2 for PCM16, 1 for G.711)."""
    return 1 if isinstance(fmt, AudioPCMU | AudioPCMA) else 2


def bytes_per_ms(fmt: AudioFormat) -> int:
    """Bytes of one millisecond on the wire (48 for PCM16 24 kHz, 8 for G.711)."""
    rate = sample_rate(fmt)
    if rate % 1000:
        raise ValueError(f"{rate} Hz has no whole number of bytes per millisecond")
    return rate // 1000 * sample_width(fmt)


def _pack(samples: Samples, fmt: AudioFormat) -> bytes:
    pcm = samples.astype("<i2").tobytes()
    if isinstance(fmt, AudioPCMU):
        return pcm16_to_ulaw(pcm)
    if isinstance(fmt, AudioPCMA):
        return pcm16_to_alaw(pcm)
    return pcm


def _unpack(data: bytes, fmt: AudioFormat) -> Samples:
    if isinstance(fmt, AudioPCMU):
        data = ulaw_to_pcm16(data)
    elif isinstance(fmt, AudioPCMA):
        data = alaw_to_pcm16(data)
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def encode(samples: npt.ArrayLike, fmt: AudioFormat, *, rate: int = PCM_RATE) -> bytes:
    """Encodes 16-bit mono samples at ``rate`` as wire bytes of ``fmt``."""
    return _pack(resample(samples, rate, sample_rate(fmt)), fmt)


def decode(data: bytes, fmt: AudioFormat, *, rate: int = PCM_RATE) -> Samples:
    """Decodes wire bytes of ``fmt`` to 16-bit mono samples at ``rate``."""
    width = sample_width(fmt)
    return resample(_unpack(data[: len(data) // width * width], fmt), sample_rate(fmt), rate)


class Encoder:
    """Encodes a stream of sample chunks at ``rate`` as wire bytes of ``fmt``.

    The resampler's history is kept across chunks; :meth:`flush` ends the
    stream and returns the last bytes.
    """

    def __init__(self, fmt: AudioFormat, *, rate: int = PCM_RATE) -> None:
        self.fmt = fmt
        self._resampler = Resampler(rate, sample_rate(fmt))

    def encode(self, samples: npt.ArrayLike) -> bytes:
        return _pack(self._resampler.process(samples), self.fmt)

    def flush(self) -> bytes:
        return _pack(self._resampler.flush(), self.fmt)


class Decoder:
    """Decodes a stream of wire chunks of ``fmt`` to samples at ``rate``.

    A chunk may end inside a sample (half of a PCM16 sample); that byte waits
    for the next chunk. :meth:`flush` ends the stream, :meth:`reset` drops it.
    """

    def __init__(self, fmt: AudioFormat, *, rate: int = PCM_RATE) -> None:
        self.fmt = fmt
        self._width = sample_width(fmt)
        self._resampler = Resampler(sample_rate(fmt), rate)
        self._partial = b""

    @property
    def pending(self) -> bool:
        """Whether samples wait for look-ahead (``flush`` would return some)."""
        return self._resampler.pending

    def decode(self, data: bytes) -> Samples:
        data = self._partial + data
        whole = len(data) // self._width * self._width
        self._partial = data[whole:]
        return self._resampler.process(_unpack(data[:whole], self.fmt))

    def flush(self) -> Samples:
        self._partial = b""
        return self._resampler.flush()

    def reset(self) -> None:
        self._partial = b""
        self._resampler.reset()
