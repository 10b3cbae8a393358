"""Turn detection: a voice activity detector over a pluggable frame classifier.

The detector cuts decoded samples into the classifier's frames and asks it
for each frame's speech probability. Speech starts at the first frame at or
above the threshold and stops once the audio has stayed below it for the
silence duration.

The default classifier is energy: 10 ms frames whose *activation* maps the
level to 0..1 on a dBFS scale (-60 dBFS or quieter is 0, 0 dBFS is 1, so the
default threshold 0.5 sits at -30 dBFS, between room noise and normal
speech). A model (Silero, in ``plugins/speech``) plugs in through
:class:`FrameClassifier` and a :data:`ClassifierFactory`.

On plain silence the energy classifier takes a shortcut: when no sample of
a chunk is loud enough for any of its frames to reach the threshold (a frame's
RMS is at most its peak), the chunk is all silence without measuring its
frames. The decisions are the same; only the cost differs (most of a call is
silence, and the detector runs on every append of every session).

It only counts samples of the input rate: it never reads a clock, so the
offsets it reports are exact and reproducible, whatever frame length or
internal rate a classifier uses. The session turns its verdicts into
protocol events.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs
import numpy as np
import numpy.typing as npt

from ._audio import Samples

FRAME_MS = 10
_FLOOR_DB = -60.0

# semantic_vad has no semantic model here: its eagerness sets how long a pause
# ends the turn (the hosted API waits at most 8 s / 4 s / 2 s; these are the
# short ends a confident end-of-turn model reaches).
SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 350}


def activations(frames: npt.NDArray[np.int16]) -> list[float]:
    """:func:`activation` of each row of ``frames`` (frames x samples), in one pass.

    The sums of squares are exact integers; the few logarithms are cheaper in
    Python than numpy's per-call cost on arrays this small.
    """
    wide = frames.astype(np.int64)
    full_scale = frames.shape[1] * 32768.0 * 32768.0
    levels = []
    for energy in np.einsum("ij,ij->i", wide, wide).tolist():
        if not energy:
            levels.append(0.0)
            continue
        db = 10.0 * math.log10(energy / full_scale)
        levels.append(min(1.0, max(0.0, (db - _FLOOR_DB) / -_FLOOR_DB)))
    return levels


def peak(samples: npt.NDArray[np.int16]) -> int:
    """The largest magnitude among ``samples`` (0 for none)."""
    if not len(samples):
        return 0
    return max(int(samples.max()), -int(samples.min()))


def activation(frame: Samples) -> float:
    """The 0..1 speech activation of one frame of 16-bit samples."""
    if not len(frame):
        return 0.0
    rms = math.sqrt(float(np.mean(np.square(frame, dtype=np.float64))))
    if rms <= 0.0:
        return 0.0
    db = 20.0 * math.log10(rms / 32768.0)
    return min(1.0, max(0.0, (db - _FLOOR_DB) / -_FLOOR_DB))


class FrameClassifier(Protocol):
    """Speech probabilities of one input stream, frame by frame.

    Attributes:
        frame_ms: the frame length; the detector feeds exactly
            ``frame_ms * rate // 1000`` samples per call.
    """

    frame_ms: int

    def probability(self, frame: Samples) -> float:
        """The 0..1 speech probability of the next frame (it may keep state)."""
        ...

    def reset(self) -> None:
        """Forgets state carried from earlier frames."""
        ...


ClassifierFactory = Callable[[int], FrameClassifier]
"""Builds the classifier of one session's input, given its sample rate."""


@attrs.define
class EnergyClassifier:
    """The default classifier: the level of 10 ms frames (see :func:`activation`)."""

    rate: int
    frame_ms: int = FRAME_MS

    def probability(self, frame: Samples) -> float:
        return activation(frame)

    def probabilities(self, frames: npt.NDArray[np.int16]) -> Sequence[float]:
        """Every frame's level at once (the detector's fast path)."""
        return activations(frames)

    def quiet_peak(self, threshold: float) -> int:
        """A peak below which no frame reaches ``threshold`` (0: no such peak).

        A frame's RMS is at most its peak, so a chunk whose peak stays under the
        threshold's amplitude is silence frame by frame. The 1% margin keeps a
        rounding of the level from deciding otherwise at the very edge.
        """
        if threshold <= 0.0:
            return 0  # every frame, even digital silence, reaches it
        db = _FLOOR_DB * (1.0 - threshold)
        return max(0, math.floor(0.99 * 32768.0 * math.pow(10.0, db / 20.0)))

    def reset(self) -> None:
        pass


@attrs.frozen
class SpeechStarted:
    """Speech began; ``audio_start_ms`` already includes the prefix padding."""

    start_sample: int  # where the committed audio will begin (padding included)


@attrs.frozen
class SpeechStopped:
    """Speech ended; ``end_sample`` includes the trailing silence."""

    end_sample: int


@attrs.define
class VoiceActivityDetector:
    """Frame-by-frame speech start/stop decisions over session-wide sample offsets."""

    samples_per_ms: int
    classifier: FrameClassifier = attrs.field(
        default=attrs.Factory(
            lambda self: EnergyClassifier(self.samples_per_ms * 1000), takes_self=True
        )
    )
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    speaking: bool = False
    _pending: list[Samples] = attrs.Factory(list)
    _pending_len: int = 0
    _position: int = 0  # session offset of the first pending sample
    _silence_run: int = 0  # samples of below-threshold audio since the last speech

    @property
    def frame(self) -> int:
        return self.classifier.frame_ms * self.samples_per_ms

    def reset(self, position: int) -> None:
        """Forgets partial frames and speech state, continuing from ``position``."""
        self.classifier.reset()
        self.speaking = False
        self._pending = []
        self._pending_len = 0
        self._position = position
        self._silence_run = 0

    def feed(self, samples: Samples, buffer_start: int) -> list[SpeechStarted | SpeechStopped]:
        """Consumes appended samples; returns the starts and stops they cause.

        Args:
            samples: decoded audio, continuing where the last call ended.
            buffer_start: session offset where the input buffer begins, the
                earliest point a speech start may reach back to.
        """
        out: list[SpeechStarted | SpeechStopped] = []
        self._pending.append(samples)
        self._pending_len += len(samples)
        frame = self.frame
        if self._pending_len < frame:
            return out
        data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        whole = (len(data) // frame) * frame
        silence_needed = self.silence_duration_ms * self.samples_per_ms
        batch = getattr(self.classifier, "probabilities", None)
        quiet = getattr(self.classifier, "quiet_peak", None)
        levels: Sequence[float]
        if quiet is not None and peak(data[:whole]) < quiet(self.threshold):
            levels = [0.0] * (whole // frame)  # plain silence (see the module docstring)
        elif batch is not None:  # stateless classifiers score a whole chunk in one pass
            levels = batch(data[:whole].reshape(-1, frame))
        else:
            levels = [
                self.classifier.probability(data[o : o + frame]) for o in range(0, whole, frame)
            ]
        for offset, level in zip(range(0, whole, frame), levels, strict=True):
            frame_start = self._position + offset
            if not self.speaking:
                if level >= self.threshold:
                    self.speaking = True
                    self._silence_run = 0
                    padding = self.prefix_padding_ms * self.samples_per_ms
                    out.append(SpeechStarted(max(buffer_start, frame_start - padding)))
            elif level >= self.threshold:
                self._silence_run = 0
            else:
                self._silence_run += frame
                if self._silence_run >= silence_needed:
                    self.speaking = False
                    self._silence_run = 0
                    out.append(SpeechStopped(frame_start + frame))
        rest = data[whole:]
        self._pending = [rest] if len(rest) else []
        self._pending_len = len(rest)
        self._position += whole
        return out
