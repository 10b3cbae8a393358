"""Audio as the engine sees it: the session's wire formats and the input buffer.

Input audio is kept as the bytes the client sent (what
``conversation.item.retrieve`` returns), and decoded to 16-bit samples at the
format's native rate when VAD or transcription needs them. Time is counted in
samples, so millisecond offsets are exact: 24 samples per ms for PCM, 8 for
G.711.
"""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt
import pybase64

from framework.audio import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from framework.protocol import AudioPCM, AudioPCMA, AudioPCMU

Samples = npt.NDArray[np.int16]


@attrs.frozen
class WireFormat:
    """One of the protocol's audio formats, with its rate and codec."""

    name: str  # "audio/pcm", "audio/pcmu" or "audio/pcma"
    rate: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.name == "audio/pcm" else 1

    @property
    def samples_per_ms(self) -> int:
        return self.rate // 1000

    def decode(self, data: bytes) -> Samples:
        """Wire bytes -> 16-bit samples at the native rate."""
        if self.name == "audio/pcmu":
            data = ulaw_to_pcm16(data)
        elif self.name == "audio/pcma":
            data = alaw_to_pcm16(data)
        elif len(data) % 2:
            data = data[:-1]  # a torn PCM sample is dropped, not misread
        return np.frombuffer(data, dtype="<i2")

    def encode(self, samples: Samples) -> bytes:
        """16-bit samples at the native rate -> wire bytes."""
        pcm = np.asarray(samples, dtype="<i2").tobytes()
        if self.name == "audio/pcmu":
            return pcm16_to_ulaw(pcm)
        if self.name == "audio/pcma":
            return pcm16_to_alaw(pcm)
        return pcm

    def ms(self, samples: int) -> int:
        """Whole milliseconds covered by a number of samples."""
        return samples // self.samples_per_ms

    def byte_count(self, ms: int) -> int:
        return ms * self.samples_per_ms * self.bytes_per_sample


PCM24K = WireFormat("audio/pcm", 24000)
PCMU = WireFormat("audio/pcmu", 8000)
PCMA = WireFormat("audio/pcma", 8000)


def wire_format(fmt: object) -> WireFormat:
    """The engine's view of a protocol format object (validated beforehand)."""
    if isinstance(fmt, AudioPCMU):
        return PCMU
    if isinstance(fmt, AudioPCMA):
        return PCMA
    if isinstance(fmt, AudioPCM) or fmt is None:
        return PCM24K
    raise ValueError(f"unsupported audio format {fmt!r}")


def b64(data: bytes | bytearray) -> str:
    """Audio bytes as the protocol carries them: base64 text."""
    return pybase64.b64encode_as_string(data)


@attrs.define
class InputBuffer:
    """The input audio buffer: audio appended since the last commit or clear.

    ``start`` is the buffer's offset in samples from the first audio the
    session ever received, so VAD offsets are session-wide as the protocol
    defines them. Only the client's bytes are kept (what a committed item
    returns); samples are decoded from them when needed. A PCM16 append that
    ends half-way through a sample leaves that byte waiting for the next
    append, so every later sample stays aligned.
    """

    fmt: WireFormat = PCM24K
    start: int = 0
    raw: bytearray = attrs.Factory(bytearray)
    torn: bytes = b""
    """The first byte of a PCM16 sample whose second byte has not arrived."""

    @property
    def length(self) -> int:
        """Samples in the buffer."""
        return len(self.raw) // self.fmt.bytes_per_sample

    @property
    def end(self) -> int:
        """Session-wide sample offset of the end of the buffer."""
        return self.start + self.length

    def append(self, data: bytes) -> Samples:
        """Adds appended bytes; returns the whole samples they complete."""
        if self.torn:
            data, self.torn = self.torn + data, b""
        if len(data) % self.fmt.bytes_per_sample:
            data, self.torn = data[:-1], data[-1:]
        self.raw += data
        return self.fmt.decode(data)

    def take(self, until: int) -> tuple[Samples, bytes]:
        """Removes and returns the audio (samples and bytes) up to the offset ``until``."""
        cut = max(0, min(until - self.start, self.length))
        split = cut * self.fmt.bytes_per_sample
        raw = bytes(self.raw[:split])
        del self.raw[:split]
        self.start += cut
        return self.fmt.decode(raw), raw

    def drop_before(self, offset: int) -> None:
        """Forgets audio before a session offset (it can no longer be committed)."""
        cut = max(0, min(offset - self.start, self.length))
        del self.raw[: cut * self.fmt.bytes_per_sample]
        self.start += cut

    def clear(self) -> None:
        """Forgets everything buffered, a torn sample included."""
        self.start = self.end
        self.raw = bytearray()
        self.torn = b""
