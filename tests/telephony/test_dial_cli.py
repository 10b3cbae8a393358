"""``cantata dial``: the simulated Twilio caller as a command, against a live endpoint."""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path

import numpy as np
import trio

from framework.audio import write_wav
from framework.engine import open_engine
from framework.runtime import DtmfReceived
from framework.telephony import PhoneServer, open_phone_server

from .phone import AUTH_TOKEN, HOURS, Heard, Receptionist, engine, said


async def cantata(*args: str) -> trio.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "framework.apps.cli", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def test_dial_speaks_a_wav_presses_keys_and_records_what_it_heard(tmp_path: Path) -> None:
    from plugins.speech import EspeakSynthesizer

    question = tmp_path / "question.wav"
    voice = EspeakSynthesizer().synthesize_blocking(HOURS, rate=16000, voice="alloy")
    write_wav(question, voice, 16000)  # not 8 kHz: dial resamples it
    record = tmp_path / "heard.wav"
    heard = Heard()
    with trio.fail_after(90):
        async with open_engine(engine()) as running:
            server = PhoneServer(
                agent=Receptionist,
                url=running.url,
                twilio_auth_token=AUTH_TOKEN,
                on_call=heard.on_call,
            )
            async with open_phone_server(server) as base:
                result = await cantata(
                    "dial",
                    base,
                    "--wav",
                    str(question),
                    "--digits",
                    "12#",
                    "--wait",
                    "3",
                    "--listen",
                    "9",
                    "--record",
                    str(record),
                    "--auth-token",
                    AUTH_TOKEN,
                )
                await server.wait_until(lambda s: not s.calls)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    summary = json.loads(result.stdout)
    assert summary["call_sid"].startswith("CA")
    assert len(summary["heard_by_item_ms"]) >= 2  # the greeting and the answer
    assert summary["marks_acknowledged"] > 100
    assert any(said("We are open from nine to five.")(e) for e in heard.events)
    assert [e.digit for e in heard.events if isinstance(e, DtmfReceived)] == ["1", "2", "#"]
    with wave.open(str(record)) as wav:
        assert wav.getframerate() == 8000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert np.abs(samples).max() > 1000  # the agent's voice, not silence


async def test_dial_without_a_token_or_an_endpoint_says_what_to_do() -> None:
    with trio.fail_after(30):
        no_token = await cantata("dial", "http://127.0.0.1:9")
        unreachable = await cantata("dial", "http://127.0.0.1:9", "--auth-token", "t")
    assert no_token.returncode == 2
    assert b"TWILIO_AUTH_TOKEN" in no_token.stderr
    assert unreachable.returncode == 1
    assert unreachable.stderr.decode().startswith("cantata dial: cannot reach")
    assert b"Traceback" not in unreachable.stderr
