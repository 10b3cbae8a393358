"""Band-limited resampling of 16-bit audio between integer rates, in numpy.

A Hann-windowed sinc kernel, evaluated once per *phase*: an output sample
at input position ``n * src / dst`` falls on one of ``dst / gcd(src, dst)``
fractional offsets, so the weights are a small table and each output is a
dot product with its neighbours (16 zero crossings each side of the kernel,
widened when downsampling so that the cut-off follows the lower Nyquist).
Positions are computed in integers, so no drift builds up over long audio.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from framework.audio import Samples

ZERO_CROSSINGS = 16
_BLOCK = 8192  # outputs per gather, to bound memory on long audio

Kernel = tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]


@functools.cache
def _kernel(src: int, dst: int) -> Kernel:
    """Weights ``[phase, tap]`` and the taps' offsets from the position's floor."""
    step = math.gcd(src, dst)
    phases = dst // step
    cutoff = min(1.0, dst / src)  # of the input's Nyquist
    half = math.ceil(ZERO_CROSSINGS / cutoff)
    offsets = np.arange(-half + 1, half + 1, dtype=np.int64)
    frac = (np.arange(phases, dtype=np.float64) * step % dst / dst)[:, None]
    distance = frac - offsets[None, :]
    window = 0.5 + 0.5 * np.cos(np.pi * np.clip(distance / half, -1.0, 1.0))
    weights = cutoff * np.sinc(cutoff * distance) * window
    weights /= weights.sum(axis=1, keepdims=True)  # unit gain at DC for every phase
    return weights, offsets


def margin(src: int, dst: int) -> int:
    """Input samples the kernel reaches on each side of a position."""
    return int(_kernel(src, dst)[1][-1])


def resample_at(
    x: npt.NDArray[np.float64] | Samples, src: int, dst: int, *, start: int, count: int
) -> npt.NDArray[np.float64]:
    """``count`` outputs at input positions ``start + n * src / dst`` (zeros outside ``x``)."""
    weights, offsets = _kernel(src, dst)
    step = math.gcd(src, dst)
    reach = int(offsets[-1])
    # One float copy of the input, padded in place (long turns are tens of MB).
    padded = np.zeros(len(x) + 2 * reach + 1, dtype=np.float64)
    padded[reach : reach + len(x)] = x
    out = np.empty(count, dtype=np.float64)
    for first in range(0, count, _BLOCK):
        n = np.arange(first, min(count, first + _BLOCK), dtype=np.int64)
        base = start + (n * src) // dst
        phase = (n * src) % dst // step
        index = np.clip(base[:, None] + offsets[None, :] + reach, 0, len(padded) - 1)
        out[first : first + len(n)] = np.einsum("ij,ij->i", padded[index], weights[phase])
    return out


def to_int16(x: npt.NDArray[np.float64]) -> Samples:
    """``x`` rounded and clipped to 16 bits; ``x`` itself is the scratch space (no copies)."""
    np.rint(x, out=x)
    np.clip(x, -32768, 32767, out=x)
    return x.astype(np.int16)


def resample(samples: Samples, src: int, dst: int) -> Samples:
    """16-bit samples at ``src`` Hz, resampled to ``dst`` Hz (length scales exactly, floored)."""
    if src == dst:
        return np.asarray(samples, dtype=np.int16).copy()
    count = len(samples) * dst // src
    return to_int16(resample_at(np.asarray(samples), src, dst, start=0, count=count))
