"""Microphone and speaker: clear errors without sounddevice or PortAudio, and their
logic against a fake sounddevice whose stream callbacks the tests drive."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

from framework.audio import (
    AudioDeviceUnavailable,
    AudioFormat,
    Speaker,
    decode,
    encode,
    open_microphone,
)
from framework.protocol import AudioPCM, AudioPCMU

PCM = AudioPCM(type="audio/pcm", rate=24000)


def sine(ms: int, rate: int = 24000, freq: float = 440) -> np.ndarray:
    t = np.arange(ms * rate // 1000) / rate
    samples: np.ndarray = np.rint(np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
    return samples


# --- without sounddevice or PortAudio ----------------------------------------------------


def test_without_sounddevice_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if not installed
    for open_device in (Speaker, open_microphone):
        with pytest.raises(AudioDeviceUnavailable, match="sounddevice") as caught:
            open_device()
        assert "pip install 'cantata[audio-devices]'" in str(caught.value)


class _NoPortAudio(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``sounddevice`` the way it fails when libportaudio is not installed."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: object = None) -> Any:
        if name == "sounddevice":
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        raise OSError("PortAudio library not found")  # sounddevice's own words


def test_without_portaudio_the_error_names_the_os_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(AudioDeviceUnavailable, match="PortAudio library not found") as caught:
        Speaker()
    assert "libportaudio2" in str(caught.value)
    assert "pip install 'cantata[audio-devices]'" in str(caught.value)


def test_this_machine_says_why_it_has_no_devices() -> None:
    try:
        speaker = Speaker()
    except AudioDeviceUnavailable as e:
        assert "install" in str(e) or "device" in str(e)
    else:
        speaker.close()
        pytest.skip("this machine has a working speaker")


# --- a fake sounddevice --------------------------------------------------------------------


class FakePortAudioError(Exception):
    pass


class FakeStream:
    def __init__(self, **options: Any) -> None:
        self.options = options
        self.callback = options["callback"]
        self.started = self.closed = False
        self.latency = 0.025

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True

    def pull(self, frames: int) -> np.ndarray:
        """What the output device would be given for ``frames`` frames."""
        out = bytearray(frames * 2)
        self.callback(memoryview(out), frames, None, 0)
        return np.frombuffer(bytes(out), "<i2")

    def push(self, samples: np.ndarray) -> None:
        """What the input device would record."""
        self.callback(samples.astype("<i2").tobytes(), len(samples), None, 0)


def fake_sounddevice(rates: set[int], default_rate: int = 48000, devices: bool = True) -> Any:
    sd: Any = types.ModuleType("sounddevice")
    sd.PortAudioError = FakePortAudioError
    sd.streams = []

    def check(
        device: Any = None, channels: Any = None, dtype: Any = None, samplerate: Any = None
    ) -> None:
        if not devices or samplerate not in rates:
            raise FakePortAudioError("Invalid sample rate")

    def query_devices(device: Any = None, kind: Any = None) -> dict[str, Any]:
        if not devices:
            raise FakePortAudioError(f"No {kind} device found")
        return {"default_samplerate": float(default_rate)}

    def stream(**options: Any) -> FakeStream:
        sd.streams.append(FakeStream(**options))
        return sd.streams[-1]  # type: ignore[no-any-return]

    sd.check_input_settings = sd.check_output_settings = check
    sd.query_devices = query_devices
    sd.RawInputStream = sd.RawOutputStream = stream
    return sd


@pytest.fixture
def sd(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = fake_sounddevice({24000})
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    return fake


def test_no_device_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(set(), devices=False))
    with pytest.raises(AudioDeviceUnavailable, match="No audio output device"):
        Speaker()
    with pytest.raises(AudioDeviceUnavailable, match="No audio input device"):
        open_microphone()


# --- speaker -----------------------------------------------------------------------------


def test_speaker_plays_what_is_queued_and_counts_it(sd: Any) -> None:
    speaker = Speaker(PCM)
    (stream,) = sd.streams
    assert stream.started and speaker.samplerate == 24000  # the device takes the wire rate
    assert stream.options | {"callback": None} == {
        "samplerate": 24000, "channels": 1, "dtype": "int16", "device": None, "callback": None
    }  # fmt: skip
    audio = sine(100)
    speaker.write("a", audio.astype("<i2").tobytes())
    assert speaker.playing and speaker.played_ms("a") == 0
    np.testing.assert_array_equal(stream.pull(480), audio[:480])
    assert speaker.played_ms("a") == 20
    np.testing.assert_array_equal(stream.pull(2400), np.r_[audio[480:], np.zeros(480)])
    assert (speaker.played_ms("a"), speaker.playing) == (100, False)
    assert not stream.pull(480).any()  # nothing queued: silence
    speaker.close()
    assert stream.closed


def test_speaker_clear_stops_at_the_played_position(sd: Any) -> None:
    speaker = Speaker(PCM)
    (stream,) = sd.streams
    speaker.write("a", sine(100).astype("<i2").tobytes())
    stream.pull(720)
    speaker.clear()
    assert (speaker.played_ms("a"), speaker.playing) == (30, False)
    assert not stream.pull(480).any()
    speaker.write("b", sine(40, freq=600).astype("<i2").tobytes())
    np.testing.assert_array_equal(stream.pull(960), sine(40, freq=600))
    assert (speaker.played_ms("a"), speaker.played_ms("b")) == (30, 40)


def test_speaker_resamples_to_the_device_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = fake_sounddevice(set(), default_rate=48000)  # the device takes no 8 kHz
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    fmt = AudioPCMU()
    speaker = Speaker(fmt)
    (stream,) = sd.streams
    assert speaker.samplerate == stream.options["samplerate"] == 48000
    assert speaker.bytes_per_ms == 8
    wire = encode(sine(100), fmt)
    for i in range(0, len(wire), 160):  # 20 ms deltas
        speaker.write("a", wire[i : i + 160])
    played = np.concatenate([stream.pull(960) for _ in range(6)])
    # When the queue runs dry the resampler's held-back tail plays too.
    np.testing.assert_array_equal(played[:4800], decode(wire, fmt, rate=48000))
    assert not played[4800:].any()
    assert speaker.played_ms("a") == 100


def test_speaker_items_in_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = fake_sounddevice(set(), default_rate=44100)
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    fmt = AudioPCMU()
    speaker = Speaker(fmt)
    (stream,) = sd.streams
    speaker.write("a", encode(sine(50), fmt))
    speaker.write("b", encode(sine(50, freq=700), fmt))  # a's tail is flushed as a's
    stream.pull(44100 // 5)
    assert (speaker.played_ms("a"), speaker.played_ms("b")) == (50, 50)


async def test_speaker_aclose_waits_for_the_queue_to_play_out(sd: Any) -> None:
    speaker = Speaker(PCM)
    (stream,) = sd.streams
    speaker.write("a", sine(60).astype("<i2").tobytes())
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(speaker.aclose)
            await trio.testing.wait_all_tasks_blocked()
            assert not stream.closed
            for _ in range(3):  # PortAudio's thread takes 20 ms at a time
                await trio.to_thread.run_sync(stream.pull, 480)
    assert stream.closed and speaker.played_ms("a") == 60


# --- microphone --------------------------------------------------------------------------


async def test_microphone_yields_chunks_of_the_wire_format(sd: Any) -> None:
    mic = open_microphone(PCM, 20)
    (stream,) = sd.streams
    assert (stream.options["samplerate"], stream.options["blocksize"]) == (24000, 480)
    assert not stream.started  # only when read
    audio = sine(60)
    with trio.fail_after(5):
        async with mic:
            assert stream.started
            for i in range(0, 1440, 480):
                await trio.to_thread.run_sync(stream.push, audio[i : i + 480])
            chunks = [await mic.__anext__() for _ in range(3)]
    assert chunks == [audio[i : i + 480].astype("<i2").tobytes() for i in range(0, 1440, 480)]
    assert stream.closed


@pytest.mark.parametrize("fmt", [PCM, AudioPCMU()])
async def test_microphone_resamples_from_the_device_rate(
    monkeypatch: pytest.MonkeyPatch, fmt: AudioFormat
) -> None:
    sd = fake_sounddevice(set(), default_rate=44100)
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    audio = sine(200, 44100)
    with trio.fail_after(5):
        async with open_microphone(fmt, 20) as mic:
            (stream,) = sd.streams
            assert stream.options["samplerate"] == 44100
            for i in range(0, len(audio), 882):
                stream.push(audio[i : i + 882])
            await trio.testing.wait_all_tasks_blocked()
            chunks = [await mic.__anext__() for _ in range(9)]
    size = 20 * (8 if fmt == AudioPCMU() else 48)
    assert {len(c) for c in chunks} == {size}  # exact chunks, however the device blocks fall
    assert b"".join(chunks) == encode(audio, fmt, rate=44100)[: 9 * size]


async def test_microphone_drops_the_oldest_audio_when_the_reader_falls_behind(sd: Any) -> None:
    with trio.fail_after(5):
        async with open_microphone(PCM, 20, buffer_ms=40) as mic:  # room for two blocks
            (stream,) = sd.streams
            blocks = [np.full(480, n, dtype=np.int16) for n in range(5)]
            for block in blocks:
                stream.push(block)
            await trio.testing.wait_all_tasks_blocked()
            assert mic.dropped == 3
            got = [await mic.__anext__() for _ in range(2)]
            assert got == [blocks[3].tobytes(), blocks[4].tobytes()]
    with pytest.raises(StopAsyncIteration):
        await mic.__anext__()  # closed: the iteration is over
