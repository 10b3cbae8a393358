"""Audio: formats and codecs, resampling, WAV files, devices, and sinks.

* formats: the protocol's wire formats (PCM16 24 kHz, G.711 mu-law and A-law
  at 8 kHz) to and from 16-bit samples at any rate, one-shot and streaming;
* resampling: a low-latency polyphase resampler between any two rates;
* WAV: a file as a session's microphone (paced in real time or not) and as
  its speaker (what was heard, written on close);
* devices: microphone and speaker through sounddevice, an optional extra;
* sinks: where assistant audio plays, and how much of it was heard, for
  barge-in.
"""

from framework.errors import AudioDeviceUnavailable as AudioDeviceUnavailable

from ._devices import Microphone as Microphone
from ._devices import Speaker as Speaker
from ._devices import open_microphone as open_microphone
from ._formats import PCM_RATE as PCM_RATE
from ._formats import AudioFormat as AudioFormat
from ._formats import Decoder as Decoder
from ._formats import Encoder as Encoder
from ._formats import bytes_per_ms as bytes_per_ms
from ._formats import decode as decode
from ._formats import encode as encode
from ._formats import sample_rate as sample_rate
from ._formats import sample_width as sample_width
from ._g711 import alaw_to_pcm16 as alaw_to_pcm16
from ._g711 import pcm16_to_alaw as pcm16_to_alaw
from ._g711 import pcm16_to_ulaw as pcm16_to_ulaw
from ._g711 import ulaw_to_pcm16 as ulaw_to_pcm16
from ._playback import AudioSink as AudioSink
from ._playback import ClockSink as ClockSink
from ._resample import Resampler as Resampler
from ._resample import Samples as Samples
from ._resample import resample as resample
from ._wav import WavSink as WavSink
from ._wav import WavSource as WavSource
from ._wav import paced as paced
from ._wav import read_wav as read_wav
from ._wav import write_wav as write_wav
