"""The official SDK, unchanged, runs a transcription session against the engine.

Every frame passes the strict oracle and parses into the SDK's own class
(see :class:`CheckedConnection`); the transcriber is a stand-in that hears a
fixed sentence, since what is under test is the session's protocol.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import numpy as np
import pytest
import trio
from openai import AsyncOpenAI

from framework.engine import Engine, open_engine

from ..runtime.test_transcripts import Hears
from .test_sdk import API_KEY, CheckedConnection, in_asyncio


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    engine = Engine(api_key=API_KEY, transcriber=Hears("turn on the lights"))
    async with open_engine(engine) as running:
        yield running.url.removesuffix("/realtime")


def _turn() -> list[str]:
    t = np.arange(700 * 24) / 24000
    tone = (np.sin(2 * np.pi * 300 * t) * 0.3 * 32767).astype("<i2").tobytes()
    audio = bytes(300 * 48) + tone + bytes(800 * 48)
    return [base64.b64encode(audio[i : i + 4800]).decode() for i in range(0, len(audio), 4800)]


async def test_sdk_transcription_session(base_url: str) -> None:
    async def client() -> None:
        async with (
            AsyncOpenAI(api_key=API_KEY, websocket_base_url=base_url, max_retries=0) as openai,
            openai.realtime.connect(extra_query={"intent": "transcription"}) as conn,
        ):
            sdk = CheckedConnection(conn)
            async with asyncio.timeout(5):
                created = await sdk.recv()
            assert created.type == "session.created" and created.session.type == "transcription"
            await conn.session.update(
                session={
                    "type": "transcription",
                    "audio": {
                        "input": {
                            "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                        }
                    },
                }
            )
            updated = (await sdk.until("session.updated"))[-1]
            assert updated.session.audio.input.transcription.language == "en"
            for chunk in _turn():
                await conn.input_audio_buffer.append(audio=chunk)
            events = await sdk.until("conversation.item.input_audio_transcription.completed")
            kinds = [e.type for e in events]
            assert "input_audio_buffer.speech_started" in kinds
            assert "input_audio_buffer.committed" in kinds
            deltas = [e.delta for e in events if e.type.endswith("transcription.delta")]
            assert "".join(deltas) == events[-1].transcript == "turn on the lights"
            assert events[-1].usage is not None
            assert not [k for k in kinds if k.startswith("response.")]
            await conn.response.create()
            error = (await sdk.until("error"))[-1]
            assert error.error.type == "invalid_request_error"

    with trio.fail_after(15):
        await in_asyncio(client)
