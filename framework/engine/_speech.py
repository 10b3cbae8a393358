"""The engine's speech plug points: a synthesizer and a transcriber.

Until real offline speech is installed, the engine synthesizes a
deterministic tone whose length follows the text (so playback positions and
truncation arithmetic are real), and has no transcriber: transcription
requests then fail with a clear reason.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ._audio import Samples


@runtime_checkable
class Synthesizer(Protocol):
    """Turns assistant text into speech."""

    name: str

    async def synthesize(self, text: str, *, rate: int, voice: str) -> Samples:
        """16-bit mono samples at ``rate`` speaking ``text`` in ``voice``."""
        ...


class TranscriptionUnavailable(Exception):
    """The transcriber cannot transcribe (not installed, model missing, ...)."""


@runtime_checkable
class Transcriber(Protocol):
    """Turns user audio into text."""

    name: str

    async def transcribe(
        self, samples: Samples, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        """The transcript as growing deltas (joined, they are the final text).

        Raises:
            TranscriptionUnavailable: the audio cannot be transcribed here.
        """
        ...


class ToneSynthesizer:
    """A deterministic stand-in for speech: one tone burst per word.

    Each character lasts ``ms_per_char`` milliseconds; a word's pitch comes
    from a hash of the word and the voice, and spaces are silence. The level
    sits well above the engine's VAD threshold, like real speech.
    """

    name = "tone"

    def __init__(self, ms_per_char: int = 60, amplitude: float = 0.3) -> None:
        self.ms_per_char = ms_per_char
        self.amplitude = amplitude
        # Replies repeat their words; each word's burst is computed once.
        self._bursts: dict[tuple[str, str, int], Samples] = {}

    def _burst(self, word: str, voice: str, rate: int) -> Samples:
        key = (word, voice, rate)
        burst = self._bursts.get(key)
        if burst is None:
            pitch = 180 + zlib.crc32(f"{voice}:{word}".encode()) % 320
            t = np.arange(rate * self.ms_per_char // 1000 * len(word)) / rate
            envelope = np.minimum(1.0, np.minimum(t, t[::-1]) * 200.0)  # 5 ms ramps, no clicks
            wave = np.sin(2 * np.pi * pitch * t) * envelope * self.amplitude * 32767
            burst = wave.astype(np.int16)
            burst.flags.writeable = False
            if len(self._bursts) < 4096:
                self._bursts[key] = burst
        return burst

    async def synthesize(self, text: str, *, rate: int, voice: str) -> Samples:
        gap = np.zeros(rate * self.ms_per_char // 1000, dtype=np.int16)
        pieces: list[Samples] = []
        for index, word in enumerate(text.split(" ")):
            if index:
                pieces.append(gap)
            if word:
                pieces.append(self._burst(word, voice, rate))
        if not pieces:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(pieces)


class NoTranscriber:
    """The transcriber of an engine without one: every request fails, clearly."""

    name = "none"

    async def transcribe(
        self, samples: Samples, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        raise TranscriptionUnavailable(
            "No transcriber is installed in this local engine, so user audio cannot be "
            "transcribed; give it one: the speech extra (pip install 'cantata[speech]') makes "
            "it cantata serve's default, and in code Engine(transcriber=...)."
        )
