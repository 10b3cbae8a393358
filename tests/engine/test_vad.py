"""The energy VAD's shortcut on quiet chunks decides exactly as measuring every frame does."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.engine._vad import (
    EnergyClassifier,
    SpeechStarted,
    SpeechStopped,
    VoiceActivityDetector,
)

RATE = 24000


@attrs.define
class MeasuredEnergy:
    """The energy classifier as written before the shortcut: numpy over every frame."""

    rate: int
    frame_ms: int = 10

    def probability(self, frame: npt.NDArray[np.int16]) -> float:
        return self.probabilities(frame.reshape(1, -1))[0]

    def probabilities(self, frames: npt.NDArray[np.int16]) -> Sequence[float]:
        power = np.mean(np.square(frames, dtype=np.float64), axis=1)
        with np.errstate(divide="ignore"):
            db = 10.0 * np.log10(power / (32768.0 * 32768.0))
        levels: list[float] = np.clip((db + 60.0) / 60.0, 0.0, 1.0).tolist()
        return levels

    def reset(self) -> None:
        pass


@attrs.define
class CountingEnergy(EnergyClassifier):
    """The engine's classifier, counting the chunks it measured frame by frame."""

    measured: int = 0

    def probabilities(self, frames: npt.NDArray[np.int16]) -> Sequence[float]:
        self.measured += 1
        return super().probabilities(frames)


def _decisions(
    detector: VoiceActivityDetector, audio: npt.NDArray[np.int16], cuts: Sequence[int]
) -> list[SpeechStarted | SpeechStopped]:
    out: list[SpeechStarted | SpeechStopped] = []
    for chunk in np.split(audio, sorted(cuts)):
        out += detector.feed(chunk, 0)
    return out


def _amplitude(threshold: float) -> float:
    """The peak of a square wave whose level is exactly ``threshold``."""
    return 32768.0 * 10 ** (-60.0 * (1.0 - threshold) / 20.0)


# Segments: (milliseconds, kind, scale). "square" is a full-scale square wave at
# ``scale`` times the threshold's amplitude: right at the edge the shortcut must
# still agree. "noise" is Gaussian at that RMS; "zero" is digital silence.
segment = st.tuples(
    st.integers(10, 900),
    st.sampled_from(["square", "noise", "zero"]),
    st.sampled_from([0.0, 0.2, 0.9, 0.98, 0.99, 1.0, 1.01, 1.02, 1.1, 3.0]),
)


@settings(max_examples=200, deadline=None)
@given(
    threshold=st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.5001, 0.8, 1.0]),
    segments=st.lists(segment, min_size=1, max_size=8),
    cut_every=st.sampled_from([1, 7, 20, 100, 333]),  # chunk lengths in ms, torn frames too
    seed=st.integers(0, 2**16),
)
def test_the_quiet_shortcut_keeps_every_decision(
    threshold: float, segments: list[tuple[int, str, float]], cut_every: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    parts = []
    for ms, kind, scale in segments:
        n = ms * RATE // 1000
        level = scale * _amplitude(threshold)
        if kind == "square":
            wave = np.where(np.arange(n) % 40 < 20, level, -level)
        elif kind == "noise":
            wave = rng.standard_normal(n) * level
        else:
            wave = np.zeros(n)
        parts.append(np.clip(np.round(wave), -32768, 32767).astype(np.int16))
    audio = np.concatenate(parts)
    cuts = list(range(0, len(audio), cut_every * RATE // 1000))[1:]

    def detector(classifier: object) -> VoiceActivityDetector:
        return VoiceActivityDetector(
            samples_per_ms=RATE // 1000,
            classifier=classifier,  # type: ignore[arg-type]
            threshold=threshold,
            silence_duration_ms=200,
        )

    expected = _decisions(detector(MeasuredEnergy(RATE)), audio, cuts)
    assert _decisions(detector(EnergyClassifier(RATE)), audio, cuts) == expected


def test_plain_silence_is_not_measured_but_speech_is() -> None:
    classifier = CountingEnergy(RATE)
    detector = VoiceActivityDetector(samples_per_ms=RATE // 1000, classifier=classifier)
    quiet = np.random.default_rng(0).integers(-300, 300, RATE, dtype=np.int16)  # -40 dBFS peaks
    assert _decisions(detector, quiet, range(480, RATE, 480)) == []
    assert classifier.measured == 0
    tone = (np.sin(np.arange(RATE) / 5) * 8000).astype(np.int16)
    assert _decisions(detector, tone, range(480, RATE, 480)) == [SpeechStarted(RATE - 300 * 24)]
    assert classifier.measured == RATE // 480


def test_at_threshold_zero_even_digital_silence_is_speech() -> None:
    detector = VoiceActivityDetector(samples_per_ms=24, threshold=0.0)
    assert detector.feed(np.zeros(480, np.int16), 0) == [SpeechStarted(0)]
