"""Transcription sessions (``type: "transcription"``) on the wire: VAD turns become
transcripts and never responses. Every event is checked against the SDK by the raw client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx2
import numpy as np
import pytest
import trio

from framework.engine import Engine, RunningEngine, open_engine

from .helpers import appends, connect, silence, speech, types

DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"


class Hears:
    """A fake transcriber: each turn is heard as the next scripted transcript, in pieces."""

    name = "hears"

    def __init__(self, *transcripts: Sequence[str]) -> None:
        self.transcripts = list(transcripts)
        self.calls: list[dict[str, object]] = []

    async def transcribe(
        self, samples: np.ndarray, *, rate: int, language: str | None, prompt: str | None
    ) -> Sequence[str]:
        self.calls.append(
            {"ms": len(samples) * 1000 // rate, "language": language, "prompt": prompt}
        )
        return self.transcripts.pop(0)


@pytest.fixture
async def running() -> AsyncIterator[RunningEngine]:
    hears = Hears(["one", " two"], ["three"], ["four", " five", " six"])
    async with open_engine(Engine(transcriber=hears)) as running:
        yield running


CONFIG = {
    "type": "transcription",
    "audio": {
        "input": {
            "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "numbers"},
            "turn_detection": {
                "type": "server_vad",
                "silence_duration_ms": 300,
                "prefix_padding_ms": 0,
            },
            "noise_reduction": {"type": "near_field"},
        }
    },
    "include": ["item.input_audio_transcription.logprobs"],
}


async def test_three_utterances_give_three_transcripts_and_no_response(
    running: RunningEngine,
) -> None:
    async with connect(running.url + "?intent=transcription") as client:
        (created,) = client.received
        assert created["session"]["type"] == "transcription"
        assert created["session"]["object"] == "realtime.transcription_session"
        await client.send({"type": "session.update", "session": CONFIG})
        updated = (await client.until("session.updated"))[-1]["session"]
        assert updated["audio"]["input"]["transcription"]["language"] == "en"
        assert updated["include"] == ["item.input_audio_transcription.logprobs"]
        truth = [(500, 1300), (2300, 2900), (3900, 5100)]
        stream = [silence(500), speech(800), silence(1000), speech(600), silence(1000)]
        stream += [speech(1200), silence(1000)]
        for event in appends(np.concatenate(stream)):
            await client.send(event)
        events: list[dict[str, object]] = []
        for _ in truth:
            events += await client.until(COMPLETED)
        await client.nothing_for(0.5)
        started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
        stopped = [e for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
        assert len(started) == len(stopped) == 3
        for (start, end), s, t in zip(truth, started, stopped, strict=True):
            assert abs(int(s["audio_start_ms"]) - start) <= 100, (s, start)  # type: ignore[call-overload]
            # audio_end_ms counts the silence that ended the turn (300 ms here)
            assert abs(int(t["audio_end_ms"]) - 300 - end) <= 100, (t, end)  # type: ignore[call-overload]
        completed = [e for e in events if e["type"] == COMPLETED]
        assert [e["transcript"] for e in completed] == ["one two", "three", "four five six"]
        assert all(e["usage"]["type"] == "duration" for e in completed)  # type: ignore[index]
        for done in completed:
            so_far = ""
            for e in events:
                if e["type"] == DELTA and e["item_id"] == done["item_id"]:
                    grown = so_far + str(e["delta"])
                    assert grown.startswith(so_far) and len(grown) > len(so_far)
                    so_far = grown
            assert so_far == done["transcript"]
        assert not [t for t in types(client.received) if t.startswith("response.")]


async def test_response_create_is_refused(running: RunningEngine) -> None:
    async with connect(running.url + "?intent=transcription") as client:
        await client.send({"type": "response.create", "event_id": "evt_1"})
        error = await client.error()
        assert error["type"] == "invalid_request_error"
        assert "transcription session" in error["message"]
        assert error["event_id"] == "evt_1"


async def test_a_transcription_session_cannot_become_realtime(running: RunningEngine) -> None:
    async with connect(running.url + "?intent=transcription") as client:
        await client.send({"type": "session.update", "session": {"type": "realtime"}})
        error = await client.error()
        assert error["param"] == "session.type"


async def test_invalid_transcription_config_is_refused(running: RunningEngine) -> None:
    async with connect(running.url + "?intent=transcription") as client:
        bad = {"type": "transcription", "audio": {"input": {"noise_reduction": {"type": "x"}}}}
        await client.send({"type": "session.update", "session": bad})
        error = await client.error()
        assert error["param"] == "session.audio.input.noise_reduction.type"


async def test_the_legacy_event_is_refused_naming_its_replacement(
    running: RunningEngine,
) -> None:
    async with connect(running.url + "?intent=transcription") as client:
        await client.send({"type": "transcription_session.update", "session": {"include": []}})
        error = await client.error()
        assert error["type"] == "invalid_request_error"
        assert "session.update" in error["message"] and "'transcription'" in error["message"]


async def test_a_session_minted_through_a_client_secret(running: RunningEngine) -> None:
    async with httpx2.AsyncClient(base_url=running.http_url + "/", timeout=5) as http:
        with trio.fail_after(10):
            minted = await http.post("realtime/client_secrets", json={"session": CONFIG})
    assert minted.status_code == 200, minted.text
    from openai.types.realtime import ClientSecretCreateResponse

    parsed = ClientSecretCreateResponse.model_validate(minted.json(), strict=True)
    assert parsed.session.type == "transcription"
    assert minted.json()["session"]["object"] == "realtime.transcription_session"
    value = minted.json()["value"]
    async with connect(running.url, headers=[("Authorization", f"Bearer {value}")]) as client:
        (created,) = client.received
        session = created["session"]
        assert session["type"] == "transcription"
        assert session["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
        for event in appends(np.concatenate([speech(600), silence(800)])):
            await client.send(event)
        events = await client.until(COMPLETED)
        assert events[-1]["transcript"] == "one two"
        await client.send({"type": "response.create"})
        assert (await client.error())["type"] == "invalid_request_error"
