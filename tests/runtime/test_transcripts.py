"""User transcripts in the session: partials that grow, the final text, the hook.

The engine's transcriber here is a stand-in that "hears" a fixed sentence:
the real offline transcriber is a later piece of work, and what is under
test is the client side, which must not care where the words come from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import trio
from trio.testing import MockClock

from framework import open_session
from framework.protocol import AudioTranscription, ServerVad
from framework.runtime import UserTranscript
from framework.testing import engine_wire

from .bots import RULES, WeatherBot


class Hears:
    """A transcriber that hears the same words in any audio, word by word."""

    name = "hears"

    def __init__(self, text: str) -> None:
        self.text = text

    async def transcribe(
        self, samples: object, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        words = self.text.split(" ")
        return [words[0], *(" " + w for w in words[1:])]


class Listener(WeatherBot):
    turn_detection = ServerVad(
        type="server_vad", threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200
    )
    transcription = AudioTranscription(model="gpt-4o-mini-transcribe")

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[str] = []

    async def on_user_transcript(self, session: object, text: str) -> None:
        self.heard.append(text)


def _speech_then_silence() -> bytes:
    t = np.arange(600 * 24) / 24000
    tone = (np.sin(2 * np.pi * 300 * t) * 0.3 * 32767).astype("<i2").tobytes()
    return tone + bytes(400 * 48)


async def test_transcripts_grow_then_settle(autojump_clock: MockClock) -> None:
    bot = Listener()
    async with (
        engine_wire(rules=RULES, transcriber=Hears("what is the weather in Oslo")) as wire,
        open_session(bot, connection=wire) as session,
    ):
        audio = _speech_then_silence()
        for i in range(0, len(audio), 960):
            await session.send_audio(audio[i : i + 960])
        transcripts: list[UserTranscript] = []
        async for event in session:
            if isinstance(event, UserTranscript):
                transcripts.append(event)
                if event.final:
                    break
        await session.wait_quiet()
        await trio.sleep(1)  # the hook runner has run
        history = session.history.transcript()
    partials = [t.text for t in transcripts if not t.final]
    assert partials == [
        "what",
        "what is",
        "what is the",
        "what is the weather",
        "what is the weather in",
        "what is the weather in Oslo",
    ]
    assert transcripts[-1].final and transcripts[-1].text == "what is the weather in Oslo"
    assert bot.heard == ["what is the weather in Oslo"]
    assert bot.calls == ["Oslo"]  # the engine's brain read the transcript
    assert history[0] == ("user", "what is the weather in Oslo")
    assert history[-1] == ("assistant", "In Oslo it is snowing.")
