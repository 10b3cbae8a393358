"""The voice demo: speech in, tools, an approval, an MCP call, speech out. Offline.

What it shows, in three spoken turns against the local engine started
in-process with real offline speech (espeak-ng, Silero VAD, and pocketsphinx
limited to the three sentences by the ``phrases`` of ``voice.toml``: a grammar,
which the output says; open vocabulary gets about one word in three wrong on
these synthetic voices):

1. "What is the weather in Paris": the user's speech (synthesized, written to
   ``demo-user.wav`` and streamed in real time) is cut into a turn by server
   VAD, transcribed, and answered through a function tool;
2. "What time is it in Tokyo": answered by a real MCP server process
   (``mcp-server-time`` over stdio) through the MCP plugin;
3. "Book an umbrella delivery to the office": a tool that needs approval,
   granted by the application.

The assistant's speech is played on a clock and written to
``demo-assistant.wav`` (only what was heard). Run it from the repository root::

    .venv/bin/python examples/voice_bot.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import trio

from framework import (
    Agent,
    ApprovalRequested,
    AssistantMessage,
    Session,
    ToolCallFinished,
    UserTranscript,
    open_session,
    tool,
)
from framework.audio import WavSink, write_wav
from framework.engine import Rules
from framework.protocol import AudioTranscription, ServerVad
from framework.testing import run_engine
from plugins.mcp import McpServer
from plugins.speech import EspeakSynthesizer, PocketsphinxTranscriber, SileroVad

HERE = Path(__file__).parent
RULES = HERE / "voice.toml"  # how `cantata run examples/voice_bot.py` finds the rules too
RATE = 24000
TURNS = Rules.from_file(RULES).phrases  # what the user says: the rules' phrases


class Concierge(Agent):
    instructions = "You are a concierge. Be brief."
    voice = "marin"
    transcription = AudioTranscription(model="gpt-4o-mini-transcribe")
    turn_detection = ServerVad(type="server_vad", silence_duration_ms=600)
    plugins = (McpServer.stdio(sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"),)

    @tool
    async def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: the city, as the user named it.
        """
        return {"paris": "sunny and 21 degrees"}.get(city.lower(), "cloudy")

    @tool(needs_approval=True)
    async def book_umbrella_delivery(self, address: str) -> str:
        """Sends an umbrella.

        Args:
            address: where to deliver it.
        """
        return f"an umbrella is on its way to {address}"


async def show(session: Session) -> None:
    """Prints the conversation as it happens; approves what asks for approval."""
    async for event in session:
        if isinstance(event, UserTranscript) and event.final:
            print(f"heard:     {event.text}")
        elif isinstance(event, ToolCallFinished):
            print(
                f"tool:      {event.name}({event.arguments}) -> {event.output!r} [{event.status}]"
            )
        elif isinstance(event, ApprovalRequested):
            print(f"approval:  {event.request.tool}({event.request.arguments}) -> approved")
            session.approve(event.request)
        elif isinstance(event, AssistantMessage):
            print(f"assistant: {event.text}  [{event.audio_ms / 1000:.1f} s of speech]")


def with_pause(audio: np.ndarray) -> np.ndarray:
    """An utterance and the second of silence after it that ends the turn."""
    return np.concatenate([audio, np.zeros(RATE, dtype=np.int16)])


async def speak(session: Session, sink: WavSink, audio: np.ndarray) -> None:
    """Streams one utterance like a microphone, then waits out the whole reply."""
    chunk = RATE // 50  # 20 ms
    padded = with_pause(audio)
    start = trio.current_time()
    for n, i in enumerate(range(0, len(padded), chunk)):
        await session.send_audio(padded[i : i + chunk].astype("<i2").tobytes())
        await trio.sleep_until(start + (n + 1) * 0.02)
    await trio.sleep(0.5)
    await session.wait_quiet()
    await sink.drain()  # speaking over the reply would be a barge-in


async def main() -> None:
    started = time.perf_counter()
    voice = EspeakSynthesizer()
    user = [await voice.synthesize(text, rate=RATE, voice="ash") for text in TURNS]
    # The file holds what is streamed, pauses included, so that
    # `cantata run examples/voice_bot.py --input-wav examples/demo-user.wav` hears three turns.
    write_wav(HERE / "demo-user.wav", np.concatenate([with_pause(a) for a in user]), RATE)
    engine = {
        "transcriber": PocketsphinxTranscriber().with_phrases(TURNS),
        "synthesizer": EspeakSynthesizer(),
        "vad": SileroVad(),
    }
    sink = WavSink(HERE / "demo-assistant.wav")
    async with run_engine(rules=RULES, **engine) as url:
        print(f"local engine: {url} (a deterministic scripted model, offline speech)")
        print(f"transcriber: {engine['transcriber'].description}")
        async with (
            open_session(Concierge(), url=url, audio_out=sink) as session,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(show, session)
            for text, audio in zip(TURNS, user, strict=True):
                print(f"user says: {text!r} ({len(audio) / RATE:.1f} s of speech)")
                await speak(session, sink, audio)
            nursery.cancel_scope.cancel()
        await sink.aclose()
    print("wrote examples/demo-user.wav (speech in) and examples/demo-assistant.wav (speech out)")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
