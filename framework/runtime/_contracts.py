"""What the runtime needs from the layers around it, as protocols.

The runtime sits below the agent and the plugin system (``framework.agent``,
``framework.plugin``) and never imports them: it states here the little it
uses of an agent (:class:`AgentLike`), of a plugin (:class:`SessionPlugin`,
which yields a :class:`Contribution` for one session) and of a connection
(:class:`Wire`). ``Agent`` and ``Plugin`` satisfy these protocols; so can any
other class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, TypeAlias

import attrs

from framework.protocol import (
    McpTool,
    RealtimeError,
    RealtimeResponse,
    RealtimeSessionCreateRequest,
    RealtimeToolsConfigUnion,
    RealtimeTranscriptionSessionCreateRequest,
)
from framework.tools import FunctionTool

from ._approvals import ApprovalHook, ApprovalRequest, Decision
from ._elicitation import ElicitationAnswer, ElicitationRequest

if TYPE_CHECKING:
    from framework.audio import AudioFormat

    from ._events import Interrupted, Observer
    from ._handle import Session

__all__ = [
    "AgentLike",
    "AudioTap",
    "Contribution",
    "DirectWriter",
    "PluginContext",
    "SessionConfigRequest",
    "SessionPlugin",
    "Wire",
]

SessionConfigRequest: TypeAlias = (
    RealtimeSessionCreateRequest | RealtimeTranscriptionSessionCreateRequest
)
"""What a ``session.update`` may carry: an agent's session, or a transcription session."""


class Wire(Protocol):
    """The connection a session runs on (a WebSocket, or memory in tests)."""

    async def send_text(self, text: str) -> None: ...

    async def receive_text(self) -> str: ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None: ...


class DirectWriter(Protocol):
    """Writes a frame at once, in the caller's task, when the session's writer is idle."""

    def can_write_now(self) -> bool:
        """Whether :meth:`write_now` may be called now (nothing is queued or being written)."""
        ...

    async def write_now(self, text: str) -> bool:
        """Writes ``text`` whole; False when the line dropped under it."""
        ...


class AudioTap(Protocol):
    """Sees a session's audio as it passes (a recorder, a meter); it must not block.

    Called on the actors' tasks, so a tap only takes note; any work (mixing,
    writing files) belongs in a task of its own.
    """

    def formats(self, input: AudioFormat, output: AudioFormat) -> None:
        """The audio formats in force, at the start and whenever they change."""
        ...

    def user_audio(self, audio: bytes) -> None:
        """Audio of the user, in the input format, as the session takes it."""
        ...

    def assistant_audio(self, item_id: str, audio: bytes) -> None:
        """Audio of the assistant, in the output format, as it goes to playback."""
        ...

    def playback_stopped(self, item_id: str | None, played_ms: int) -> None:
        """Playback stopped at a barge-in; ``played_ms`` of ``item_id`` were heard."""
        ...


def _no_tools() -> Sequence[FunctionTool]:
    return ()


@attrs.frozen(kw_only=True)
class Contribution:
    """What an open plugin gives one session.

    Attributes:
        tools: the function tools it offers now; called again after the
            plugin signals a change, for lists that change (MCP servers).
        hosted_tools: tool definitions the *server* runs (``type: "mcp"``).
        approve: an approval source consulted after sticky decisions and
            before the agent's hook: a decision, or ``None`` for no opinion.
        instructions: text added to the agent's instructions (an MCP
            server's prompt, say), read when the session is configured.
        service: what the plugin offers the application for this session
            (``session.plugin_service(plugin)``), such as an MCP server's
            resources and prompts.
        observe: sees every application event as it is published (metrics
            included); it must not block.
        audio: sees the session's audio in and out.
    """

    tools: Callable[[], Sequence[FunctionTool]] = _no_tools
    hosted_tools: Sequence[McpTool] = ()
    approve: ApprovalHook | None = None
    instructions: str = ""
    service: object | None = None
    observe: Observer | None = None
    audio: AudioTap | None = None


Elicitor: TypeAlias = Callable[[ElicitationRequest], Awaitable[ElicitationAnswer]]
"""Asks the user a tool's question; a decline when nobody answers in time."""


@attrs.frozen(kw_only=True, eq=False)
class PluginContext:
    """What a session offers a plugin it opens.

    Attributes:
        changed: tells the session the plugin's tools changed.
        elicit: asks the user a question (a form or a URL), through the
            agent's hook and the application; ``None`` when nothing in this
            session answers questions, so a plugin should not offer to ask
            (an MCP client then does not declare the elicitation capability).
    """

    changed: Callable[[], None]
    elicit: Elicitor | None = None


class SessionPlugin(Protocol):
    """A plugin as a session sees it: a name and a lifetime per session."""

    @property
    def name(self) -> str: ...

    def open_in(self, context: PluginContext) -> AbstractAsyncContextManager[Contribution]:
        """The plugin's lifetime in one session, with what the session offers it."""
        ...


class AgentLike(Protocol):
    """What a session reads of its agent (``framework.Agent`` is the usual one).

    The settings are read when the session starts and at each handoff; the
    hooks run in the session's hook runner, never on the socket reader.
    """

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str | None: ...

    @property
    def tool_timeout(self) -> float: ...

    @property
    def approval_timeout(self) -> float: ...

    @property
    def hosted_tools(self) -> Sequence[McpTool]: ...

    def all_tools(self) -> Sequence[FunctionTool]:
        """The agent's own function tools (handoff tools included)."""
        ...

    def session_plugins(self) -> Sequence[SessionPlugin]:
        """The plugins to open for a session (installed ones already resolved)."""
        ...

    def session_config(
        self,
        *,
        keep_audio_from: RealtimeSessionCreateRequest | None = None,
        session: Session | None = None,
        tools: Sequence[RealtimeToolsConfigUnion] | None = None,
    ) -> SessionConfigRequest:
        """The ``session.update`` payload; ``tools`` replaces the agent's own definitions."""
        ...

    def handoff_target(self, value: object) -> AgentLike | None:
        """The agent a tool's return value hands the session to, or ``None``."""
        ...

    async def approve_tool_call(self, request: ApprovalRequest) -> bool | Decision | None: ...

    @property
    def answers_elicitations(self) -> bool:
        """Whether :meth:`answer_elicitation` answers tools' questions itself."""
        ...

    async def answer_elicitation(self, request: ElicitationRequest) -> ElicitationAnswer | None: ...

    async def on_session_started(self, session: Session) -> None: ...

    async def on_user_transcript(self, session: Session, text: str) -> None: ...

    async def on_response_done(self, session: Session, response: RealtimeResponse) -> None: ...

    async def on_tool_call(self, session: Session, name: str, arguments: str) -> None: ...

    async def on_interrupted(self, session: Session, event: Interrupted) -> None: ...

    async def on_error(self, session: Session, error: RealtimeError) -> None: ...
