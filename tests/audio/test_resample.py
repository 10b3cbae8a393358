"""Resampling and the wire formats: accuracy, lengths, streaming against one-shot."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from framework.audio import (
    AudioFormat,
    Decoder,
    Encoder,
    Resampler,
    bytes_per_ms,
    decode,
    encode,
    pcm16_to_ulaw,
    resample,
    sample_rate,
)
from framework.protocol import AudioPCM, AudioPCMA, AudioPCMU, UnknownVariant

PCM = AudioPCM(type="audio/pcm", rate=24000)
FORMATS: list[AudioFormat] = [PCM, AudioPCMU(), AudioPCMA(), None]
RATES = [(8000, 24000), (24000, 8000), (16000, 24000), (44100, 24000), (48000, 24000),
         (24000, 48000), (22050, 8000), (24000, 24000)]  # fmt: skip


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 10000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)


def peak_hz(samples: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


@pytest.mark.parametrize(("src", "dst"), RATES)
def test_a_sine_keeps_its_frequency_and_amplitude(src: int, dst: int) -> None:
    out = resample(sine(1000, src), src, dst)
    assert out.dtype == np.int16
    assert abs(peak_hz(out, dst) - 1000) <= 1.0
    ideal = sine(1000, dst)[: len(out)].astype(np.float64)
    edge = dst // 100  # the filter's first and last milliseconds see silence beyond the ends
    error = np.abs(out[edge:-edge] - ideal[edge:-edge])
    assert error.max() <= 3  # a few steps of 16 bits
    assert rms(out[edge:-edge]) == pytest.approx(10000 / np.sqrt(2), rel=0.002)


@pytest.mark.parametrize(("src", "dst"), RATES)
@pytest.mark.parametrize("n", [0, 1, 7, 160, 4801])
def test_output_length_is_the_input_duration_at_the_new_rate(src: int, dst: int, n: int) -> None:
    out = resample(np.ones(n, dtype=np.int16), src, dst)
    assert len(out) == -(-n * dst // src)


def test_content_above_the_new_nyquist_frequency_is_removed() -> None:
    out = resample(sine(6000, 24000), 24000, 8000)  # 6 kHz cannot exist at 8 kHz
    # More than 60 dB down, away from the ends where the tone starts and stops abruptly.
    assert rms(out[80:-80]) < 10000 / np.sqrt(2) * 1e-3
    kept = resample(sine(3000, 24000), 24000, 8000)  # in the pass band
    assert rms(kept[80:-80]) == pytest.approx(10000 / np.sqrt(2), rel=0.01)


def test_a_constant_stays_constant() -> None:
    out = resample(np.full(4410, 1000, dtype=np.int16), 44100, 24000)
    assert np.all(out[100:-100] == 1000)


def test_full_scale_clips_instead_of_wrapping() -> None:
    square = np.tile(np.r_[np.full(20, 32767), np.full(20, -32768)], 50).astype(np.int16)
    out = resample(square, 8000, 24000)  # the overshoot of a band-limited square
    assert out.max() == 32767
    assert out.min() == -32768


@pytest.mark.parametrize(("src", "dst"), RATES)
def test_streaming_in_chunks_equals_one_shot(src: int, dst: int) -> None:
    signal = sine(440, src, 0.5) + sine(2500, src, 0.5, 3000)
    whole = resample(signal, src, dst)
    rng = np.random.default_rng(src + dst)
    stream = Resampler(src, dst)
    parts, i = [], 0
    while i < len(signal):
        size = int(rng.integers(1, 900))
        parts.append(stream.process(signal[i : i + size]))
        i += size
    parts.append(stream.flush())
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1)


def test_the_stream_holds_back_only_a_few_milliseconds() -> None:
    stream = Resampler(8000, 24000)
    out = stream.process(sine(1000, 8000, 0.02))  # one 20 ms chunk
    assert 480 - len(out) <= 24000 * 4 // 1000  # under 4 ms held for look-ahead
    assert stream.pending
    assert len(out) + len(stream.flush()) == 480
    assert not stream.pending


def test_flush_starts_a_new_stream() -> None:
    stream = Resampler(16000, 24000)
    signal = sine(700, 16000, 0.1)
    first = np.concatenate([stream.process(signal), stream.flush()])
    second = np.concatenate([stream.process(signal), stream.flush()])
    np.testing.assert_array_equal(first, second)


def test_rates_must_be_positive_and_audio_mono() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 24000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((10, 2), dtype=np.int16), 8000, 24000)


# --- wire formats ----------------------------------------------------------------------


def test_rates_and_sizes_of_the_wire_formats() -> None:
    assert [sample_rate(f) for f in FORMATS] == [24000, 8000, 8000, 24000]
    assert [bytes_per_ms(f) for f in FORMATS] == [48, 8, 8, 48]
    assert sample_rate(AudioPCM()) == 24000  # the rate left unset


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_then_decode_returns_the_signal(fmt: AudioFormat) -> None:
    signal = sine(440, 24000, 0.2)
    data = encode(signal, fmt)
    assert len(data) == 200 * bytes_per_ms(fmt)
    back = decode(data, fmt)
    assert len(back) == len(signal)
    # G.711 keeps about 38 dB of signal to noise; PCM is exact.
    noise = rms(back[200:-200] - signal[200:-200].astype(np.float64))
    assert noise <= (0 if fmt in (PCM, None) else rms(signal) / 50)


def test_encode_resamples_from_the_given_rate() -> None:
    data = encode(sine(1000, 48000), AudioPCMU(), rate=48000)
    assert len(data) == 8000
    assert abs(peak_hz(decode(data, AudioPCMU(), rate=8000), 8000) - 1000) <= 1.0


def test_g711_encoding_uses_the_codec() -> None:
    signal = sine(440, 8000, 0.1)
    assert encode(signal, AudioPCMU(), rate=8000) == pcm16_to_ulaw(signal.astype("<i2").tobytes())


@pytest.mark.parametrize("fmt", FORMATS)
def test_streaming_encoder_and_decoder_equal_one_shot(fmt: AudioFormat) -> None:
    signal = sine(440, 24000, 0.3)
    encoder = Encoder(fmt)
    data = b"".join(encoder.encode(signal[i : i + 480]) for i in range(0, len(signal), 480))
    data += encoder.flush()
    assert data == encode(signal, fmt)
    decoder = Decoder(fmt)
    # Odd sizes: a chunk may end in the middle of a PCM16 sample.
    parts = [decoder.decode(data[i : i + 333]) for i in range(0, len(data), 333)]
    parts.append(decoder.flush())
    np.testing.assert_allclose(np.concatenate(parts), decode(data, fmt), atol=1)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported audio format"):
        sample_rate(UnknownVariant({"type": "audio/opus"}))
