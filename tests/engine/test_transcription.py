"""Input audio transcription, in memory on the MockClock (§2 transcription events, §7.2).

Without a transcriber every committed turn gets a ``failed`` event and the
brain still answers. With one, the brain hears every turn, and transcription
events come only when the session asks for them. The transcriber here is a
fake that returns scripted text (the real offline one is tested with the
speech plugin); these tests pin what the engine does around any transcriber
(deltas, completion, the brain reading what was said).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

from framework.engine import Engine, Transcriber, TranscriptionUnavailable

from .helpers import Client, appends, memory_session, silence, speech, types

GREETING = "Hello! I'm the local Cantata engine, a scripted model. How can I help?"
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"
FAILED = "conversation.item.input_audio_transcription.failed"


class FakeTranscriber:
    """Hears each turn as the next scripted transcript, given in pieces."""

    name = "fake"

    def __init__(self, *transcripts: Sequence[str], delay: float = 0.0) -> None:
        self.transcripts = list(transcripts)
        self.delay = delay
        self.calls: list[dict[str, Any]] = []

    async def transcribe(
        self, samples: np.ndarray, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        self.calls.append(
            {"samples": len(samples), "rate": rate, "language": language, "prompt": prompt}
        )
        await trio.sleep(self.delay)  # a slow model, on the mock clock
        return self.transcripts.pop(0)


class BrokenTranscriber:
    """A transcriber plug-in with a bug."""

    name = "broken"

    async def transcribe(
        self, samples: np.ndarray, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        raise RuntimeError("model file is corrupt")


async def _transcribe_with(client: Client, transcription: dict[str, Any]) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"transcription": transcription}}},
        }
    )
    session = (await client.until("session.updated"))[-1]["session"]
    assert session["audio"]["input"]["transcription"]["model"] == transcription["model"]


async def _speak_turn(client: Client) -> None:
    """One VAD turn: speech at 500-900 ms, committed at 1400 ms (900 ms of audio)."""
    for event in appends(np.concatenate([silence(500), speech(400), silence(700)])):
        await client.send(event)


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def _reply(events: list[dict[str, Any]]) -> str:
    text: str = events[-1]["response"]["output"][0]["content"][0]["transcript"]
    return text


@pytest.mark.parametrize("model", ["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
async def test_no_transcriber_fails_the_transcription_clearly(
    autojump_clock: trio.testing.MockClock, model: str
) -> None:
    async with memory_session() as (client, _):
        await _transcribe_with(client, {"model": model})
        await _speak_turn(client)
        events = await client.until("response.done")
        # The failure may land before or after response.done: wait for it too.
        if FAILED not in types(events):
            events += await client.until(FAILED)
        kinds = types(events)
        committed = events[kinds.index("input_audio_buffer.committed")]
        failed = events[kinds.index(FAILED)]
        assert failed["item_id"] == committed["item_id"]
        assert failed["content_index"] == 0
        assert failed["error"]["type"] == "transcription_error"
        assert failed["error"]["code"] == "transcriber_unavailable"
        assert "No transcriber is installed" in failed["error"]["message"]
        assert COMPLETED not in kinds
        assert DELTA not in kinds
        # The engine still answers: the brain got audio it cannot read.
        assert events[-1]["type"] == "response.done"
        assert events[-1]["response"]["status"] == "completed"
        assert "can't make out audio" in _reply(events)
        # ... and the session goes on.
        await client.send({"type": "input_audio_buffer.clear"})
        await client.until("input_audio_buffer.cleared")


async def test_no_transcriber_with_a_manual_commit(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_session() as (client, _):
        await client.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "output_modalities": ["text"],
                    "audio": {
                        "input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}
                    },
                },
            }
        )
        await client.until("session.updated")
        for event in appends(speech(300)):
            await client.send(event)
        await client.send({"type": "input_audio_buffer.commit"})
        events = await client.until(FAILED)
        assert events[0]["type"] == "input_audio_buffer.committed"
        await client.send({"type": "response.create"})
        done = (await client.until("response.done"))[-1]["response"]
        assert "can't make out audio" in done["output"][0]["content"][0]["text"]


async def test_deltas_add_up_to_the_transcript_the_brain_reads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTranscriber(["hel", "lo", " there"], delay=2.0)
    assert isinstance(fake, Transcriber)
    async with memory_session(Engine(transcriber=fake)) as (client, _):
        await _transcribe_with(
            client, {"model": "gpt-4o-transcribe", "language": "en", "prompt": "greetings"}
        )
        await _speak_turn(client)
        events = await client.until("input_audio_buffer.committed")
        committed_at = trio.current_time()
        events += await client.until("response.done")
        answered_at = trio.current_time()
        if COMPLETED not in types(events):
            events += await client.until(COMPLETED)
        item_id = _of(events, "input_audio_buffer.committed")[0]["item_id"]
        deltas = _of(events, DELTA)
        [completed] = _of(events, COMPLETED)
        assert [d["delta"] for d in deltas] == ["hel", "lo", " there"]
        assert all(d["item_id"] == item_id and d["content_index"] == 0 for d in deltas)
        assert completed["item_id"] == item_id and completed["content_index"] == 0
        assert completed["transcript"] == "".join(d["delta"] for d in deltas) == "hello there"
        # Speech from 200 ms (padding) to 1400 ms: 1.2 s of audio at 24 kHz.
        assert completed["usage"] == {"type": "duration", "seconds": 1.2}
        assert fake.calls == [
            {"samples": 1200 * 24, "rate": 24000, "language": "en", "prompt": "greetings"}
        ]
        # The brain waited for the slow transcript and answered what was said.
        assert answered_at - committed_at >= 2.0
        assert _reply(events) == GREETING
        await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
        item = (await client.until("conversation.item.retrieved"))[-1]["item"]
        assert item["content"][0]["transcript"] == "hello there"
        assert len(base64.b64decode(item["content"][0]["audio"])) == 1200 * 48


async def test_each_turn_is_answered_from_its_own_transcript(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTranscriber(["hello"], ["ok, good", "bye"])
    async with memory_session(Engine(transcriber=fake)) as (client, _):
        await _transcribe_with(client, {"model": "whisper-1"})
        await _speak_turn(client)
        first = await client.until("response.done")
        await _speak_turn(client)
        second = await client.until("response.done")
        assert _reply(first) == GREETING
        assert _reply(second) == "Goodbye!"
        assert len(fake.calls) == 2


async def test_without_transcription_asked_the_brain_hears_but_no_event_says_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The hosted model understands speech whether or not transcripts are asked
    # for; asking only adds the transcription events.
    fake = FakeTranscriber(["hello"])
    async with memory_session(Engine(transcriber=fake)) as (client, _):
        await _speak_turn(client)
        events = await client.until("response.done")
        await client.nothing_for(5)
        assert not any("input_audio_transcription" in kind for kind in types(events))
        assert len(fake.calls) == 1 and fake.calls[0]["language"] is None
        assert _reply(events) == GREETING
        item_id = _of(events, "input_audio_buffer.committed")[0]["item_id"]
        await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
        item = (await client.until("conversation.item.retrieved"))[-1]["item"]
        assert item["content"][0]["transcript"] is None  # the heard text is the brain's alone


async def test_without_a_transcriber_the_brain_says_it_cannot_hear(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_session(Engine()) as (client, _):
        await _speak_turn(client)
        events = await client.until("response.done")
        assert not any("input_audio_transcription" in kind for kind in types(events))
        assert "can't make out audio" in _reply(events)


async def test_an_unavailable_fake_transcriber_fails_with_its_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Offline(FakeTranscriber):
        async def transcribe(self, *args: Any, **kwargs: Any) -> Sequence[str]:
            raise TranscriptionUnavailable("the model 'tiny.en' is not downloaded")

    async with memory_session(Engine(transcriber=Offline())) as (client, _):
        await _transcribe_with(client, {"model": "whisper-1"})
        await _speak_turn(client)
        events = await client.until(FAILED)
        failed = events[-1]
        assert failed["error"]["message"] == "the model 'tiny.en' is not downloaded"
        await client.until("response.done")


async def test_a_crashing_transcriber_fails_the_transcription_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A plug-in's bug is a failed transcription, not a dead session.
    async with memory_session(Engine(transcriber=BrokenTranscriber())) as (client, _):
        await _transcribe_with(client, {"model": "whisper-1"})
        await _speak_turn(client)
        events = await client.until(FAILED)
        assert "model file is corrupt" in events[-1]["error"]["message"]
        done = (await client.until("response.done"))[-1]["response"]
        assert done["status"] == "completed"
        await client.send({"type": "input_audio_buffer.clear"})
        await client.until("input_audio_buffer.cleared")
