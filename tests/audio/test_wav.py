"""WAV files: reading every encoding, sources paced on MockClock, sinks that save what was heard."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import trio
from trio.testing import MockClock

from framework import open_session
from framework.audio import (
    AudioFormat,
    WavSink,
    WavSource,
    bytes_per_ms,
    decode,
    encode,
    paced,
    pcm16_to_alaw,
    pcm16_to_ulaw,
    read_wav,
    sample_rate,
    write_wav,
)
from framework.protocol import AudioPCM, AudioPCMA, AudioPCMU, ServerVad
from framework.runtime import Interrupted, ResponseFinished, UserSpeechStarted
from framework.testing import engine_wire
from tests.runtime.bots import RULES, WeatherBot

PCM = AudioPCM(type="audio/pcm", rate=24000)
FORMATS: list[AudioFormat] = [PCM, AudioPCMU(), AudioPCMA()]


def sine(ms: int, rate: int = 24000, freq: float = 300, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(ms * rate // 1000) / rate
    return np.rint(np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def riff(tag: int, channels: int, rate: int, bits: int, data: bytes, *, extensible: bool = False,
         extra: bytes = b"") -> bytes:  # fmt: skip
    """A WAV file by hand, for the encodings the stdlib cannot write."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align,
                      align, bits)  # fmt: skip
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + guid_tail
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- reading -----------------------------------------------------------------------------


def test_write_then_read_is_exact(tmp_path: Path) -> None:
    samples = sine(100, 16000)
    write_wav(tmp_path / "a.wav", samples, 16000)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000
    np.testing.assert_array_equal(back, samples)
    with wave.open(str(tmp_path / "a.wav")) as f:  # a plain PCM16 file anyone can read
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 16000)


def _encodings() -> dict[str, tuple[int, int, bytes, int]]:
    """Each encoding of the same signal: tag, bits, data and the tolerance in 16-bit steps."""
    s = sine(50, 8000).astype(np.int64)
    pcm16 = s.astype("<i2").tobytes()
    i24 = np.stack([(s << 8) & 0xFF, (s) & 0xFF, (s >> 8) & 0xFF], axis=1).astype(np.uint8)
    return {
        "pcm8": (1, 8, ((s >> 8) + 128).astype(np.uint8).tobytes(), 256),
        "pcm16": (1, 16, pcm16, 0),
        "pcm24": (1, 24, i24.tobytes(), 0),
        "pcm32": (1, 32, (s << 16).astype("<i4").tobytes(), 0),
        "float32": (3, 32, (s / 32768).astype("<f4").tobytes(), 0),
        "float64": (3, 64, (s / 32768).astype("<f8").tobytes(), 0),
        "ulaw": (7, 8, pcm16_to_ulaw(pcm16), 1100),
        "alaw": (6, 8, pcm16_to_alaw(pcm16), 1100),
    }


@pytest.mark.parametrize("extensible", [False, True])
@pytest.mark.parametrize("name", list(_encodings()))
def test_reads_every_encoding(tmp_path: Path, name: str, extensible: bool) -> None:
    tag, bits, data, tolerance = _encodings()[name]
    path = tmp_path / f"{name}.wav"
    path.write_bytes(riff(tag, 1, 8000, bits, data, extensible=extensible))
    samples, rate = read_wav(path)
    assert rate == 8000
    assert samples.dtype == np.int16
    expected = sine(50, 8000)
    assert len(samples) == len(expected)
    assert np.abs(samples.astype(np.int64) - expected).max() <= tolerance


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    left, right = sine(50, 8000), sine(50, 8000, freq=700)
    frames = np.stack([left, right], axis=1).astype("<i2").tobytes()
    (tmp_path / "s.wav").write_bytes(riff(1, 2, 8000, 16, frames))
    samples, _ = read_wav(tmp_path / "s.wav")
    mean = (left.astype(np.int64) + right) / 2
    assert np.abs(samples - mean).max() <= 0.5


def test_other_chunks_are_skipped_with_their_padding(tmp_path: Path) -> None:
    odd = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd size, padded to even
    data = sine(20, 8000).astype("<i2").tobytes()
    (tmp_path / "l.wav").write_bytes(riff(1, 1, 8000, 16, data, extra=odd))
    samples, _ = read_wav(tmp_path / "l.wav")
    np.testing.assert_array_equal(samples, sine(20, 8000))


def test_a_streamed_file_without_a_data_length_is_read_to_its_end(tmp_path: Path) -> None:
    data = sine(20, 8000).astype("<i2").tobytes()
    raw = bytearray(riff(1, 1, 8000, 16, data))
    raw[40:44] = struct.pack("<I", 0xFFFFFFFF)
    (tmp_path / "st.wav").write_bytes(bytes(raw))
    samples, _ = read_wav(tmp_path / "st.wav")
    np.testing.assert_array_equal(samples, sine(20, 8000))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ID3 not a wav at all", "not a WAV file"),
        (riff(2, 1, 8000, 4, b"\x00" * 10), "unsupported WAV encoding"),  # ADPCM
        (riff(1, 1, 8000, 16, b"")[:36], "no data chunk"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_wav(tmp_path / "bad.wav")


# --- sources -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_source_round_trip_in_each_format(tmp_path: Path, fmt: AudioFormat) -> None:
    samples = sine(110, 44100)
    write_wav(tmp_path / "in.wav", samples, 44100)
    source = WavSource(tmp_path / "in.wav", fmt=fmt, realtime=False)
    chunks = [chunk async for chunk in source]
    per_ms = bytes_per_ms(fmt)
    assert [len(c) for c in chunks] == [20 * per_ms] * 5 + [10 * per_ms]
    assert b"".join(chunks) == source.audio == encode(samples, fmt, rate=44100)
    heard = decode(source.audio, fmt, rate=44100)
    noise = np.abs(heard[100:-100].astype(np.int64) - samples[100:-100])
    assert noise.mean() < (3 if fmt is PCM else 150)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_tail_silence_is_appended(tmp_path: Path, fmt: AudioFormat) -> None:
    write_wav(tmp_path / "in.wav", sine(100, 24000), 24000)
    source = WavSource(tmp_path / "in.wav", fmt=fmt, tail_silence_ms=300, realtime=False)
    assert source.duration_ms == 400
    tail = decode(source.audio[-300 * bytes_per_ms(fmt) :], fmt, rate=sample_rate(fmt))
    assert np.abs(tail).max() <= 8  # A-law has no zero: its silence is +-8


async def test_realtime_chunks_arrive_on_the_clock(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    write_wav(tmp_path / "in.wav", sine(200, 24000), 24000)
    source = WavSource(tmp_path / "in.wav", chunk_ms=20)
    start = trio.current_time()
    times = [trio.current_time() - start async for _ in source]
    # Each chunk when its last sample would have been spoken: 20, 40, ... 200 ms.
    assert times == pytest.approx([0.02 * (n + 1) for n in range(10)], abs=1e-9)


async def test_fast_chunks_take_no_time(tmp_path: Path, autojump_clock: MockClock) -> None:
    write_wav(tmp_path / "in.wav", sine(1000, 24000), 24000)
    start = trio.current_time()
    chunks = [c async for c in WavSource(tmp_path / "in.wav", realtime=False)]
    assert len(chunks) == 50
    assert trio.current_time() == start


async def test_pacing_does_not_drift_behind_a_slow_reader(autojump_clock: MockClock) -> None:
    start = trio.current_time()
    times = []
    async for _ in paced([bytes(960)] * 10, 48):
        times.append(round((trio.current_time() - start) * 1000, 6))
        if len(times) == 2:
            await trio.sleep(0.065)  # the reader stalls for 65 ms
    # Chunks 3-5 were due during the stall: they come at once, then the schedule holds.
    assert times == [20, 40, 105, 105, 105, 120, 140, 160, 180, 200]


async def test_a_source_plays_again_from_the_start(tmp_path: Path) -> None:
    write_wav(tmp_path / "in.wav", sine(60, 24000), 24000)
    source = WavSource(tmp_path / "in.wav", realtime=False)
    first = [c async for c in source]
    assert [c async for c in source] == first


def test_a_missing_file_fails_where_the_source_is_made(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        WavSource(tmp_path / "nope.wav")


# --- sinks -------------------------------------------------------------------------------


def _pcm(ms: int, freq: float) -> bytes:
    return sine(ms, freq=freq).astype("<i2").tobytes()


async def test_sink_plays_on_the_clock(tmp_path: Path, autojump_clock: MockClock) -> None:
    sink = WavSink(tmp_path / "out.wav")
    assert sink.bytes_per_ms == 48
    sink.write("a", _pcm(100, 300))
    sink.write("a", _pcm(100, 300))
    await trio.sleep(0.03)
    assert (sink.played_ms("a"), sink.playing) == (30, True)
    await trio.sleep(0.17)
    assert (sink.played_ms("a"), sink.playing) == (200, False)
    await trio.sleep(1)  # quiet: the next item plays when it arrives
    sink.write("b", _pcm(100, 500))
    await trio.sleep(0.04)
    assert (sink.played_ms("a"), sink.played_ms("b")) == (200, 40)
    await sink.aclose()
    samples, rate = read_wav(tmp_path / "out.wav")
    assert rate == 24000
    expected = np.concatenate([sine(100), sine(100), sine(100, freq=500)])
    np.testing.assert_array_equal(samples, expected)  # without the silence between items


async def test_clear_cuts_the_file_where_playback_stopped(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    sink = WavSink(tmp_path / "out.wav")
    sink.write("a", _pcm(100, 300))
    sink.write("a", _pcm(100, 300))  # a second chunk, never played
    await trio.sleep(0.0625)
    sink.clear()
    assert (sink.played_ms("a"), sink.playing) == (62, False)
    await trio.sleep(0.5)
    assert sink.played_ms("a") == 62  # the position stays where it was cut
    sink.write("b", _pcm(50, 500))  # the next reply plays at once
    await trio.sleep(0.01)
    assert sink.played_ms("b") == 10
    await sink.aclose()  # waits the other 40 ms
    samples, _ = read_wav(tmp_path / "out.wav")
    np.testing.assert_array_equal(samples, np.concatenate([sine(100)[:1500], sine(50, freq=500)]))


@pytest.mark.parametrize("fmt", [AudioPCMU(), AudioPCMA()])
async def test_g711_sinks_write_pcm_at_8_khz(
    tmp_path: Path, autojump_clock: MockClock, fmt: AudioFormat
) -> None:
    wire = encode(sine(100), fmt)
    async with WavSink(tmp_path / "out.wav", fmt=fmt) as sink:
        assert sink.bytes_per_ms == 8
        sink.write("a", wire)
        await trio.sleep(0.05)
        assert sink.played_ms("a") == 50
    samples, rate = read_wav(tmp_path / "out.wav")
    assert rate == 8000
    np.testing.assert_array_equal(samples, decode(wire, fmt, rate=8000))


async def test_a_sink_follows_the_format_the_session_sets(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    # Made with no format, told mu-law before the audio comes (as a session does).
    fmt = AudioPCMU()
    wire = encode(sine(100), fmt)
    async with WavSink(tmp_path / "out.wav") as sink:
        sink.set_format(fmt)
        sink.write("a", wire)
        await trio.sleep(0.05)
        assert (sink.played_ms("a"), sink.bytes_per_ms) == (50, 8)
    samples, rate = read_wav(tmp_path / "out.wav")
    assert rate == 24000  # the file keeps the rate it was made with
    assert len(samples) == 2400


def test_a_path_that_cannot_be_written_fails_where_the_sink_is_made(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        WavSink(tmp_path / "no such dir" / "out.wav")
    with pytest.raises(IsADirectoryError):
        WavSink(tmp_path)


async def test_close_stops_at_once_and_aclose_cancelled_keeps_what_was_heard(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    now = WavSink(tmp_path / "now.wav")
    now.write("a", _pcm(100, 300))
    await trio.sleep(0.025)
    now.close()
    assert len(read_wav(tmp_path / "now.wav")[0]) == 25 * 24
    with pytest.raises(trio.ClosedResourceError):
        now.write("a", b"\x00\x00")

    later = WavSink(tmp_path / "later.wav")
    later.write("a", _pcm(100, 300))
    with trio.move_on_after(0.04):
        await later.aclose()
    assert len(read_wav(tmp_path / "later.wav")[0]) == 40 * 24


# --- in a session ------------------------------------------------------------------------


class Talker(WeatherBot):
    """Audio replies and server VAD with quick turns."""

    output_modalities = ("audio",)
    turn_detection = ServerVad(
        type="server_vad", threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200
    )


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_wav_file_speaks_a_turn_and_the_reply_is_saved(
    tmp_path: Path, autojump_clock: MockClock, fmt: AudioFormat
) -> None:
    write_wav(tmp_path / "in.wav", np.concatenate([np.zeros(4800, np.int16), sine(600)]), 24000)
    source = WavSource(tmp_path / "in.wav", fmt=fmt, tail_silence_ms=400)
    bot = Talker()
    bot.input_audio_format = bot.output_audio_format = fmt
    sink = WavSink(tmp_path / "out.wav", fmt=fmt)
    async with (
        engine_wire(rules=RULES) as wire,
        open_session(bot, connection=wire, audio_in=source, audio_out=sink) as session,
    ):
        async for event in session:
            if isinstance(event, UserSpeechStarted):
                assert event.audio_start_ms == 200
            if isinstance(event, ResponseFinished):
                break
        await session.wait_quiet()
        await trio.sleep(1)  # the file's last chunks, after the reply
        assert session.statistics()["audio_bytes_sent"] == len(source.audio)
    await sink.aclose()
    samples, rate = read_wav(tmp_path / "out.wav")
    assert rate == (24000 if fmt is PCM else 8000)
    assert len(samples) > rate  # more than a second of reply


class Listener(Talker):
    """Barge-in, but no reply to the user's speech: the file then holds one reply."""

    turn_detection = ServerVad(
        type="server_vad",
        threshold=0.5,
        prefix_padding_ms=0,
        silence_duration_ms=200,
        create_response=False,
    )


async def test_barge_in_truncates_the_saved_reply(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    sink = WavSink(tmp_path / "out.wav")
    async with (
        engine_wire(rules=RULES) as wire,
        open_session(Listener(), connection=wire, audio_out=sink) as session,
    ):
        await session.send_text("tell me a story")
        async for event in session:
            if isinstance(event, ResponseFinished):
                break
        assert sink.playing
        await trio.sleep(1.25)  # the user hears 1250 ms, then talks over it
        speech = _pcm(1000, 300)
        for i in range(0, len(speech), 960):
            await session.send_audio(speech[i : i + 960])
        async for event in session:
            if isinstance(event, Interrupted):
                interrupted = event
                break
        await session.send_audio(bytes(300 * 48))
        await session.wait_quiet()
    assert interrupted.played_ms == 1250
    await sink.aclose()
    samples, _ = read_wav(tmp_path / "out.wav")
    assert len(samples) == 1250 * 24  # what was heard, not what was received
