"""The session runtime: one supervisor, four actors, messages between them.

See ``DESIGN.md``: the SessionActor owns the connection and routes; the
AudioInputActor the input audio; the ResponseActor responses, playback and
barge-in; the ToolExecutionActor every function call. ``open_session`` in
:mod:`framework.session` wires them together.
"""

from framework.errors import SessionRefused as SessionRefused

from ._audio_input import AudioInputActor as AudioInputActor
from ._history import History as History
from ._history import HistoryItem as HistoryItem
from ._messages import Activity as Activity
from ._messages import BargedIn as BargedIn
from ._messages import CommitAudio as CommitAudio
from ._messages import CreateResponse as CreateResponse
from ._messages import Interrupt as Interrupt
from ._messages import Outbox as Outbox
from ._messages import SendAudio as SendAudio
from ._response import ResponseActor as ResponseActor
from ._runtime import EventQueue as EventQueue
from ._runtime import Runtime as Runtime
from ._runtime import Usage as Usage
from ._runtime import Wire as Wire
from ._session import SessionActor as SessionActor
from ._tools import ToolExecutionActor as ToolExecutionActor
