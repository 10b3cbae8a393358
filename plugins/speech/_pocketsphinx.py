"""Speech recognition with pocketsphinx and the English model its wheel ships.

Two modes:

* *open vocabulary* (the default): the bundled ``en-us`` language model and
  dictionary, for free-form speech; accuracy on synthetic voices is modest;
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

import numpy as np
import trio

from framework.audio import Samples
from framework.engine import TranscriptionUnavailable

from ._deps import require
from ._resample import resample, to_int16

RATE = 16000
PAD_MS = 300
NOISE_LEVEL = 10.0
"""Standard deviation (in 16-bit units, about -70 dBFS) of the noise floor added."""

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


def condition(samples: Samples) -> Samples:
    """The audio as the decoder hears it best: a noise floor and padding.

    Pocketsphinx's noise estimate and cepstral normalisation go wrong on
    digital silence, and words at the very edges of the audio get cut: with a
    deterministic -70 dBFS floor and 300 ms of it on each side, 78 of 80
    espeak phrases (8 phrases, 10 voices, 24 kHz) come back exact in grammar
    mode, against 52 to 61 without.
    """
    pad = np.zeros(PAD_MS * RATE // 1000, dtype=np.float64)
    x = np.concatenate([pad, samples.astype(np.float64), pad])
    x += np.random.default_rng(0).normal(0.0, NOISE_LEVEL, len(x))
    return to_int16(x)


class PocketsphinxTranscriber:
    """The engine's ears: pocketsphinx, offline (the ``transcriber:pocketsphinx`` part).

    Args:
        grammar: ``None`` for open vocabulary; a sequence of phrases, or a
            JSGF grammar (text starting with ``#JSGF``), for grammar mode.

    The session's transcription ``prompt`` is not used: it is free-form
    guidance on the hosted API, and as a grammar it would turn every other
    utterance into a truncated hypothesis.
    """

    name = "pocketsphinx"

    def __init__(self, *, grammar: Sequence[str] | str | None = None) -> None:
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
        audio = condition(resample(samples, rate, RATE))
        with self._lock:
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
