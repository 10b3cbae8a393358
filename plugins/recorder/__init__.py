"""The recorder: a session as a stereo WAV file (user left, assistant right) and a JSON report.

``Recorder("recordings")`` among an agent's plugins, ``open_session(...,
plugins=[Recorder(DIR)])`` for one session, or ``cantata run BOT.py --record
DIR``. It uses the runtime's public seams only: an audio tap and an event
observer (:class:`framework.plugin.Contribution`).
"""

from ._plugin import Recorder as Recorder
from ._plugin import Recording as Recording
from ._timeline import Timeline as Timeline
