"""The session runtime: one supervisor, four actors, typed messages between them.

``open_session`` (``_supervisor``) opens one nursery per session and starts:

* the **SessionActor** (``_session_actor``, with ``_edge``): the connection and
  its lifecycle, the configuration, handoffs, the history mirror, and the
  translation of every wire event into messages, once;
* the **AudioInputActor** (``_audio_actor``): the audio source and commits;
* the **ResponseActor** (``_response_actor``): response sequencing, output
  assembly, the sink and barge-in, and whether the session is quiet;
* the **ToolExecutionActor** (``_tool_actor``): every function call and MCP
  approval, each with exactly one output.

They exchange only the frozen messages of ``_messages``, over bounded
channels, and publish application events (``_events``) that the application
iterates, ``session.run`` collects and the hook runner (``_hooks``) turns into
agent hooks. ``_handle`` is the application's :class:`Session`; ``_contracts``
says what the runtime needs of an agent, a plugin and a wire (it imports
neither ``framework.agent`` nor ``framework.plugin``); ``_toolset`` computes
the session's tools; ``_approvals``, ``_elicitation`` (a tool's question for the
user) and ``_history`` are what their names say;
``_transcription`` runs the same actors for captions; ``_continuity`` holds
what the SessionActor needs to outlive a connection (endpoints, the policy,
replay, checkpoints); ``_metrics`` turns the messages into per-turn metrics (``_measures``: what they
are, and prices).
"""

from framework.errors import ConnectionClosed as ConnectionClosed
from framework.errors import SessionRefused as SessionRefused

from ._approvals import ApprovalHook as ApprovalHook
from ._approvals import ApprovalRequest as ApprovalRequest
from ._approvals import Approvals as Approvals
from ._approvals import Decision as Decision
from ._audio_actor import AudioInputActor as AudioInputActor
from ._continuity import Checkpoint as Checkpoint
from ._continuity import Continuity as Continuity
from ._continuity import Dialer as Dialer
from ._continuity import Endpoint as Endpoint
from ._continuity import PendingCall as PendingCall
from ._contracts import AgentLike as AgentLike
from ._contracts import AudioTap as AudioTap
from ._contracts import Contribution as Contribution
from ._contracts import PluginContext as PluginContext
from ._contracts import SessionConfigRequest as SessionConfigRequest
from ._contracts import SessionPlugin as SessionPlugin
from ._contracts import Wire as Wire
from ._elicitation import ElicitationAnswer as ElicitationAnswer
from ._elicitation import ElicitationHook as ElicitationHook
from ._elicitation import ElicitationRequest as ElicitationRequest
from ._elicitation import Elicitations as Elicitations
from ._events import ApprovalRequested as ApprovalRequested
from ._events import AssistantDelta as AssistantDelta
from ._events import AssistantMessage as AssistantMessage
from ._events import AudioCleared as AudioCleared
from ._events import AudioCommitted as AudioCommitted
from ._events import CallStatus as CallStatus
from ._events import DtmfReceived as DtmfReceived
from ._events import ElicitationRequested as ElicitationRequested
from ._events import ErrorReported as ErrorReported
from ._events import EventHub as EventHub
from ._events import HandedOff as HandedOff
from ._events import Interrupted as Interrupted
from ._events import McpCallFinished as McpCallFinished
from ._events import McpToolsListed as McpToolsListed
from ._events import Observer as Observer
from ._events import PlayoutStopped as PlayoutStopped
from ._events import Reconnected as Reconnected
from ._events import Reconnecting as Reconnecting
from ._events import ResponseFinished as ResponseFinished
from ._events import RolledOver as RolledOver
from ._events import ServerEventReceived as ServerEventReceived
from ._events import SessionEvent as SessionEvent
from ._events import SessionStarted as SessionStarted
from ._events import ToolCallFinished as ToolCallFinished
from ._events import ToolCallStarted as ToolCallStarted
from ._events import ToolProgress as ToolProgress
from ._events import TranscriptionFailed as TranscriptionFailed
from ._events import TurnMeasured as TurnMeasured
from ._events import Usage as Usage
from ._events import UserSpeechStarted as UserSpeechStarted
from ._events import UserSpeechStopped as UserSpeechStopped
from ._events import UserTranscript as UserTranscript
from ._handle import Session as Session
from ._handle import TurnResult as TurnResult
from ._history import History as History
from ._history import HistoryItem as HistoryItem
from ._measures import HOSTED_PRICES as HOSTED_PRICES
from ._measures import Pricing as Pricing
from ._measures import ResponseMetrics as ResponseMetrics
from ._measures import SessionMetrics as SessionMetrics
from ._measures import ToolMetrics as ToolMetrics
from ._measures import TurnMetrics as TurnMetrics
from ._metrics import MetricsCollector as MetricsCollector
from ._response_actor import ResponseActor as ResponseActor
from ._session_actor import SessionActor as SessionActor
from ._supervisor import PLUGIN_TEARDOWN_S as PLUGIN_TEARDOWN_S
from ._supervisor import SHUTDOWN_TIMEOUT_S as SHUTDOWN_TIMEOUT_S
from ._supervisor import open_session as open_session
from ._tool_actor import DEFAULT_OUTPUT_LIMIT as DEFAULT_OUTPUT_LIMIT
from ._tool_actor import ToolExecutionActor as ToolExecutionActor
from ._transcription import TranscriptionSession as TranscriptionSession
from ._transcription import TranscriptSegment as TranscriptSegment
from ._transcription import open_transcription_session as open_transcription_session
