"""Live captions for a WAV file, offline: a transcription session, no assistant.

What it shows: a WAV file with three spoken sentences (synthesized here with
espeak-ng, so the example needs no recording) streamed into a transcription
session on the local engine (pocketsphinx in grammar mode, so the words come
back exactly); each caption printed with its start and end in the audio; and
the captions written as SubRip and WebVTT files. Run it from the repository
root::

    .venv/bin/python examples/captions.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trio

from framework import open_transcription_session
from framework.apps.captions import write_captions
from framework.audio import WavSource, write_wav
from framework.testing import run_engine
from plugins.speech import EspeakSynthesizer, PocketsphinxTranscriber

HERE = Path(__file__).parent
RATE = 24000
SENTENCES = ["Turn on the kitchen lights", "What is the weather in Paris", "Hello my name is Alice"]


async def main() -> None:
    voice = EspeakSynthesizer()
    pause = np.zeros(RATE, dtype=np.int16)
    audio = [pause]
    for sentence in SENTENCES:
        audio += [await voice.synthesize(sentence, rate=RATE, voice="sage"), pause]
    wav = HERE / "demo-captions.wav"
    write_wav(wav, np.concatenate(audio), RATE)
    ears = PocketsphinxTranscriber(grammar=SENTENCES)
    async with (
        run_engine(transcriber=ears) as url,
        open_transcription_session(
            url=url, audio_in=WavSource(wav, realtime=False, tail_silence_ms=1000)
        ) as captions,
    ):
        async for segment in captions:
            if segment.final:
                start, end = (segment.start_ms or 0) / 1000, (segment.end_ms or 0) / 1000
                print(f"[{start:6.2f} s -> {end:6.2f} s] {segment.text}")
            if len(captions.segments) == len(SENTENCES):
                break
    for suffix in (".srt", ".vtt"):
        write_captions(HERE / f"demo-captions{suffix}", captions.segments)
    print("wrote examples/demo-captions.srt and examples/demo-captions.vtt")


if __name__ == "__main__":
    trio.run(main)
