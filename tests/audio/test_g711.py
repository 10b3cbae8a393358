"""G.711 mu-law and A-law against the standard: every 16-bit value, every code."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from framework.audio import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16

ALL_PCM = np.arange(-32768, 32768, dtype=np.int64)
ALL_PCM_BYTES = ALL_PCM.astype("<i2").tobytes()
ALL_CODES = bytes(range(256))

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]
ULAW: Codec = (pcm16_to_ulaw, ulaw_to_pcm16)
ALAW: Codec = (pcm16_to_alaw, alaw_to_pcm16)


def _pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.int64)


def _codes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).astype(np.int64)


def test_matches_the_stdlib_reference_codec() -> None:
    # audioop (removed in Python 3.13) implements the classic Sun/ITU reference.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    assert pcm16_to_ulaw(ALL_PCM_BYTES) == audioop.lin2ulaw(ALL_PCM_BYTES, 2)
    assert pcm16_to_alaw(ALL_PCM_BYTES) == audioop.lin2alaw(ALL_PCM_BYTES, 2)
    assert ulaw_to_pcm16(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert alaw_to_pcm16(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("code", "value"),
    [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0), (0xF0, 120), (0xCE, 988)],
)
def test_ulaw_reference_decodes(code: int, value: int) -> None:
    assert _pcm(ulaw_to_pcm16(bytes([code]))).tolist() == [value]


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xFA, 1008)],
)
def test_alaw_reference_decodes(code: int, value: int) -> None:
    assert _pcm(alaw_to_pcm16(bytes([code]))).tolist() == [value]


@pytest.mark.parametrize(
    ("value", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (1000, 0xCE, 0xFA),  # hand-computed from the segment tables
        (32767, 0x80, 0xAA),  # full scale saturates to the top code
        (-32768, 0x00, 0x2A),
    ],
)
def test_reference_encodes(value: int, ulaw: int, alaw: int) -> None:
    pcm = np.array([value], dtype="<i2").tobytes()
    assert pcm16_to_ulaw(pcm) == bytes([ulaw])
    assert pcm16_to_alaw(pcm) == bytes([alaw])


def test_silence_encodes_to_the_standard_byte() -> None:
    zeros = bytes(2 * 160)  # 20 ms at 8 kHz
    assert pcm16_to_ulaw(zeros) == b"\xff" * 160
    assert pcm16_to_alaw(zeros) == b"\xd5" * 160
    # ... and decodes back to (near) silence: A-law has no zero level.
    assert set(_pcm(ulaw_to_pcm16(b"\xff" * 160)).tolist()) == {0}
    assert set(_pcm(alaw_to_pcm16(b"\xd5" * 160)).tolist()) == {8}


def test_samples_are_little_endian() -> None:
    assert pcm16_to_ulaw(b"\x00\x80") == b"\x00"  # -32768
    assert pcm16_to_ulaw(b"\x80\x00") == pcm16_to_ulaw(np.array([128], "<i2").tobytes())
    assert ulaw_to_pcm16(b"\x80") == (32124).to_bytes(2, "little")


@pytest.mark.parametrize("codec", [ULAW, ALAW], ids=["ulaw", "alaw"])
@pytest.mark.parametrize("samples", [0, 1, 160, 4801])
def test_lengths(codec: Codec, samples: int) -> None:
    encode, decode = codec
    pcm = np.zeros(samples, dtype="<i2").tobytes()
    assert len(encode(pcm)) == samples  # one byte per sample
    assert len(decode(bytes(samples))) == 2 * samples  # two bytes per sample


def test_ulaw_round_trip_error_is_within_half_a_step() -> None:
    codes = _codes(pcm16_to_ulaw(ALL_PCM_BYTES))
    back = _pcm(ulaw_to_pcm16(pcm16_to_ulaw(ALL_PCM_BYTES)))
    error = np.abs(back - ALL_PCM)
    segment = ((codes ^ 0xFF) >> 4) & 7
    step = 8 << segment  # quantization step of each segment, in 16-bit units
    in_range = np.abs(ALL_PCM) <= 32124
    # The encoder drops the two low bits first (14-bit input): up to 3 more.
    assert np.all(error[in_range] <= step[in_range] // 2 + 3)
    assert np.all(np.abs(back[~in_range]) == 32124)  # beyond full scale: clipped
    assert error.max() == 32768 - 32124
    assert np.all(error[np.abs(ALL_PCM) < 256] <= 11)  # fine steps near silence


def test_alaw_round_trip_error_is_within_half_a_step() -> None:
    codes = _codes(pcm16_to_alaw(ALL_PCM_BYTES))
    back = _pcm(alaw_to_pcm16(pcm16_to_alaw(ALL_PCM_BYTES)))
    error = np.abs(back - ALL_PCM)
    segment = ((codes ^ 0x55) >> 4) & 7
    step = np.where(segment == 0, 16, 8 << segment)
    in_range = np.abs(ALL_PCM) <= 32256
    assert np.all(error[in_range] <= step[in_range] // 2)
    assert np.all(np.abs(back[~in_range]) == 32256)
    assert error.max() == 32768 - 32256
    assert np.all(error[np.abs(ALL_PCM) < 256] <= 8)


@pytest.mark.parametrize("codec", [ULAW, ALAW], ids=["ulaw", "alaw"])
def test_round_trip_is_monotonic_and_keeps_the_sign(codec: Codec) -> None:
    encode, decode = codec
    back = _pcm(decode(encode(ALL_PCM_BYTES)))
    assert np.all(np.diff(back) >= 0)
    assert np.all(np.sign(back[ALL_PCM > 64]) == 1)
    assert np.all(np.sign(back[ALL_PCM < -64]) == -1)


def test_every_code_survives_decode_then_encode() -> None:
    assert pcm16_to_alaw(alaw_to_pcm16(ALL_CODES)) == ALL_CODES
    # mu-law has two zeros; the negative one (0x7F) comes back as the positive one.
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF
    assert pcm16_to_ulaw(ulaw_to_pcm16(ALL_CODES)) == bytes(expected)
