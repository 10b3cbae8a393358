"""The messages the four actors exchange; each actor's inbox is a union of them.

Commands are imperative (``CreateResponse``), events past tense
(``ResponseEnded``). Every message is a frozen attrs class of plain values:
the SessionActor translates wire events into them once, at the edge, so the
protocol's optional fields (``UNSET``, ``None``) are resolved there and
nowhere else. A few commands carry a ``trio.Event`` their sender waits on:
the reply of a request/reply exchange.

Who sends what to whom:

=====================  ==============================================================
inbox                  messages (sender)
=====================  ==============================================================
:data:`SessionInbox`   ``HandOff`` (tools), ``ToolsChanged`` (plugins),
                       ``CloseSession`` (the supervisor)
:data:`ResponseInbox`  ``CreateResponse``, ``Interrupt``, ``NotifyWhenQuiet`` (the
                       application, the audio actor), ``SessionConfigured``,
                       ``ResponseStarted``, ``AssistantDelta``, ``AudioDelta``,
                       ``MessageDone``, ``ResponseEnded``, ``BargedIn``,
                       ``CreateRefused``, ``ConnectionLost`` (session),
                       ``CallFinished`` (tools)
:data:`ToolInbox`      ``CallRequested``, ``BargedIn``, ``OutputAccepted``,
                       ``OutputRefused`` (session)
:data:`AudioInbox`     ``SendAudio``, ``CommitAudio`` (the application),
                       ``ConnectionLost``, ``ConnectionRestored`` (session)
=====================  ==============================================================
"""

from __future__ import annotations

import itertools
from typing import TypeAlias

import attrs
import trio

from framework.audio import AudioFormat
from framework.protocol import RealtimeResponse, RealtimeResponseCreateParams, RealtimeResponseUsage
from framework.tools import FunctionTool

from ._approvals import ApprovalHook
from ._contracts import AgentLike
from ._events import AssistantDelta


class EventIds:
    """Client event ids of one sender: ``<prefix>_<n>``, numbered per sender.

    Each actor names its events with its own prefixes, so an ``error`` the
    server sends back (``event_id``) reaches the actor that sent the event.
    """

    def __init__(self) -> None:
        self._count = itertools.count(1)

    def __call__(self, prefix: str) -> str:
        return f"{prefix}_{next(self._count):06d}"


# --- to the SessionActor --------------------------------------------------------------


@attrs.frozen(kw_only=True, eq=False)
class HandOff:
    """Switch the session to ``target``; ``applied`` is set once its update is queued."""

    target: AgentLike
    applied: trio.Event


@attrs.frozen(kw_only=True)
class ToolsChanged:
    """A plugin's tool list changed: recompute the tools, tell the server if they differ."""


@attrs.frozen(kw_only=True)
class CloseSession:
    """Stop intake and shut down in order (from the supervisor, when the block is left)."""


SessionInbox: TypeAlias = HandOff | ToolsChanged | CloseSession

# --- to the ResponseActor -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateResponse:
    """Ask the server for a response (queued while another is in flight)."""

    params: RealtimeResponseCreateParams | None = None
    reason: str = "app"


@attrs.frozen(kw_only=True)
class Interrupt:
    """Stop the assistant now (the application's barge-in)."""


@attrs.frozen(kw_only=True, eq=False)
class NotifyWhenQuiet:
    """Set ``quiet`` once no response is running or owed and no call is outstanding."""

    quiet: trio.Event


@attrs.frozen(kw_only=True)
class SessionConfigured:
    """The server confirmed a configuration (``session.updated``)."""

    server_interrupts: bool
    """Whether server VAD cancels the active response itself when the user speaks."""
    input_format: AudioFormat = None
    output_format: AudioFormat = None
    """The audio formats in force (``None``: the protocol's default, PCM16 at 24 kHz)."""


@attrs.frozen(kw_only=True)
class ResponseStarted:
    """The server started a response (ours, or its own on a VAD turn)."""

    response_id: str


@attrs.frozen(kw_only=True)
class AudioDelta:
    """Audio of an assistant message, decoded, in the session's output format."""

    response_id: str
    item_id: str
    audio: bytes


@attrs.frozen(kw_only=True)
class MessageDone:
    """An assistant message finished; ``text`` is what its content parts carry."""

    response_id: str
    item_id: str
    text: str


@attrs.frozen(kw_only=True)
class ResponseEnded:
    """A response ended; ``call_ids`` are the calls it asked for (each told to the tools).

    ``cut``: it did not end on the server; its connection was lost (or
    replaced) while it ran, and this message stands in for its ``response.done``.
    """

    response_id: str
    status: str
    usage: RealtimeResponseUsage | None
    response: RealtimeResponse
    call_ids: tuple[str, ...] = ()
    cut: bool = False


@attrs.frozen(kw_only=True)
class ConnectionLost:
    """The connection the session ran on is gone (dropped, expired, or being replaced).

    The ResponseActor asks again for the response it was still waiting on if
    its ``response.create`` was on that connection (``lost_create``: its event
    id; one still in the outbox goes out on the next); the AudioInputActor holds
    user audio (at most ``keep_bytes``, the newest) until :class:`ConnectionRestored`.
    """

    keep_bytes: int = 0
    lost_create: str | None = None


@attrs.frozen(kw_only=True)
class ConnectionRestored:
    """The session is on a new connection with its conversation replayed."""


@attrs.frozen(kw_only=True)
class BargedIn:
    """The user started speaking (server VAD), over the assistant or not."""

    audio_start_ms: int


@attrs.frozen(kw_only=True)
class CreateRefused:
    """The server answered one of our ``response.create`` events with an ``error``."""

    event_id: str
    code: str
    message: str


@attrs.frozen(kw_only=True)
class CallFinished:
    """A call's output is with the server; ``speak``: it wants a reply."""

    call_id: str
    speak: bool


ResponseInbox: TypeAlias = (
    CreateResponse
    | Interrupt
    | NotifyWhenQuiet
    | SessionConfigured
    | ResponseStarted
    | AssistantDelta
    | AudioDelta
    | MessageDone
    | ResponseEnded
    | BargedIn
    | CreateRefused
    | CallFinished
    | ConnectionLost
)

# --- to the ToolExecutionActor --------------------------------------------------------


@attrs.frozen(kw_only=True, eq=False)
class CallContext:
    """What a call needs of the session as it was when the call was made.

    Attributes:
        agent: the agent in charge (its timeouts, approval hook, handoffs).
        policies: the plugins' approval policies.
        tool_names: every function tool offered, for the "unknown tool" answer.
    """

    agent: AgentLike
    policies: tuple[ApprovalHook, ...] = ()
    tool_names: tuple[str, ...] = ()


@attrs.frozen(kw_only=True, eq=False)
class CallRequested:
    """The model called a function (or a hosted MCP tool needs approval); told once per call.

    ``server_label`` is set for a hosted MCP approval request, whose ``call_id``
    is the request's item id; ``tool`` is ``None`` for those and for unknown tools.
    """

    call_id: str
    name: str
    arguments: str
    response_id: str
    tool: FunctionTool | None
    context: CallContext
    server_label: str | None = None


@attrs.frozen(kw_only=True)
class OutputAccepted:
    """The server added the output item of call ``call_id`` to the conversation."""

    call_id: str


@attrs.frozen(kw_only=True)
class OutputRefused:
    """The server answered an output's ``conversation.item.create`` with an ``error``."""

    event_id: str | None
    code: str
    message: str


ToolInbox: TypeAlias = CallRequested | BargedIn | OutputAccepted | OutputRefused

# --- to the AudioInputActor -----------------------------------------------------------


@attrs.frozen(kw_only=True)
class SendAudio:
    """Append audio (in the session's input format) to the input buffer."""

    audio: bytes


@attrs.frozen(kw_only=True, eq=False)
class CommitAudio:
    """Commit the input buffer as a user turn (manual turns, push-to-talk).

    ``queued`` is set once the commit (and the response asked for, with
    ``respond``) are on their way, after every append sent before it.
    """

    respond: bool
    queued: trio.Event


AudioInbox: TypeAlias = SendAudio | CommitAudio | ConnectionLost | ConnectionRestored
