"""Audio formats and codecs.

G.711 mu-law and A-law to and from 16-bit PCM, which both the local
engine and the client side need for telephony formats, and the sinks that
play assistant audio and report how much of it was heard.
"""

from ._g711 import (
    alaw_to_pcm16 as alaw_to_pcm16,
)
from ._g711 import (
    pcm16_to_alaw as pcm16_to_alaw,
)
from ._g711 import (
    pcm16_to_ulaw as pcm16_to_ulaw,
)
from ._g711 import (
    ulaw_to_pcm16 as ulaw_to_pcm16,
)
from ._playback import (
    AudioSink as AudioSink,
)
from ._playback import (
    ClockSink as ClockSink,
)
