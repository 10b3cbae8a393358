"""``cantata serve`` with the speech extra hears a plain official-SDK client out of the box.

The engine is the real command in a subprocess, with no part named: the speech
plugin's transcriber, voice and VAD are its defaults. The client is the
official ``openai`` SDK with no extra settings. As on the hosted API, the
model hears the spoken question whether or not the session asks for
transcription, and ``input_audio_transcription`` events come only when it does.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import trio
from openai import AsyncOpenAI

from plugins.speech import EspeakSynthesizer

from .engine.served import spawn
from .engine.test_sdk import in_asyncio

RULES = """
fallback = "Sorry, I did not catch that."

[[rule]]
when = "cancel my order"
say = "Your order is cancelled."
"""
QUESTION = "I would like to cancel my order"


def _spoken(text: str) -> list[str]:
    """``text`` in espeak's voice as 100 ms base64 appends, then a second of silence."""
    speech = EspeakSynthesizer().synthesize_blocking(text, rate=24000, voice="ash")
    audio = np.concatenate([np.zeros(12000, np.int16), speech, np.zeros(24000, np.int16)])
    raw = audio.astype("<i2").tobytes()
    return [base64.b64encode(raw[i : i + 4800]).decode() for i in range(0, len(raw), 4800)]


async def _ask(base_url: str, chunks: list[str], *, transcription: bool) -> list[Any]:
    """Speaks the question into a session; the events until its response is done."""

    async def client() -> list[Any]:
        async with (
            AsyncOpenAI(api_key="unused", websocket_base_url=base_url, max_retries=0) as openai,
            openai.realtime.connect(model="gpt-realtime") as conn,
        ):
            events = [await conn.recv()]  # session.created
            if transcription:
                await conn.session.update(
                    session={
                        "type": "realtime",
                        "audio": {"input": {"transcription": {"model": "whisper-1"}}},
                    }
                )
            for chunk in chunks:
                await conn.input_audio_buffer.append(audio=chunk)
            while events[-1].type != "response.done":
                events.append(await conn.recv())
            return events

    return await in_asyncio(client, seconds=60)


def _reply(done: Any) -> str:
    return str(done.response.output[0].content[0].transcript)


async def test_serve_hears_a_spoken_question_as_the_hosted_model_would(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    chunks = _spoken(QUESTION)
    with trio.fail_after(120):
        async with spawn("serve", "--port", "0", "--rules", str(rules)) as served:
            await served.stdout.line_with("Ready")
            banner = served.stdout.text
            base_url = served.url.removesuffix("/realtime")
            plain = await _ask(base_url, chunks, transcription=False)
            asked = await _ask(base_url, chunks, transcription=True)
            served.process.terminate()
    assert "transcriber: pocketsphinx (English, open vocabulary)" in banner
    assert "synthesizer: espeak" in banner and "vad:         silero" in banner
    # No transcription asked for: the brain heard the question all the same...
    assert _reply(plain[-1]) == "Your order is cancelled."
    assert not [e.type for e in plain if "input_audio_transcription" in e.type]
    committed = next(e for e in plain if e.type == "conversation.item.done")
    assert committed.item.content[0].transcript is None  # ...and no transcript is shown.
    # Asked for: the same answer, with the transcription events.
    assert _reply(asked[-1]) == "Your order is cancelled."
    completed = [e for e in asked if e.type.endswith("input_audio_transcription.completed")]
    assert [e.transcript for e in completed] == ["i would like to cancel my order"]


async def test_the_rules_phrases_make_the_default_transcriber_a_grammar(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'phrases = ["{QUESTION}.", "Good morning"]\n{RULES}')
    chunks = _spoken(QUESTION)
    with trio.fail_after(120):
        async with spawn("serve", "--port", "0", "--rules", str(rules)) as served:
            await served.stdout.line_with("Ready")
            banner = served.stdout.text
            asked = await _ask(served.url.removesuffix("/realtime"), chunks, transcription=True)
            served.process.terminate()
    assert "transcriber: pocketsphinx (grammar: hears only 2 phrases)" in banner
    completed = [e for e in asked if e.type.endswith("input_audio_transcription.completed")]
    # A phrase of the grammar comes back as the rules wrote it, case and stop included.
    assert [e.transcript for e in completed] == [f"{QUESTION}."]
    assert _reply(asked[-1]) == "Your order is cancelled."
