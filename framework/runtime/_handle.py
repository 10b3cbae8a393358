"""The :class:`Session` handle: what the application holds while a session runs.

It sends through its own send ends (the outbox, the ResponseActor's and the
AudioInputActor's inboxes), reads what the actors expose, and answers
approvals; it owns no state of the session. ``open_session`` closes its send
ends when the block is left, so a handle kept past the block raises
:class:`ConnectionClosed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import attrs
import trio

from framework.errors import ConnectionClosed
from framework.protocol import (
    ClientEvent,
    ConversationItemCreateEvent,
    RealtimeConversationItemUserMessage,
    RealtimeResponseCreateParams,
    UserMessageContent,
)
from framework.tools import FunctionTool

from ._approvals import ApprovalRequest, Approvals, Decision
from ._continuity import Checkpoint, PendingCall, wire_items
from ._contracts import AgentLike, SessionConfigRequest
from ._elicitation import ElicitationAnswer, ElicitationRequest, Elicitations
from ._events import (
    AssistantMessage,
    EventHub,
    Interrupted,
    Observer,
    ResponseFinished,
    SessionEvent,
    ToolCallFinished,
    Usage,
)
from ._history import History
from ._messages import (
    AudioInbox,
    CommitAudio,
    CreateResponse,
    EventIds,
    Interrupt,
    NotifyWhenQuiet,
    ResponseInbox,
    SendAudio,
)

if TYPE_CHECKING:
    from ._audio_actor import AudioInputActor
    from ._hooks import HookRunner
    from ._measures import SessionMetrics
    from ._metrics import MetricsCollector
    from ._response_actor import ResponseActor
    from ._session_actor import SessionActor
    from ._tool_actor import ToolExecutionActor

_M = TypeVar("_M")


@attrs.frozen(kw_only=True)
class TurnResult:
    """Everything one turn produced, tool calls and follow-ups included.

    Attributes:
        text: what the assistant said or wrote, all messages joined.
        messages: each assistant message of the turn.
        tool_calls: each call with its arguments, output and status.
        responses: each response of the turn with its status and usage.
        usage: the turn's token usage, summed.
        interrupted: whether the user barged in during the turn.
    """

    text: str
    messages: Sequence[AssistantMessage]
    tool_calls: Sequence[ToolCallFinished]
    responses: Sequence[ResponseFinished]
    usage: Usage
    interrupted: bool


@attrs.define
class _TurnCollector:
    messages: list[AssistantMessage] = attrs.Factory(list)
    calls: list[ToolCallFinished] = attrs.Factory(list)
    responses: list[ResponseFinished] = attrs.Factory(list)
    interrupted: bool = False

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, AssistantMessage):
            self.messages.append(event)
        elif isinstance(event, ToolCallFinished):
            self.calls.append(event)
        elif isinstance(event, ResponseFinished):
            self.responses.append(event)
        elif isinstance(event, Interrupted):
            self.interrupted = True

    def result(self) -> TurnResult:
        usage = Usage()
        for response in self.responses:
            usage.add(response.usage)
        return TurnResult(
            text=" ".join(m.text for m in self.messages if m.text),
            messages=tuple(self.messages),
            tool_calls=tuple(self.calls),
            responses=tuple(self.responses),
            usage=usage,
            interrupted=self.interrupted,
        )


@attrs.define(kw_only=True, eq=False)
class _Parts:
    """The actors and helpers a handle reads (the supervisor fills it in)."""

    session: SessionActor
    responses: ResponseActor
    tools: ToolExecutionActor
    audio: AudioInputActor
    hooks: HookRunner
    metrics: MetricsCollector


class Session:
    """The application's handle on a running session (from :func:`open_session`)."""

    def __init__(
        self,
        *,
        outbox: trio.MemorySendChannel[ClientEvent],
        to_responses: trio.MemorySendChannel[ResponseInbox],
        to_audio: trio.MemorySendChannel[AudioInbox],
        events: EventHub,
        approvals: Approvals,
        elicitations: Elicitations | None = None,
        services: Mapping[int, object] | None = None,
    ) -> None:
        self._outbox = outbox
        self._to_responses = to_responses
        self._to_audio = to_audio
        self._events = events
        self._approvals = approvals
        self._elicitations = elicitations
        self._services = dict(services or {})
        self._turn_lock = trio.Lock()
        self._ids = EventIds()
        self._parts: _Parts | None = None

    def _attach(self, parts: _Parts) -> None:
        self._parts = parts

    @property
    def _p(self) -> _Parts:
        assert self._parts is not None, "the session is not wired yet"
        return self._parts

    def __repr__(self) -> str:
        return f"<Session {self.id or '?'} agent={self.agent.name!r}>"

    # --- state -----------------------------------------------------------------------

    @property
    def agent(self) -> AgentLike:
        """The agent in charge now (it changes on a handoff)."""
        return self._p.session.agent

    @property
    def id(self) -> str:
        return self._p.session.session_id

    @property
    def config(self) -> SessionConfigRequest | None:
        """The session's configuration, as the server last confirmed it."""
        return self._p.session.config

    @property
    def tools(self) -> Mapping[str, FunctionTool]:
        """The function tools offered now, by the name the model calls them."""
        return self._p.session.tools

    @property
    def history(self) -> History:
        """The local mirror of the conversation."""
        return self._p.session.history

    @property
    def usage(self) -> Usage:
        """Token usage summed over every response of the session."""
        return self._p.responses.usage

    @property
    def pending_approvals(self) -> list[ApprovalRequest]:
        return self._approvals.pending

    @property
    def metrics(self) -> SessionMetrics:
        """Per-turn latencies, tool times, audio, usage and cost, so far."""
        return self._p.metrics.snapshot()

    @property
    def endpoint(self) -> str:
        """Where the session is connected now (it changes on a failover)."""
        return self._p.session.endpoint

    def checkpoint(self) -> Checkpoint:
        """What another worker needs to take this session over (see :class:`Checkpoint`).

        Consistent at a turn end (after ``wait_quiet``), when no call is open;
        taken mid-turn, it lists the calls still without an output.
        """
        parts = self._p
        waiting = {r.call_id for r in self._approvals.pending}
        calls = tuple(
            PendingCall(
                call_id=call_id,
                name=call.request.name,
                arguments=call.request.arguments,
                state="awaiting_approval" if call_id in waiting else "running",
            )
            for call_id, call in parts.tools.running.items()
            if call.request.server_label is None
        )
        return Checkpoint(
            session_id=self.id,
            agent=self.agent.name,
            items=wire_items(parts.session.checkpoint_items()),
            calls=calls,
            sticky=dict(self._approvals.sticky),
        )

    @property
    def pending_elicitations(self) -> list[ElicitationRequest]:
        """Tools' questions waiting for the application, oldest first."""
        return self._elicitations.pending if self._elicitations is not None else []

    def plugin_service(self, plugin: object) -> object | None:
        """What ``plugin`` offers the application in this session (its contribution's
        ``service``), or ``None`` when it offers nothing or is not open here."""
        return self._services.get(id(plugin))

    def statistics(self) -> dict[str, int]:
        """Counters for monitoring: what was sent, merged, dropped; what is going on."""
        parts = self._p
        return {
            **parts.responses.stats,
            **parts.tools.stats,
            "audio_bytes_sent": parts.audio.appended_bytes,
            "audio_bytes_dropped": parts.audio.dropped_bytes,
            "events_dropped": self._events.dropped,
            "hooks_dropped": parts.hooks.dropped,
            "activity": parts.responses.outstanding,
            "calls_running": len(parts.tools.running),
        }

    # --- input -----------------------------------------------------------------------

    async def _send(self, channel: trio.MemorySendChannel[_M], message: _M) -> None:
        try:
            await channel.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._ended() from None

    def _ended(self) -> BaseException:
        closed = self._events.closed
        if isinstance(closed, Exception):
            return closed
        return ConnectionClosed(1000, "the session has ended")

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        """Adds a user message; with ``respond``, asks for a response to it.

        Raises:
            ConnectionClosed: the session has ended.
        """
        item = RealtimeConversationItemUserMessage(
            content=[UserMessageContent(type="input_text", text=text)]
        )
        await self._send(
            self._outbox, ConversationItemCreateEvent(event_id=self._ids("text"), item=item)
        )
        if respond:
            await self._send(self._to_responses, CreateResponse(reason="text"))

    async def send(self, event: ClientEvent) -> None:
        """Sends any client event as is, in order with the session's own.

        For what the handle has no method for (deleting an item, say). Events
        the actors own the sequencing of (``response.create``) are better asked
        for through their methods, which keep the guarantees.

        Raises:
            ConnectionClosed: the session has ended.
        """
        await self._send(self._outbox, event)

    async def send_audio(self, audio: bytes) -> None:
        """Appends audio in the session's input format (waits when the inbox is full).

        Raises:
            ConnectionClosed: the session has ended.
        """
        parts = self._parts
        if parts is not None and await parts.audio.offer(audio):
            return
        try:
            # No checkpoint when there is room: a paced source sends fifty chunks a
            # second per session.
            self._to_audio.send_nowait(SendAudio(audio=audio))
        except trio.WouldBlock:
            await self._send(self._to_audio, SendAudio(audio=audio))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._ended() from None

    async def commit(self, *, respond: bool = True) -> None:
        """Commits the input buffer as a user turn (manual turns, push-to-talk).

        Returns once the commit is on its way, after the audio sent before it.

        Raises:
            ConnectionClosed: the session has ended.
        """
        queued = trio.Event()
        await self._send(self._to_audio, CommitAudio(respond=respond, queued=queued))
        await self._until(queued)

    async def create_response(self, params: RealtimeResponseCreateParams | None = None) -> None:
        """Asks for a response (queued behind one in flight; never two at once).

        Raises:
            ConnectionClosed: the session has ended.
        """
        await self._send(self._to_responses, CreateResponse(params=params, reason="app"))

    async def interrupt(self) -> None:
        """Stops the assistant: playback, truncation at what was heard, cancel.

        Raises:
            ConnectionClosed: the session has ended.
        """
        await self._send(self._to_responses, Interrupt())

    # --- approvals -------------------------------------------------------------------

    def approve(self, request: ApprovalRequest | str, *, always: bool = False) -> None:
        """Approves a waiting call (``always``: every later call of that tool too).

        Raises:
            KeyError: nothing waits under that call id (answered, timed out, never asked).
        """
        self._approvals.decide(request, Decision(True, always=always))

    def reject(
        self, request: ApprovalRequest | str, reason: str | None = None, *, always: bool = False
    ) -> None:
        """Rejects a waiting call; ``reason`` is told to the model.

        Raises:
            KeyError: nothing waits under that call id (answered, timed out, never asked).
        """
        self._approvals.decide(request, Decision(False, reason, always=always))

    # --- elicitations ----------------------------------------------------------------

    def answer_elicitation(
        self, request: ElicitationRequest | str, content: Mapping[str, object] | None = None
    ) -> None:
        """Accepts a tool's question: the form's ``content``, or none for a URL.

        Raises:
            KeyError: nothing waits under that id (answered, timed out, never asked).
        """
        self._decide_elicitation(request, ElicitationAnswer("accept", content))

    def decline_elicitation(self, request: ElicitationRequest | str) -> None:
        """Says no to a tool's question.

        Raises:
            KeyError: nothing waits under that id (answered, timed out, never asked).
        """
        self._decide_elicitation(request, ElicitationAnswer("decline"))

    def cancel_elicitation(self, request: ElicitationRequest | str) -> None:
        """Dismisses a tool's question without a yes or a no.

        Raises:
            KeyError: nothing waits under that id (answered, timed out, never asked).
        """
        self._decide_elicitation(request, ElicitationAnswer("cancel"))

    def _decide_elicitation(
        self, request: ElicitationRequest | str, answer: ElicitationAnswer
    ) -> None:
        if self._elicitations is None:
            raise KeyError("this session asks no questions")
        self._elicitations.decide(request, answer)

    # --- turns and events ------------------------------------------------------------

    async def _until(self, done: trio.Event) -> None:
        """Waits for ``done``; raises the session's end if it ended instead."""
        await done.wait()
        if self._events.ended:
            raise self._ended()

    async def wait_quiet(self) -> None:
        """Returns once no response is running or owed and no tool call is outstanding.

        What was asked for before the call counts: after ``send_text``, it
        waits for that text's reply, its tool calls and their follow-ups.

        Raises:
            ConnectionClosed: the session ended first.
        """
        quiet = trio.Event()
        await self._send(self._to_responses, NotifyWhenQuiet(quiet=quiet))
        await self._until(quiet)

    async def run(self, text: str) -> TurnResult:
        """Sends a user message and returns when the whole turn is over.

        The turn includes tool calls and the responses that follow them.

        Raises:
            ConnectionClosed: the session ended during the turn.
        """
        async with self._turn_lock:
            collector = _TurnCollector()
            await self.wait_quiet()
            self._events.observe(collector)
            try:
                await self.send_text(text)
                await self.wait_quiet()
            finally:
                self._events.forget(collector)
            return collector.result()

    def observe(self, observer: Observer) -> None:
        """Hands ``observer`` every application event as it is published.

        For layers above the session that react to events without taking them
        from the application's ``async for`` (a phone call's keypad, say). The
        observer runs where the event is published, on an actor's task: it
        must return at once and never raise.
        """
        self._events.observe(observer)

    def forget(self, observer: Observer) -> None:
        """Stops handing events to ``observer``."""
        self._events.forget(observer)

    def publish(self, event: SessionEvent) -> None:
        """Adds an event from outside the wire to the session's events.

        Observers see it and ``async for`` yields it, in order with the
        session's own: a carrier's keypad press (:class:`DtmfReceived`) reaches
        the application as a SIP call's does. Never waits.
        """
        self._events.publish(event)

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> SessionEvent:
        return await self._events.get()

    def _close(self) -> None:
        """Closes the send ends (the supervisor, when the block is left)."""
        for channel in (self._outbox, self._to_responses, self._to_audio):
            channel.close()
