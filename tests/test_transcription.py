"""Transcription sessions through the runtime, captions files, and cantata transcribe."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import srt
import trio
import webvtt

from framework.apps.captions import to_srt, to_webvtt
from framework.runtime import TranscriptSegment, open_transcription_session
from framework.testing import run_engine
from plugins.speech import EspeakSynthesizer, PocketsphinxTranscriber

from .runtime.test_transcripts import Hears

ROOT = Path(__file__).resolve().parents[1]
RATE = 24000


def _tone(ms: int) -> bytes:
    t = np.arange(ms * 24) / RATE
    return (np.sin(2 * np.pi * 300 * t) * 0.3 * 32767).astype("<i2").tobytes()


def _quiet(ms: int) -> bytes:
    return bytes(ms * 48)


# Three utterances: (start, end) in ms of the session's audio.
TRUTH = [(500, 1300), (2300, 2900), (3900, 5100)]


def _three_utterances() -> bytes:
    audio, at = b"", 0
    for start, end in TRUTH:
        audio += _quiet(start - at) + _tone(end - start)
        at = end
    return audio + _quiet(1500)


async def test_three_utterances_three_transcripts() -> None:
    async def microphone() -> AsyncIterator[bytes]:
        audio = _three_utterances()
        for i in range(0, len(audio), 4800):
            yield audio[i : i + 4800]

    seen: list[TranscriptSegment] = []
    with trio.fail_after(20):
        async with (
            run_engine(transcriber=Hears("hello there friend")) as url,
            open_transcription_session(url=url, audio_in=microphone()) as captions,
        ):
            async for segment in captions:
                seen.append(segment)
                if len(captions.segments) == 3:
                    break
            stats = captions.session.statistics()
            usage = captions.session.usage
    finals = [s for s in seen if s.final]
    assert [s.text for s in finals] == ["hello there friend"] * 3
    for segment, (start, end) in zip(finals, TRUTH, strict=True):
        assert segment.start_ms is not None and abs(segment.start_ms - start) <= 100
        assert segment.end_ms is not None and abs(segment.end_ms - end) <= 100
        assert segment.usage is not None
    for item in {s.item_id for s in seen}:
        texts = [s.text for s in seen if s.item_id == item]
        assert all(b.startswith(a) for a, b in itertools.pairwise(texts))  # only grows
    assert stats["creates_sent"] == 0 and usage.responses == 0  # no response, ever


def _segments() -> list[TranscriptSegment]:
    return [
        TranscriptSegment(item_id="a", text="hello  there", final=True, start_ms=500, end_ms=1300),
        TranscriptSegment(item_id="b", text="partial", final=False, start_ms=1400, end_ms=None),
        TranscriptSegment(
            item_id="c", text="an hour later", final=True, start_ms=3_723_004, end_ms=3_724_500
        ),
    ]


def test_srt_parses_with_an_independent_parser() -> None:
    cues = list(srt.parse(to_srt(_segments())))
    assert [c.content for c in cues] == ["hello there", "an hour later"]
    assert [c.start.total_seconds() for c in cues] == [0.5, 3723.004]
    assert cues[0].end.total_seconds() == 1.3


def test_webvtt_parses_with_an_independent_parser(tmp_path: Path) -> None:
    path = tmp_path / "captions.vtt"
    path.write_text(to_webvtt(_segments()))
    cues = list(webvtt.read(str(path)))
    assert [(c.start, c.end, c.text) for c in cues] == [
        ("00:00:00.500", "00:00:01.300", "hello there"),
        ("01:02:03.004", "01:02:04.500", "an hour later"),
    ]


PHRASES = ["What is the weather in Paris", "Turn on the kitchen lights", "Hello my name is Alice"]


async def _spoken_wav(path: Path) -> None:
    from framework.audio import write_wav

    voice = EspeakSynthesizer()
    parts = []
    for phrase in PHRASES:
        parts += [
            np.zeros(RATE, dtype=np.int16),
            await voice.synthesize(phrase, rate=RATE, voice="ash"),
        ]
    parts.append(np.zeros(RATE, dtype=np.int16))
    write_wav(path, np.concatenate(parts), RATE)


async def test_real_speech_in_grammar_mode(tmp_path: Path) -> None:
    from framework.audio import WavSource

    wav = tmp_path / "three.wav"
    await _spoken_wav(wav)
    with trio.fail_after(30):
        async with (
            run_engine(transcriber=PocketsphinxTranscriber(grammar=PHRASES)) as url,
            open_transcription_session(
                url=url, audio_in=WavSource(wav, realtime=False, tail_silence_ms=1000)
            ) as captions,
        ):
            async for _ in captions:
                if len(captions.segments) == 3:
                    break
    assert [s.text for s in captions.segments] == PHRASES


async def test_cantata_transcribe_writes_captions(tmp_path: Path) -> None:
    wav, out = tmp_path / "three.wav", tmp_path / "three.srt"
    await _spoken_wav(wav)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    with trio.fail_after(90):
        result = await trio.run_process(
            [sys.executable, "-m", "framework.apps.cli", "transcribe", str(wav), "--out", str(out)],
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    cues = list(srt.parse(out.read_text()))
    assert len(cues) == 3  # open vocabulary: the words are rough, the turns are not
    assert all(c.content for c in cues)
    assert (
        cues[0].start.total_seconds()
        < cues[1].start.total_seconds()
        < cues[2].start.total_seconds()
    )
    assert b"wrote 3 captions" in result.stdout


class SlowFirst:
    """Hears each turn as its number; the first turn takes longest, so its
    ``completed`` comes after the later ones' (as a server may send them)."""

    name = "slow-first"

    def __init__(self) -> None:
        self.calls = 0
        self.finished: list[str] = []

    async def transcribe(
        self, samples: object, *, rate: int, language: str | None, prompt: str | None
    ) -> list[str]:
        self.calls += 1
        text = f"turn {self.calls}"
        await trio.sleep(0.6 if self.calls == 1 else 0.0)
        self.finished.append(text)
        return [text]


async def _file_like(audio: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(audio), 4800):
        yield audio[i : i + 4800]


async def test_finals_come_in_turn_order_and_the_iteration_ends_with_the_audio() -> None:
    slow = SlowFirst()
    seen: list[TranscriptSegment] = []
    with trio.fail_after(20):
        async with (
            run_engine(transcriber=slow) as url,
            open_transcription_session(url=url, audio_in=_file_like(_three_utterances())) as c,
        ):
            async for segment in c:  # no break: it ends when the audio is transcribed
                seen.append(segment)
    assert slow.finished[0] != "turn 1"  # the server finished a later turn first...
    finals = [s.text for s in seen if s.final]
    assert finals == ["turn 1", "turn 2", "turn 3"]  # ...and the captions keep their order
    assert [s.text for s in c.segments] == finals
    starts = [s.start_ms for s in c.segments]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(starts))


async def test_an_engine_that_cannot_transcribe_ends_with_failed_segments() -> None:
    with trio.fail_after(20):
        async with (
            run_engine() as url,
            open_transcription_session(url=url, audio_in=_file_like(_three_utterances())) as c,
        ):
            seen = [segment async for segment in c]
    assert len(seen) == 3 and all(s.final and s.text == "" for s in seen)
    assert all(s.error is not None and "No transcriber" in s.error for s in seen)
    assert to_srt(c.segments) == ""  # nothing to caption


async def test_a_turn_still_open_when_the_audio_ends_is_closed_and_transcribed() -> None:
    # The file stops in the middle of speech: the session's closing silence ends the turn.
    audio = _quiet(500) + _tone(800)
    with trio.fail_after(20):
        async with (
            run_engine(transcriber=Hears("cut off")) as url,
            open_transcription_session(url=url, audio_in=_file_like(audio)) as c,
        ):
            seen = [segment async for segment in c if segment.final]
    assert [s.text for s in seen] == ["cut off"]
    assert seen[0].start_ms is not None and abs(seen[0].start_ms - 500) <= 100
