"""The microphone and the speaker, through sounddevice (PortAudio).

sounddevice is an optional extra (``pip install 'cantata[audio-devices]'``)
and needs the PortAudio library; it is imported only when a device is
opened, and when either is missing :class:`AudioDeviceUnavailable` says how
to install it, so that a CLI can fall back to text.

PortAudio calls back on a thread of its own. The :class:`Microphone`'s
callback hands each block to trio with ``run_sync_soon`` into a bounded
channel (when the consumer falls behind, the oldest block is dropped and
counted: live audio is worth more than old audio). The :class:`Speaker`'s
callback takes samples from a queue under a lock and counts the frames it
consumed per item: that count is ``played_ms``.

Each device is opened at the wire rate when it accepts that rate, else at
its own default rate, with a streaming resampler in between.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections import deque
from types import TracebackType
from typing import Any

import attrs
import numpy as np
import trio

from framework.errors import AudioDeviceUnavailable

from ._formats import AudioFormat, Decoder, Encoder, bytes_per_ms, sample_rate
from ._resample import Samples

__all__ = ["AudioDeviceUnavailable", "Microphone", "Speaker", "open_microphone"]

_INSTALL = "pip install 'cantata[audio-devices]'"


def _sounddevice() -> Any:
    try:
        return importlib.import_module("sounddevice")
    except ImportError as e:
        raise AudioDeviceUnavailable(
            f"Audio devices need the sounddevice package: {_INSTALL}."
        ) from e
    except OSError as e:  # sounddevice raises it when libportaudio cannot be loaded
        raise AudioDeviceUnavailable(
            f"Audio devices need the PortAudio library ({e}): install the OS package "
            f"(Debian/Ubuntu: apt install libportaudio2; macOS: brew install portaudio), "
            f"then {_INSTALL}."
        ) from e


def _device_rate(sd: Any, device: int | str | None, kind: str, wanted: int) -> int:
    """``wanted`` if the device takes it, else the device's default rate."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device, channels=1, dtype="int16", samplerate=wanted)
        return wanted
    except (sd.PortAudioError, ValueError):
        pass
    try:
        return int(sd.query_devices(device, kind)["default_samplerate"])
    except (sd.PortAudioError, ValueError) as e:
        raise AudioDeviceUnavailable(f"No audio {kind} device ({e}).") from e


class Microphone:
    """Chunks of live audio in the session's input format (from :func:`open_microphone`).

    An async iterator (pass it as ``audio_in``) and an async context manager
    that closes the device on exit. The stream starts at the first read.

    Attributes:
        samplerate: the rate the device records at.
        dropped: blocks dropped because the reader fell behind.
    """

    def __init__(
        self,
        sd: Any,
        fmt: AudioFormat,
        *,
        chunk_ms: int,
        device: int | str | None,
        samplerate: int | None,
        buffer_ms: int,
    ) -> None:
        self.fmt = fmt
        self.samplerate = samplerate or _device_rate(sd, device, "input", sample_rate(fmt))
        self.dropped = 0
        self._chunk_bytes = chunk_ms * bytes_per_ms(fmt)
        self._encoder = Encoder(fmt, rate=self.samplerate)
        self._pending = bytearray()
        self._send, self._receive = trio.open_memory_channel[bytes](max(1, buffer_ms // chunk_ms))
        self._token: trio.lowlevel.TrioToken | None = None
        self._closed = False
        try:
            self._stream = sd.RawInputStream(
                samplerate=self.samplerate,
                blocksize=self.samplerate * chunk_ms // 1000,
                channels=1,
                dtype="int16",
                device=device,
                callback=self._callback,
            )
        except (sd.PortAudioError, ValueError) as e:
            raise AudioDeviceUnavailable(f"Cannot open the microphone ({e}).") from e

    def _callback(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        # On PortAudio's thread: copy the block and hand it to trio.
        token = self._token
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(self._deliver, bytes(indata))

    def _deliver(self, block: bytes) -> None:
        try:
            self._send.send_nowait(block)
        except trio.WouldBlock:
            self._receive.receive_nowait()  # the oldest block goes
            self.dropped += 1
            self._send.send_nowait(block)
        except trio.ClosedResourceError:
            pass  # closed while the block was on its way

    def _start(self) -> None:
        if self._token is None and not self._closed:
            self._token = trio.lowlevel.current_trio_token()
            self._stream.start()

    def __aiter__(self) -> Microphone:
        return self

    async def __anext__(self) -> bytes:
        self._start()
        while len(self._pending) < self._chunk_bytes:
            try:
                block = await self._receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            self._pending += self._encoder.encode(np.frombuffer(block, "<i2"))
        chunk = bytes(self._pending[: self._chunk_bytes])
        del self._pending[: self._chunk_bytes]
        return chunk

    async def aclose(self) -> None:
        """Stops and closes the device; a pending read ends the iteration."""
        self._closed = True
        self._send.close()
        self._stream.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Microphone:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def open_microphone(
    fmt: AudioFormat = None,
    chunk_ms: int = 20,
    *,
    device: int | str | None = None,
    samplerate: int | None = None,
    buffer_ms: int = 1000,
) -> Microphone:
    """Opens the input device, as a source of chunks in the format ``fmt``.

    Args:
        fmt: the session's input format (default PCM16 at 24 kHz).
        chunk_ms: the length of each chunk.
        device: a sounddevice device id or name (default: the system's).
        samplerate: the rate to record at (default: the wire rate if the
            device takes it, else the device's own).
        buffer_ms: how much audio waits for a slow reader before the oldest
            is dropped.

    Raises:
        AudioDeviceUnavailable: sounddevice, PortAudio or an input device is missing.
    """
    return Microphone(
        _sounddevice(),
        fmt,
        chunk_ms=chunk_ms,
        device=device,
        samplerate=samplerate,
        buffer_ms=buffer_ms,
    )


@attrs.define
class _Queued:
    item_id: str
    samples: Samples
    offset: int = 0


class Speaker:
    """The output device as an ``audio_out`` sink; it reports what was played.

    The device stream opens when the speaker is made and plays silence when
    nothing is queued. ``played_ms`` counts the frames the stream has taken
    from the queue, so it runs ahead of the ear by the device's output
    latency (``latency``, typically tens of milliseconds).

    Args:
        fmt: the format of the audio it gets (default PCM16 at 24 kHz); a
            session sets it to its own.
        device: a sounddevice device id or name (default: the system's).
        samplerate: the rate to play at (default: the wire rate if the
            device takes it, else the device's own).

    Raises:
        AudioDeviceUnavailable: sounddevice, PortAudio or an output device is missing.
    """

    def __init__(
        self,
        fmt: AudioFormat = None,
        *,
        device: int | str | None = None,
        samplerate: int | None = None,
    ) -> None:
        sd = _sounddevice()
        self.fmt = fmt
        self.samplerate = samplerate or _device_rate(sd, device, "output", sample_rate(fmt))
        self._lock = threading.Lock()  # the callback runs on PortAudio's thread
        self._queue: deque[_Queued] = deque()
        self._frames: dict[str, int] = {}
        self._item: str | None = None
        self._decoder = Decoder(fmt, rate=self.samplerate)
        # Set by aclose(): how the callback tells trio that the queue ran dry.
        self._drained: tuple[trio.lowlevel.TrioToken, trio.Event] | None = None
        try:
            self._stream = sd.RawOutputStream(
                samplerate=self.samplerate,
                channels=1,
                dtype="int16",
                device=device,
                callback=self._callback,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as e:
            raise AudioDeviceUnavailable(f"Cannot open the speaker ({e}).") from e

    @property
    def bytes_per_ms(self) -> int:
        """Bytes of one millisecond of audio in its format."""
        return bytes_per_ms(self.fmt)

    def set_format(self, fmt: AudioFormat) -> None:
        """Decodes what is written from now on as ``fmt`` (the device keeps its rate)."""
        with self._lock:
            if fmt != self.fmt:
                if self._item is not None:  # what the old decoder still holds plays first
                    self._enqueue(self._item, self._decoder.flush())
                self.fmt = fmt
                self._decoder = Decoder(fmt, rate=self.samplerate)

    @property
    def latency(self) -> float:
        """The device's output latency in seconds, as PortAudio reports it."""
        return float(self._stream.latency)

    def write(self, item_id: str, audio: bytes) -> None:
        with self._lock:
            if item_id != self._item:
                if self._item is not None:
                    self._enqueue(self._item, self._decoder.flush())
                self._item = item_id
            self._enqueue(item_id, self._decoder.decode(audio))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._decoder.reset()
            if self._drained is not None:
                self._drained[1].set()
                self._drained = None

    def played_ms(self, item_id: str) -> int:
        with self._lock:
            return self._frames.get(item_id, 0) * 1000 // self.samplerate

    @property
    def playing(self) -> bool:
        with self._lock:
            return bool(self._queue)

    @property
    def playing_item(self) -> str | None:
        with self._lock:
            return self._queue[0].item_id if self._queue else None

    def close(self) -> None:
        """Stops and closes the device stream."""
        self._stream.close()

    async def aclose(self) -> None:
        """Waits for the queued audio to play out, then closes."""
        try:
            drained = trio.Event()
            with self._lock:
                queued = sum(len(q.samples) - q.offset for q in self._queue)
                if queued:
                    self._drained = (trio.lowlevel.current_trio_token(), drained)
                else:
                    drained.set()
            # Bounded: a stream that stopped calling back must not hang the exit.
            with trio.move_on_after(queued / self.samplerate + 1.0):
                await drained.wait()
        finally:
            self.close()

    def __enter__(self) -> Speaker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _enqueue(self, item_id: str, samples: Samples) -> None:
        if len(samples):
            self._queue.append(_Queued(item_id, samples))

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        block = np.zeros(frames, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < frames:
                if not self._queue:
                    # Out of audio (the item ended, or the network is late):
                    # the resampler's last milliseconds play now, not later.
                    if self._item is None or not self._decoder.pending:
                        break
                    self._enqueue(self._item, self._decoder.flush())
                    continue
                head = self._queue[0]
                take = min(frames - filled, len(head.samples) - head.offset)
                block[filled : filled + take] = head.samples[head.offset : head.offset + take]
                head.offset += take
                filled += take
                self._frames[head.item_id] = self._frames.get(head.item_id, 0) + take
                if head.offset == len(head.samples):
                    self._queue.popleft()
            if not self._queue and self._drained is not None:
                token, drained = self._drained
                self._drained = None
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(drained.set)
        outdata[:] = block.tobytes()
