"""Offline recognition accuracy: word error rate of the pocketsphinx transcriber.

A small fixed set: 24 everyday requests spoken by espeak-ng in five of the
protocol's voices, each placed as the engine hands a VAD turn to its
transcriber (300 ms of prefix padding before, the 500 ms of silence that
ended the turn after, at 24 kHz). The reference transcripts are the sentences.

Measured, for each split of the voices:

* **open vocabulary** with the transcriber's conditioning now and with the
  earlier one (``EARLIER``), so that the change is a measured one;
* **grammar mode**, the 24 sentences as the grammar: what a grammar buys,
  and what it costs (an utterance can only come out as one of the phrases).

The conditioning was chosen on the *tune* voices (``--sweep`` prints the
candidates; how, in ``Conditioning``'s docstring); the *test* voices were not
looked at while choosing, so their figure is the honest one. Recognition is
deterministic (the same audio gives the same words), so one pass measures it;
the time per utterance is the median of ``--repeats`` passes. Run it on demand::

    python tests/benchmarks/bench_recognition.py [--sweep] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np

from framework.audio import Samples
from plugins.speech import Conditioning, EspeakSynthesizer, PocketsphinxTranscriber
from plugins.speech._pocketsphinx import EARLIER, words_of

SENTENCES = (
    "What is the weather in Paris",
    "What time is it in Tokyo",
    "Book an umbrella delivery to the office",
    "Turn on the kitchen lights",
    "Hello my name is Alice",
    "Please send one hundred euros to Bob",
    "I would like to cancel my order",
    "Can you tell me a story",
    "What is my balance",
    "Call me back tomorrow morning",
    "I need to reset my password",
    "How long does the delivery take",
    "Where is the nearest train station",
    "Set an alarm for seven in the morning",
    "Play some music in the living room",
    "Is the museum open on Sunday",
    "I lost my credit card",
    "Can I speak to a real person",
    "Remind me to buy milk",
    "What is the capital of France",
    "Turn off the bedroom lights",
    "How much does the ticket cost",
    "My internet is not working",
    "Thank you that is all",
)
TUNE = ("ash", "marin")
TEST = ("coral", "verse", "sage")
RATE = 24000
PREFIX_MS, CLOSING_MS = 300, 500


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Substitutions, deletions and insertions (Levenshtein over words), and reference words."""
    ref, hyp = words_of(reference), words_of(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, heard in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != heard))
    return row[len(hyp)], len(ref)


def turns(voices: Sequence[str]) -> list[tuple[str, Samples]]:
    """Each sentence in each voice, as an engine VAD turn."""
    voice = EspeakSynthesizer()
    before = np.zeros(PREFIX_MS * RATE // 1000, np.int16)
    after = np.zeros(CLOSING_MS * RATE // 1000, np.int16)
    return [
        (text, np.concatenate([before, voice.synthesize_blocking(text, rate=RATE, voice=v), after]))
        for v in voices
        for text in SENTENCES
    ]


def measure(
    transcriber: PocketsphinxTranscriber, audio: list[tuple[str, Samples]], repeats: int
) -> tuple[float, float, float]:
    """Word error rate, sentences exactly right, and median seconds per utterance."""
    errors = words = exact = 0
    times: list[float] = []
    for n in range(repeats):
        started = time.perf_counter()
        heard = [transcriber.text_blocking(samples, rate=RATE) for _, samples in audio]
        times.append((time.perf_counter() - started) / len(audio))
        if n == 0:
            for (text, _), hypothesis in zip(audio, heard, strict=True):
                wrong, count = word_errors(text, hypothesis)
                errors, words = errors + wrong, words + count
                exact += words_of(text) == words_of(hypothesis)
    return errors / words, exact / len(audio), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="print the tuning candidates")
    args = parser.parse_args()
    splits = {"tune": turns(TUNE), "test": turns(TEST)}
    words = sum(len(words_of(t)) for t in SENTENCES)
    print(f"{len(SENTENCES)} sentences ({words} words) x voices: tune {TUNE}, test {TEST}")
    if args.sweep:
        for noise in (10.0, 30.0, 50.0, 100.0):
            for pad_ms in (100, 200, 300):
                for trim in (False, True):
                    candidate = Conditioning(noise=noise, pad_ms=pad_ms, trim=trim)
                    wer, _, _ = measure(
                        PocketsphinxTranscriber(conditioning=candidate), splits["tune"], 1
                    )
                    print(f"  tune  {candidate}: WER {wer:.3f}")
    modes = {
        "open vocabulary, earlier conditioning": PocketsphinxTranscriber(conditioning=EARLIER),
        "open vocabulary, conditioning now": PocketsphinxTranscriber(),
        "grammar of the 24 sentences": PocketsphinxTranscriber(grammar=SENTENCES),
    }
    print(f"{'mode':<40} {'split':<5} {'WER':>6} {'exact':>6} {'s/utterance':>12}")
    for name, transcriber in modes.items():
        transcriber.load()
        for split, audio in splits.items():
            wer, exact, seconds = measure(transcriber, audio, args.repeats)
            print(f"{name:<40} {split:<5} {wer:>6.3f} {exact:>6.2f} {seconds:>12.3f}")


if __name__ == "__main__":
    main()
