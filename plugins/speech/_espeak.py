"""Speech synthesis with espeak-ng, from the ``espeakng-loader`` wheel, over ctypes.

The wheel ships ``libespeak-ng`` and its data, so nothing comes from the
system. The library is one global synthesizer per process, so a lock
serializes the calls into it; they run in a worker thread (``trio.to_thread``)
so that a session's other tasks go on meanwhile. espeak speaks at 22.05 kHz;
the output is resampled to the rate asked for.
"""

from __future__ import annotations

import _ctypes
import ctypes
import sys
import threading
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import trio

from framework.audio import Samples

from ._deps import require
from ._resample import resample

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: espeak_Synth returns when all audio is out
_DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT: fail with an error, not exit()
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1  # espeakRATE, words per minute
_SEED = 1  # of espeak's breath and aspiration noise

VOICES: Mapping[str, str] = {
    # The protocol's voices, each a distinct espeak variant: the hosted API's
    # female voices get f1-f5, the male ones m1-m6 (m4, the hoarse one, left out).
    "alloy": "f3",
    "ash": "m1",
    "ballad": "m2",
    "coral": "f4",
    "echo": "m3",
    "sage": "f5",
    "shimmer": "f2",
    "verse": "m5",
    "marin": "f1",
    "cedar": "m6",
}
_VARIANTS = sorted(set(VOICES.values()))

_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


_RATE_HZ = 22050
_lock = threading.Lock()


def _declare(lib: Any) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_Callback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None


def _unload(lib: Any) -> None:
    """Unloads the library, so that the next load starts from fresh static state."""
    if sys.platform == "win32":
        _ctypes.FreeLibrary(lib._handle)
    else:
        _ctypes.dlclose(lib._handle)


def speak(text: str, voice: str, words_per_minute: int) -> Samples:
    """espeak-ng's 22.05 kHz samples for ``text`` (blocking; one call at a time).

    espeak-ng keeps synthesis state in static variables (the pitch flutter
    and glottal wave phases, ...), so the same text would come out slightly
    different on every call, and it seeds its noise generator from the clock.
    The library is loaded afresh for each utterance (about 3 ms) and its seed
    fixed, which makes the audio a function of the text and voice alone. The
    price: espeak-ng does not free a loaded voice when it terminates, about
    2 KB per utterance that stay allocated.
    """
    loader: Any = require("espeakng_loader", "espeakng-loader")
    chunks: list[Samples] = []

    def collect(wav: Any, count: int, events: Any) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    callback = _Callback(collect)
    with _lock:
        lib = ctypes.CDLL(loader.get_library_path())
        try:
            _declare(lib)
            rate = lib.espeak_Initialize(
                _SYNCHRONOUS, 0, loader.get_data_path().encode(), _DONT_EXIT
            )
            if rate != _RATE_HZ:
                raise RuntimeError(f"espeak-ng failed to initialize (returned {rate})")
            lib.espeak_SetSynthCallback(callback)
            lib.espeak_ng_SetRandSeed(_SEED)  # initialization seeds it from the clock
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            lib.espeak_SetParameter(_RATE, words_per_minute, 0)
            data = text.encode("utf-8")
            status = lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != 0:
                raise RuntimeError(f"espeak-ng failed to synthesize (code {status})")
        finally:
            lib.espeak_Terminate()
            _unload(lib)
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


class EspeakSynthesizer:
    """The engine's voice: espeak-ng, offline (the ``synthesizer:espeak`` part).

    Args:
        language: the espeak voice the variants apply to.
        words_per_minute: speaking rate.
        voices: protocol voice -> espeak variant (``"f3"``) or full voice
            (``"en-gb+m2"``), over :data:`VOICES`. Other names get a variant
            chosen by a hash of the name, so each voice always sounds the same.
    """

    name = "espeak"

    def __init__(
        self,
        *,
        language: str = "en-us",
        words_per_minute: int = 175,
        voices: Mapping[str, str] | None = None,
    ) -> None:
        self.language = language
        self.words_per_minute = words_per_minute
        self.voices = {**VOICES, **(voices or {})}

    def espeak_voice(self, voice: str) -> str:
        """The espeak voice name that speaks the protocol voice ``voice``."""
        chosen = self.voices.get(voice)
        if chosen is None:
            chosen = _VARIANTS[zlib.crc32(voice.encode()) % len(_VARIANTS)]
        return chosen if "+" in chosen or "-" in chosen else f"{self.language}+{chosen}"

    def synthesize_blocking(self, text: str, *, rate: int, voice: str) -> Samples:
        """:meth:`synthesize` in the calling thread."""
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        samples = speak(text, self.espeak_voice(voice), self.words_per_minute)
        return resample(samples, _RATE_HZ, rate)

    async def synthesize(self, text: str, *, rate: int, voice: str) -> Samples:
        """16-bit mono samples at ``rate`` speaking ``text`` in ``voice``."""
        return await trio.to_thread.run_sync(
            lambda: self.synthesize_blocking(text, rate=rate, voice=voice)
        )
