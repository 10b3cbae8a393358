"""``open_session`` and the :class:`Session` handle.

``open_session`` opens one nursery that owns everything of the session: the
connection (unless one is given), the four actors, each started with
``await nursery.start(actor.run)`` so start-up errors surface here, and the
hook runner that runs the agent's hooks off the reader. Nothing outlives the
``async with``. Errors come out unwrapped: a closed or dropped connection is
:class:`~framework.transport.ConnectionClosed`, a refused configuration
:class:`SessionRefused`, and the caller's own exceptions are their own.

Channels, and why their sizes:

* outbox (every actor -> the writer): 256 events; senders wait when full, so
  a stalled socket slows the session instead of growing memory;
* response and tool inboxes (reader -> actor): 1024 events, a few seconds of
  the busiest stream (audio deltas); the reader waits when full, never drops;
* audio inbox (application -> AudioInputActor): 16 chunks, see
  :mod:`framework.actors._audio_input`;
* hooks (actors -> hook runner): 256 calls; past that a hook call is dropped
  and counted, because a slow hook must never stall the protocol.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio

from framework.actors import (
    Activity,
    AudioInputActor,
    CommitAudio,
    CreateResponse,
    History,
    Interrupt,
    Outbox,
    ResponseActor,
    Runtime,
    SendAudio,
    SessionActor,
    SessionRefused,
    ToolExecutionActor,
    Usage,
    Wire,
)
from framework.agent import Agent
from framework.approval import ApprovalRequest, Decision
from framework.audio import AudioSink
from framework.events import (
    AssistantMessage,
    Interrupted,
    ResponseFinished,
    SessionEvent,
    ToolCallFinished,
)
from framework.plugin import TEARDOWN_TIMEOUT_S, Contribution, Plugin, resolve_plugins
from framework.protocol import (
    ConversationItemCreateEvent,
    RealtimeConversationItemUserMessage,
    RealtimeResponseCreateParams,
    RealtimeSessionCreateRequest,
    SessionUpdateEvent,
    UserMessageContent,
    to_dict,
)
from framework.transport import ConnectionClosed, open_connection

_log = logging.getLogger("cantata.session")

__all__ = ["Session", "SessionRefused", "TurnResult", "open_session"]


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


class Session:
    """The application's handle on a running session (from :func:`open_session`)."""

    def __init__(self, runtime: Runtime, actors: dict[str, Any]) -> None:
        self._rt = runtime
        self._actors = actors
        self._turn_lock = trio.Lock()

    def __repr__(self) -> str:
        return f"<Session {self._rt.session_id or '?'} agent={self._rt.agent.name!r}>"

    # --- state -----------------------------------------------------------------------

    @property
    def agent(self) -> Agent:
        """The agent in charge now (it changes on a handoff)."""
        return self._rt.agent

    @property
    def id(self) -> str:
        return self._rt.session_id

    @property
    def history(self) -> History:
        """The local mirror of the conversation."""
        return self._rt.history

    @property
    def usage(self) -> Usage:
        """Token usage summed over every response of the session."""
        return self._rt.usage

    @property
    def pending_approvals(self) -> list[ApprovalRequest]:
        return self._rt.approvals.pending

    def statistics(self) -> dict[str, int]:
        """Counters for monitoring: what was sent, merged, dropped."""
        response: ResponseActor = self._actors["response"]
        audio: AudioInputActor = self._actors["audio"]
        return {
            **response.stats,
            "audio_bytes_sent": audio.appended_bytes,
            "events_dropped": self._rt.events.dropped,
            "hooks_dropped": self._rt.hooks_dropped,
            "activity": self._rt.activity.count,
        }

    # --- input -----------------------------------------------------------------------

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        """Adds a user message; with ``respond``, asks for a response to it."""
        if respond:
            self._rt.activity.up()  # counted before anything is sent: never quiet in between
        await self._rt.outbox.send(
            ConversationItemCreateEvent(
                event_id=self._rt.outbox.next_id("text"),
                item=RealtimeConversationItemUserMessage(
                    content=[UserMessageContent(type="input_text", text=text)]
                ),
            )
        )
        if respond:
            await self._rt.response_inbox.send(CreateResponse(reason="text"))

    async def send_audio(self, audio: bytes) -> None:
        """Appends audio in the session's input format (waits when the inbox is full)."""
        await self._rt.audio_inbox.send(SendAudio(audio=audio))

    async def commit(self, *, respond: bool = True) -> None:
        """Commits the input buffer as a user turn (manual turns, push-to-talk)."""
        await self._rt.audio_inbox.send(CommitAudio(respond=respond))

    async def create_response(self, params: RealtimeResponseCreateParams | None = None) -> None:
        """Asks for a response (queued behind one in flight; never two at once)."""
        self._rt.activity.up()
        await self._rt.response_inbox.send(CreateResponse(params=params, reason="app"))

    async def interrupt(self) -> None:
        """Stops the assistant: playback, truncation at what was heard, cancel."""
        await self._rt.response_inbox.send(Interrupt())

    # --- approvals -------------------------------------------------------------------

    def approve(self, request: ApprovalRequest | str, *, always: bool = False) -> None:
        """Approves a waiting call (``always``: every later call of that tool too)."""
        self._rt.approvals.decide(request, Decision(True, always=always))

    def reject(
        self, request: ApprovalRequest | str, reason: str | None = None, *, always: bool = False
    ) -> None:
        """Rejects a waiting call; ``reason`` is told to the model."""
        self._rt.approvals.decide(request, Decision(False, reason, always=always))

    # --- turns and events ------------------------------------------------------------

    async def wait_quiet(self) -> None:
        """Returns once no response and no tool call is in progress.

        Raises:
            ConnectionClosed: the session ended first.
        """
        await self._rt.activity.wait_quiet()

    async def run(self, text: str) -> TurnResult:
        """Sends a user message and returns when the whole turn is over.

        The turn includes tool calls and the responses that follow them.

        Raises:
            ConnectionClosed: the session ended during the turn.
        """
        async with self._turn_lock:
            collector = _TurnCollector()
            self._rt.observers.append(collector)
            try:
                await self.wait_quiet()
                await self.send_text(text)
                await self.wait_quiet()
            finally:
                self._rt.observers.remove(collector)
            return collector.result()

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> SessionEvent:
        return await self._rt.events.get()


async def _run_hooks(runtime: Runtime, calls: trio.MemoryReceiveChannel[Any]) -> None:
    """Runs agent hooks one at a time; a failing hook is logged, never fatal."""
    async with calls:
        async for name, args in calls:
            hook = getattr(runtime.agent, name, None)
            if hook is None:
                continue
            try:
                await hook(runtime.handle, *args)
            except Exception:
                _log.exception("agent hook %s failed", name)


async def _run_plugin(
    plugin: Plugin,
    changed: Callable[[], None],
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[Contribution] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A plugin's lifetime, in a task of its own (so it may hold a nursery open)."""
    async with plugin.open(changed) as contribution:
        task_status.started(contribution)
        await stop.wait()


async def _retool(runtime: Runtime, signal: list[trio.Event]) -> None:
    """Sends the new tool list whenever a plugin says its tools changed."""
    sent = [to_dict(d) for d in runtime.tool_definitions()]
    while True:
        await signal[0].wait()
        signal[0] = trio.Event()
        await trio.sleep(0.05)  # a burst of changes becomes one update
        definitions = runtime.tool_definitions()
        if [to_dict(d) for d in definitions] != sent:
            sent = [to_dict(d) for d in definitions]
            await runtime.outbox.send(
                SessionUpdateEvent(
                    event_id=runtime.outbox.next_id("tools"),
                    session=RealtimeSessionCreateRequest(type="realtime", tools=definitions),
                )
            )


@asynccontextmanager
async def open_session(
    agent: Agent,
    *,
    url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    audio_in: AsyncIterable[bytes] | None = None,
    audio_out: AudioSink | None = None,
    connection: Wire | None = None,
    raw_events: bool = False,
) -> AsyncIterator[Session]:
    """Connects, configures the session for ``agent`` and runs it for the block.

    Args:
        agent: the agent in charge (a handoff may replace it).
        url: ``None`` for the hosted API, or a Realtime URL such as the local
            engine's ``ws://127.0.0.1:8765/v1/realtime``.
        api_key: the key (for the hosted API, ``OPENAI_API_KEY`` by default).
        model: the model (default: the agent's, else the server's default).
        audio_in: chunks of input audio in the session's input format.
        audio_out: where assistant audio plays; it reports what was heard.
        connection: an already open wire (for example an in-memory one from
            :mod:`framework.testing`); then ``url`` and ``api_key`` are unused.
        raw_events: also yield every server event as ``ServerEventReceived``.

    Raises:
        ConnectionClosed: the connection could not be opened, or it ended.
        SessionRefused: the server refused the agent's configuration.
    """
    async with AsyncExitStack() as stack:
        wire: Wire
        if connection is None:
            wire = await stack.enter_async_context(
                open_connection(url, api_key=api_key, model=model or agent.model)
            )
        else:
            wire = connection
        outbox_send, outbox_receive = trio.open_memory_channel[Any](256)
        response_send, response_receive = trio.open_memory_channel[Any](1024)
        tool_send, tool_receive = trio.open_memory_channel[Any](1024)
        audio_send, audio_receive = trio.open_memory_channel[Any](16)
        hook_send, hook_receive = trio.open_memory_channel[Any](256)
        runtime = Runtime(
            agent=agent,
            outbox=Outbox(outbox_send),
            response_inbox=response_send,
            tool_inbox=tool_send,
            audio_inbox=audio_send,
            sink=audio_out,
            raw_events=raw_events,
            activity=Activity(),
            hook_channel=hook_send,
        )
        actors: dict[str, Any] = {
            "tools": ToolExecutionActor(runtime, tool_receive),
            "response": ResponseActor(runtime, response_receive),
            "audio": AudioInputActor(runtime, audio_receive, audio_in),
            "session": SessionActor(
                runtime,
                wire,
                outbox_receive,
                response_inbox=response_send,
                tool_inbox=tool_send,
            ),
        }
        session = Session(runtime, actors)
        runtime.handle = session
        tools_changed = [trio.Event()]

        def changed() -> None:
            tools_changed[0].set()

        plugins = resolve_plugins(agent.plugins)
        try:
            # Plugins live in their own nursery, around the actors': they start
            # before the connection is configured and stop after the actors.
            async with trio.open_nursery() as plugin_tasks:
                stop = trio.Event()
                for plugin in plugins:
                    contribution = await plugin_tasks.start(_run_plugin, plugin, changed, stop)
                    runtime.contributions.append((plugin, contribution))
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_run_hooks, runtime, hook_receive)
                        nursery.start_soon(_retool, runtime, tools_changed)
                        for name in ("tools", "response", "audio", "session"):
                            await nursery.start(actors[name].run)
                        try:
                            yield session
                        finally:
                            runtime.events.end(None)
                            nursery.cancel_scope.cancel()
                finally:
                    stop.set()
                    plugin_tasks.cancel_scope.deadline = trio.current_time() + TEARDOWN_TIMEOUT_S
        except BaseExceptionGroup as group:
            raise _unwrap(group) from None


def _unwrap(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one exception users should see for a failed session."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        elif not isinstance(error, trio.Cancelled):
            leaves.append(error)

    walk(group)
    if len(leaves) == 1:
        return leaves[0]
    closed = [e for e in leaves if isinstance(e, ConnectionClosed)]
    others = [e for e in leaves if not isinstance(e, ConnectionClosed)]
    if len(others) == 1:
        return others[0]  # the caller's own error, raised as the connection went
    if closed and not others:
        return closed[0]
    return group
