"""Speech recognition with pocketsphinx and the English model its wheel ships.

Two modes:

* *open vocabulary* (the default): the bundled ``en-us`` language model and
  dictionary, for free-form speech; accuracy on synthetic voices is modest
  (about one word in three wrong, see :class:`Conditioning`);
* *grammar*: a list of phrases, or a JSGF grammar, that the audio must be one
  of; decoding is then fast and deterministic, and a recognized phrase is
  given back as it was written (case and punctuation included).

Deltas: the whole turn is decoded at once (the transcriber protocol returns
the deltas together), and the *final* hypothesis is split into one delta per
word. Pocketsphinx's partial hypotheses are revised as it goes, so streaming
them would have meant taking stable prefixes that can still disagree with the
final text; the final split is append-only by construction.

The decoder is loaded on first use, in a worker thread; one decoder serves
every session of the transcriber, one utterance at a time (it is not
thread-safe), and starts each utterance from the same state, so a transcript
depends on its audio alone.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import trio

from framework.audio import Samples
from framework.engine import TranscriptionUnavailable

from ._deps import require
from ._resample import resample, to_int16

RATE = 16000
_NOISE_BLOCK = 65536

_WORD = re.compile(r"[a-z0-9']+")


def words_of(phrase: str) -> list[str]:
    """The lower-case words of a phrase, as the dictionary spells them."""
    return _WORD.findall(phrase.lower())


def phrases_grammar(phrases: Sequence[str]) -> str:
    """A JSGF grammar whose sentences are exactly ``phrases``."""
    alternatives = [" ".join(words_of(p)) for p in phrases]
    if not any(alternatives):
        raise ValueError("a phrase grammar needs at least one phrase with words")
    body = " | ".join(f"( {a} )" for a in alternatives if a)
    return f"#JSGF V1.0;\ngrammar cantata;\npublic <utterance> = {body};\n"


@attrs.frozen(kw_only=True)
class Conditioning:
    """How a turn's audio is prepared for the decoder.

    Pocketsphinx's noise estimate and cepstral normalisation go wrong on
    digital silence, and words at the very edges of the audio get cut. So the
    digital silence at a turn's ends (the VAD's prefix padding and closing
    silence, as an engine hands a turn over) is taken off, ``pad_ms`` of a
    deterministic noise floor is put on each side, and the floor runs under
    the whole turn. The setting was chosen on the *tune* voices of the
    recognition benchmark (``tests/benchmarks/bench_recognition.py
    --sweep``): what mattered there was the floor's level (every candidate
    with a floor of 50 or 100 scored a word error rate of 0.33 to 0.39,
    every one with 10 or 30 scored 0.38 to 0.61); among the good ones, which
    differ by less than 282 words can tell apart, this one trims, because a
    turn's digital silence is not speech. On the *test* voices, open
    vocabulary: word error rate 0.33 (31% of sentences exact), against 0.56
    (15%) with the earlier setting kept as ``EARLIER`` (no trim, floor 10,
    300 ms).

    Attributes:
        noise: standard deviation of the floor, in 16-bit units (50 is about
            -56 dBFS).
        pad_ms: floor added before and after.
        trim: whether digital silence (|sample| <= 1) at the ends is removed.
    """

    noise: float = 50.0
    pad_ms: int = 200
    trim: bool = True

    def __call__(self, samples: Samples) -> Samples:
        """The 16 kHz samples as the decoder hears them best.

        One float copy, the ends found on a boolean mask and the noise added a
        block at a time: a five-minute turn (the longest an engine hands over)
        takes about 60 MB here, where whole-array steps took about 300.
        """
        x = np.asarray(samples, dtype=np.int16)
        if self.trim:
            loud = np.abs(x.astype(np.int32)) > 1
            first, end = int(np.argmax(loud)), len(x) - int(np.argmax(loud[::-1]))
            x = x[first:end] if loud.any() else x[:0]
        pad = self.pad_ms * RATE // 1000
        y = np.zeros(len(x) + 2 * pad, dtype=np.float64)
        y[pad : pad + len(x)] = x
        # The seeded floor, drawn a block at a time (the same numbers as at once).
        rng = np.random.default_rng(0)
        for start in range(0, len(y), _NOISE_BLOCK):
            block = y[start : start + _NOISE_BLOCK]
            block += rng.normal(0.0, self.noise, len(block))
        return to_int16(y)


EARLIER = Conditioning(noise=10.0, pad_ms=300, trim=False)
"""The conditioning before the recognition benchmark: kept to measure against."""


class PocketsphinxTranscriber:
    """The engine's ears: pocketsphinx, offline (the ``transcriber:pocketsphinx`` part).

    Args:
        grammar: ``None`` for open vocabulary; a sequence of phrases, or a
            JSGF grammar (text starting with ``#JSGF``), for grammar mode.
        conditioning: how each turn's audio is prepared for the decoder.

    The session's transcription ``prompt`` is not used: it is free-form
    guidance on the hosted API, and as a grammar it would turn every other
    utterance into a truncated hypothesis.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        *,
        grammar: Sequence[str] | str | None = None,
        conditioning: Conditioning = Conditioning(),
    ) -> None:
        self.conditioning = conditioning
        self.phrases: dict[str, str] = {}
        if isinstance(grammar, str) and grammar.lstrip().startswith("#JSGF"):
            self.jsgf: str | None = grammar
        elif isinstance(grammar, str):
            raise ValueError("grammar: give a list of phrases, or JSGF text starting with #JSGF")
        elif grammar is not None:
            self.jsgf = phrases_grammar(grammar)
            self.phrases = {" ".join(words_of(p)): p for p in grammar}
        else:
            self.jsgf = None
        self._decoder: Any = None
        self._lock = threading.Lock()

    def with_phrases(self, phrases: Sequence[str]) -> PocketsphinxTranscriber:
        """This transcriber in grammar mode: it hears only ``phrases`` (a rules file's)."""
        return PocketsphinxTranscriber(grammar=phrases, conditioning=self.conditioning)

    @property
    def mode(self) -> str:
        return "grammar" if self.jsgf is not None else "open vocabulary"

    @property
    def description(self) -> str:
        """What it is and how it hears, for banners: a grammar limits what it can hear."""
        if self.jsgf is None:
            return "pocketsphinx (English, open vocabulary)"
        if self.phrases:
            count = len(self.phrases)
            return f"pocketsphinx (grammar: hears only {count} phrase{'s' * (count != 1)})"
        return "pocketsphinx (grammar: hears only what its JSGF grammar allows)"

    def _load(self) -> Any:
        if self._decoder is None:
            pocketsphinx: Any = require("pocketsphinx", "pocketsphinx")
            decoder = pocketsphinx.Decoder(samprate=RATE, loglevel="FATAL")
            if self.jsgf is not None:
                words = {w for p in self.phrases for w in p.split()}
                unknown = sorted(w for w in words if decoder.lookup_word(w) is None)
                if unknown:
                    raise ValueError(
                        f"grammar: words missing from the English dictionary: {unknown}"
                    )
                try:
                    decoder.add_jsgf_string("grammar", self.jsgf)
                except (ValueError, RuntimeError) as e:
                    raise ValueError(f"grammar: pocketsphinx rejected it: {e}") from None
                decoder.activate_search("grammar")
            self._decoder = decoder
        return self._decoder

    def load(self) -> None:
        """Loads the model now rather than at the first transcription (blocking)."""
        with self._lock:
            self._load()

    def text_blocking(self, samples: Samples, *, rate: int) -> str:
        """The final hypothesis for 16-bit samples at ``rate`` (blocking)."""
        with self._lock:
            # Prepared under the lock too: one turn's working copies at a time,
            # however many sessions finish a turn at once.
            audio = self.conditioning(resample(samples, rate, RATE))
            decoder = self._load()
            # The decoder carries its cepstral-mean estimate over from the last
            # utterance; reset, each transcript depends on its own audio alone.
            decoder.reinit_feat()
            decoder.start_utt()
            decoder.process_raw(audio.tobytes(), False, True)
            decoder.end_utt()
            hyp = decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        return self.phrases.get(text, text)

    async def transcribe(
        self, samples: Samples, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        """The transcript as one delta per word; joined, they are the final text."""
        if language and not language.lower().startswith("en"):
            raise TranscriptionUnavailable(
                f"The pocketsphinx transcriber only has the English model; it cannot "
                f"transcribe language {language!r}."
            )
        text = await trio.to_thread.run_sync(lambda: self.text_blocking(samples, rate=rate))
        return word_deltas(text)


def word_deltas(text: str) -> list[str]:
    """``"a b c"`` -> ``["a", " b", " c"]``: each delta adds a word to the last."""
    return [w if i == 0 else f" {w}" for i, w in enumerate(text.split())]
