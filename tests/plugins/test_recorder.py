"""The recorder: a call on one timeline, checked against what was sent and what played.

A real session over loopback, in real time: a paced microphone (a tone, a
pause, a tone that barges into the reply), the local engine's spoken replies
into a playback clock, the recorder writing its files. The test notes itself
when each chunk went in and when each reply began to play, builds the two
tracks it expects from that, and finds each channel of the WAV file within
20 ms of them by cross-correlation; the interrupted reply stops where the user
stopped hearing it.
"""

from __future__ import annotations

import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import trio

from framework import ClockSink, open_session
from framework.plugin import load_plugin
from framework.runtime import Interrupted, SessionEvent, TurnMeasured
from framework.testing import run_engine
from plugins.recorder import Recorder

from ..runtime.bots import RULES, weather_turns
from ..runtime.test_timing import Talker, quiet, tone

RATE = 24000
CHUNK = 960  # 20 ms of PCM16 at 24 kHz


class Witness(ClockSink):
    """A playback clock that notes when each item began to play."""

    def __init__(self) -> None:
        super().__init__()
        self.began: dict[str, float] = {}

    def write(self, item_id: str, audio: bytes) -> None:
        if item_id not in self.began:
            assert not self.playing, "each reply starts on a quiet speaker here"
            self.began[item_id] = trio.current_time()
        super().write(item_id, audio)


def envelope(samples: npt.NDArray[np.int16], rate: int = RATE) -> npt.NDArray[np.float64]:
    """Mean magnitude per millisecond."""
    per_ms = rate // 1000
    whole = len(samples) // per_ms * per_ms
    return np.abs(samples[:whole].astype(np.float64)).reshape(-1, per_ms).mean(axis=1)


def best_lag(
    recorded: npt.NDArray[np.float64], expected: npt.NDArray[np.float64]
) -> tuple[int, float]:
    """The shift (ms) that best lines ``expected`` up with ``recorded``, and how well (0..1)."""
    size = max(len(recorded), len(expected)) + 400
    a = np.zeros(size)
    a[: len(recorded)] = recorded
    b = np.zeros(size)
    b[: len(expected)] = expected
    scores = {}
    for lag in range(-200, 201):
        shifted = np.roll(b, lag)
        scores[lag] = float(np.dot(a, shifted) / (np.linalg.norm(a) * np.linalg.norm(shifted)))
    lag = max(scores, key=lambda k: scores[k])
    return lag, scores[lag]


async def test_the_two_channels_line_up_with_what_was_sent_and_played(tmp_path: Path) -> None:
    sent: list[tuple[float, bytes]] = []
    sink = Witness()
    recorder = Recorder(tmp_path / "calls")
    events: list[SessionEvent] = []

    async def microphone() -> AsyncIterator[bytes]:
        for piece in (quiet(300), tone(600), quiet(1400), tone(500), quiet(600)):
            for i in range(0, len(piece), CHUNK):
                sent.append((trio.current_time(), piece[i : i + CHUNK]))
                yield piece[i : i + CHUNK]
                await trio.sleep(0.02)

    with trio.fail_after(60):
        async with (
            run_engine(rules=RULES) as url,
            open_session(
                Talker(), url=url, audio_in=microphone(), audio_out=sink, plugins=[recorder]
            ) as session,
        ):
            async for event in session:
                events.append(event)
                if len([e for e in events if isinstance(e, TurnMeasured)]) == 2:
                    break  # both replies heard (the second to its end)
    (recording,) = recorder.recordings
    assert recording.wav_path is not None and recording.report_path is not None
    origin = recording.origin
    with wave.open(str(recording.wav_path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    left, right = frames[0::2], frames[1::2]

    # What the test saw go in, and what it saw play, on the recording's clock.
    expected_left = np.zeros(len(left) + RATE, dtype=np.int16)
    for at, chunk in sent:
        start = round((at - origin) * RATE)
        samples = np.frombuffer(chunk, dtype="<i2")
        expected_left[start : start + len(samples)] = samples
    (interrupted,) = [e for e in events if isinstance(e, Interrupted)]
    expected_right = np.zeros(len(right) + RATE, dtype=np.int16)
    for item_id, began in sink.began.items():
        audio = np.frombuffer(bytes(sink.audio[item_id]), dtype="<i2")
        if item_id == interrupted.item_id:
            audio = audio[: interrupted.played_ms * RATE // 1000]  # heard up to the barge-in
        start = round((began - origin) * RATE)
        expected_right[start : start + len(audio)] = audio

    lag_left, match_left = best_lag(envelope(left), envelope(expected_left))
    lag_right, match_right = best_lag(envelope(right), envelope(expected_right))
    assert abs(lag_left) <= 20 and match_left > 0.9, (lag_left, match_left)
    assert abs(lag_right) <= 20 and match_right > 0.9, (lag_right, match_right)

    # The first reply stops where the user stopped hearing it, and nothing of it follows.
    first_began = sink.began[interrupted.item_id]
    cut = round((first_began - origin) * 1000) + interrupted.played_ms
    second_began = round((max(sink.began.values()) - origin) * 1000)
    heard = envelope(right)
    assert heard[cut - 60 : cut - 20].mean() > 1000  # still speaking just before
    assert heard[cut + 20 : second_began - 20].max() < 50  # silent after, to the next reply

    report = json.loads(recording.report_path.read_text())
    assert report["audio"]["file"] == recording.wav_path.name
    assert report["audio"]["channels"] == ["user", "assistant"]
    assert [m["role"] for m in report["transcript"]] == ["assistant", "assistant"]
    assert len(report["turns"]) == 2 and report["turns"][0]["interruptions"] == 1
    assert report["usage"]["output_audio_tokens"] > 0
    assert [e["event"] for e in report["events"]] == ["Interrupted"]


def test_cantata_run_record_loads_the_installed_recorder(tmp_path: Path) -> None:
    plugin = load_plugin("recorder", directory=tmp_path)
    assert isinstance(plugin, Recorder) and plugin.directory == tmp_path


def test_cantata_run_record_writes_the_call(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework.apps.cli",
            "run",
            str(root / "examples" / "weather_bot.py"),
            "--say",
            "What is the weather in Paris?",
            "--record",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    (wav,) = tmp_path.glob("*.wav")
    (report,) = tmp_path.glob("*.json")
    assert wav.stem == report.stem
    data = json.loads(report.read_text())
    assert [c["name"] for c in data["tool_calls"]] == ["get_weather"]
    assert data["transcript"][-1]["text"] == "In Paris it is sunny and 21 degrees."
    with wave.open(str(wav), "rb") as audio:
        assert audio.getnchannels() == 2 and audio.getnframes() > 0


async def test_the_report_keeps_its_bounds_and_counts_every_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its bound the report keeps no more turns, yet usage and cost count them all."""
    monkeypatch.setattr("plugins.recorder._plugin.MAX_ENTRIES", 1)
    monkeypatch.setattr("plugins.recorder._plugin.KEPT_RECORDINGS", 1)
    recorder = Recorder(tmp_path)
    with trio.fail_after(30):
        for _ in range(2):
            session = await weather_turns([recorder])
    (last,) = recorder.recordings  # the first is on disk only
    report = json.loads(last.report_path.read_text())  # type: ignore[union-attr]
    assert len(report["turns"]) == 1 and report["entries_left_out"] >= 1
    assert report["usage"]["responses"] == 3  # both turns: the greeting, the call, the answer
    assert report["cost_usd"] == pytest.approx(session.metrics.cost_usd)
    assert len(list(await trio.Path(tmp_path).glob("*.json"))) == 2
