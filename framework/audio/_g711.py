"""G.711 mu-law and A-law, to and from 16-bit PCM (ITU-T G.711).

Decoding is a 256-entry table lookup; encoding is a 65,536-entry table built
once with numpy from the standard segment arithmetic, so both directions are a
single vectorised lookup per buffer.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["alaw_to_pcm16", "pcm16_to_alaw", "pcm16_to_ulaw", "ulaw_to_pcm16"]

_BIAS = 0x84


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    # The reference encoder works on 14-bit magnitudes (the sign taken after an
    # arithmetic shift), which is why negative inputs round as they do.
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + (_BIAS >> 2)
    ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(ends, magnitude)
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)  # beyond the last segment: full scale
    table: npt.NDArray[np.uint8] = ((code ^ mask) & 0xFF).astype(np.uint8)
    return table


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(pcm >= 0, 0x80, 0)
    magnitude = np.minimum(np.where(pcm < 0, -pcm - 1, pcm), 32767) >> 3
    exponent = np.where(
        magnitude >= 0x20, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4, 0
    )
    exponent = np.clip(exponent, 0, 7)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    table: npt.NDArray[np.uint8] = ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)
    return table


_ULAW_DECODE = _ulaw_decode_table()
_ALAW_DECODE = _alaw_decode_table()
_ULAW_ENCODE = _ulaw_encode_table()
_ALAW_ENCODE = _alaw_encode_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decodes G.711 mu-law bytes to little-endian 16-bit PCM (same rate)."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def alaw_to_pcm16(data: bytes) -> bytes:
    """Decodes G.711 A-law bytes to little-endian 16-bit PCM (same rate)."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    """Encodes little-endian 16-bit PCM as G.711 mu-law (same rate)."""
    samples = np.frombuffer(data, dtype="<i2").astype(np.int32) + 32768
    return _ULAW_ENCODE[samples].tobytes()


def pcm16_to_alaw(data: bytes) -> bytes:
    """Encodes little-endian 16-bit PCM as G.711 A-law (same rate)."""
    samples = np.frombuffer(data, dtype="<i2").astype(np.int32) + 32768
    return _ALAW_ENCODE[samples].tobytes()
