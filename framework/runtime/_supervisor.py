"""``open_session``: the supervisor that wires one session and shuts it down in order.

It owns one nursery for the session's plugins and, inside it, one for the
actors and the hook runner; nothing outlives the ``async with``. Each actor
gets its inbox and ``clone()``s of the send ends it uses, and closes what it
owns. Actors start with ``await nursery.start(actor.run)``, the SessionActor
last (its start-up is the handshake), so start-up errors surface here.

Channels, and why their sizes:

* outbox (every actor and the handle -> the writer): :data:`OUTBOX` events;
  senders wait when it is full, so a stalled socket slows the session
  instead of growing memory;
* ResponseActor inbox: :data:`RESPONSE_INBOX` messages, a few seconds of the
  busiest stream (audio deltas); the reader waits when it is full, never drops;
* ToolExecutionActor inbox: :data:`TOOL_INBOX`; a call is a few messages;
* AudioInputActor inbox: ``AUDIO_INBOX`` chunks (see its module);
* SessionActor inbox: :data:`SESSION_INBOX`; handoffs and tool changes are rare;
* hooks: ``HOOK_QUEUE`` calls, dropped past that (see the hook runner).

It also wires what observes the session: the :class:`MetricsCollector` (it
sees the edge's messages, the writer's events and the application events, and
the ResponseActor tells it when the session goes quiet) and the plugins'
observers and audio taps.

**Shutdown** when the block is left (normally or by an exception raised in
it), in order and within :data:`SHUTDOWN_TIMEOUT_S`: the handle's send ends
close and the SessionActor stops reading (no new input); the tool actor
cancels running calls, which deliver their outputs; the response and audio
actors end; the writer drains the outbox and ends on ``EndOfChannel``; then
the connection closes. A dropped connection, or a cancellation from outside
the block, cancels everything at once instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from framework.audio import AudioSink
from framework.errors import single_errors
from framework.protocol import ClientEvent

from ._approvals import Approvals
from ._audio_actor import AUDIO_INBOX, AudioInputActor
from ._continuity import Checkpoint, Continuity, Endpoint
from ._contracts import AgentLike, Contribution, Elicitor, PluginContext, SessionPlugin, Wire
from ._elicitation import Elicitations
from ._events import ElicitationRequested, EventHub
from ._handle import Session, _Parts
from ._hooks import HookRunner
from ._measures import HOSTED_PRICES, Pricing
from ._messages import (
    AudioInbox,
    CloseSession,
    ResponseInbox,
    SessionInbox,
    ToolInbox,
    ToolsChanged,
)
from ._metrics import MetricsCollector
from ._response_actor import ResponseActor
from ._session_actor import SessionActor
from ._tool_actor import DEFAULT_OUTPUT_LIMIT, ToolExecutionActor

_log = logging.getLogger("cantata.session")

OUTBOX = 256
RESPONSE_INBOX = 1024
TOOL_INBOX = 64
SESSION_INBOX = 16
SHUTDOWN_TIMEOUT_S = 5.0
"""How long the ordered shutdown may take before what is left is cancelled."""
PLUGIN_TEARDOWN_S = 5.0
"""How long a plugin may take to close when its session ends."""


async def _run_plugin(
    plugin: SessionPlugin,
    context: PluginContext,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[Contribution] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A plugin's lifetime, in a task of its own (so it may hold a nursery open)."""
    async with plugin.open_in(context) as contribution:
        task_status.started(contribution)
        await stop.wait()


@asynccontextmanager
async def _open_plugins(
    plugins: Sequence[SessionPlugin],
    changes: trio.MemorySendChannel[SessionInbox],
    elicit: Elicitor | None,
) -> AsyncIterator[list[tuple[SessionPlugin, Contribution]]]:
    """Opens every plugin for the block; each closes within :data:`PLUGIN_TEARDOWN_S`.

    A plugin's ``changed()`` sends :class:`ToolsChanged` on ``changes``, which the
    caller closes when the session closes (later calls do nothing). ``elicit``
    is how plugins ask the user questions (``None``: nothing answers them).
    """

    def changed() -> None:
        try:
            changes.send_nowait(ToolsChanged())
        except trio.WouldBlock:
            pass  # a change is already waiting; one update covers both
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the session is closing

    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        opened = []
        context = PluginContext(changed=changed, elicit=elicit)
        for plugin in plugins:
            contribution = await nursery.start(_run_plugin, plugin, context, stop)
            opened.append((plugin, contribution))
        try:
            yield opened
        finally:
            stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + PLUGIN_TEARDOWN_S


@asynccontextmanager
async def open_session(
    agent: AgentLike,
    *,
    url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    audio_in: AsyncIterable[bytes] | None = None,
    audio_out: AudioSink | None = None,
    connection: Wire | None = None,
    raw_events: bool = False,
    tool_output_limit: int = DEFAULT_OUTPUT_LIMIT,
    elicitation: bool | None = None,
    endpoints: Sequence[Endpoint] = (),
    continuity: Continuity | None = None,
    plugins: Sequence[SessionPlugin] = (),
    pricing: Pricing | Mapping[str, Pricing] | None = HOSTED_PRICES,
    resume: Checkpoint | None = None,
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
            :mod:`framework.testing`); then ``url`` and ``api_key`` are unused,
            and the wire stays open after the block.
        raw_events: also yield every server event as ``ServerEventReceived``.
        tool_output_limit: characters of a tool's output sent at most; longer
            outputs are cut, with a note saying so.
        elicitation: whether the application answers tools' questions
            (``ElicitationRequested``); ``None``: only if the agent answers
            them (its ``answer_elicitation`` hook). When nothing does, MCP
            servers are told the session cannot be asked.
        endpoints: where else the session may go when its connection fails:
            tried in order after ``url`` (or after ``connection``, which cannot
            be dialed again), each with its own key and model (failover).
            With neither ``url`` nor ``connection``, the session starts on the
            first of them (``Endpoint()`` is the hosted API).
        continuity: how the session reconnects, fails over and rolls over
            (default :class:`Continuity`: on).
        plugins: plugins for this session only, besides the agent's (a recorder).
        pricing: prices per million tokens for ``session.metrics`` costs: one
            for every model, or a table by model (default: the hosted API's).
        resume: a checkpoint (``session.checkpoint()`` of a session elsewhere)
            whose conversation this session continues.

    Raises:
        ConnectionClosed: the connection could not be opened, or it ended.
        HandshakeRefused: the server refused the connection (a bad key, ...).
        SessionRefused: the server refused the agent's configuration.
        PluginError: one of the agent's plugins is not installed.
        ValueError: no key for the hosted API, or a bad URL.
    """
    if connection is None and (url is not None or not endpoints):
        endpoints = (Endpoint(url=url, api_key=api_key, model=model), *endpoints)
    with single_errors():
        async with AsyncExitStack() as stack:
            outbox_send, outbox_receive = trio.open_memory_channel[ClientEvent](OUTBOX)
            response_send, response_receive = trio.open_memory_channel[ResponseInbox](
                RESPONSE_INBOX
            )
            tool_send, tool_receive = trio.open_memory_channel[ToolInbox](TOOL_INBOX)
            audio_send, audio_receive = trio.open_memory_channel[AudioInbox](AUDIO_INBOX)
            control, session_receive = trio.open_memory_channel[SessionInbox](SESSION_INBOX)
            changes = control.clone()
            events = EventHub()
            session_actor: SessionActor | None = None

            def in_charge() -> AgentLike:
                # Questions go to the agent in charge when they are asked (handoffs change it).
                return session_actor.agent if session_actor is not None else agent

            elicitations = Elicitations(
                timeout=lambda: in_charge().approval_timeout,
                hook=lambda: (
                    in_charge().answer_elicitation if in_charge().answers_elicitations else None
                ),
                announce=lambda r: events.publish(ElicitationRequested(request=r)),
            )
            answers = agent.answers_elicitations if elicitation is None else elicitation
            opened = await stack.enter_async_context(
                _open_plugins(
                    [*agent.session_plugins(), *plugins],
                    changes,
                    elicitations.ask if answers else None,
                )
            )
            approvals = Approvals(sticky=dict(resume.sticky) if resume is not None else {})
            hooks = HookRunner()
            metrics = MetricsCollector(events, pricing=pricing, playback=audio_out is not None)
            for _, contribution in opened:
                if contribution.observe is not None:
                    events.observe(contribution.observe)
            taps = [c.audio for _, c in opened if c.audio is not None]
            with outbox_send, response_send, tool_send:
                handle = Session(
                    outbox=outbox_send.clone(),
                    to_responses=response_send.clone(),
                    to_audio=audio_send,
                    events=events,
                    approvals=approvals,
                    elicitations=elicitations,
                    services={id(p): c.service for p, c in opened if c.service is not None},
                )
                session_actor = SessionActor(
                    agent=agent,
                    plugins=opened,
                    inbox=session_receive,
                    outbox=outbox_receive,
                    updates=outbox_send.clone(),
                    to_responses=response_send.clone(),
                    to_tools=tool_send.clone(),
                    to_audio=audio_send.clone(),
                    events=events,
                    connection=connection,
                    endpoints=endpoints,
                    continuity=continuity,
                    metrics=metrics,
                    resume=resume,
                    raw_events=raw_events,
                )
                tools = ToolExecutionActor(
                    tool_receive,
                    outbox=outbox_send.clone(),
                    to_responses=response_send.clone(),
                    to_session=control.clone(),
                    events=events,
                    approvals=approvals,
                    output_limit=tool_output_limit,
                )
                responses = ResponseActor(
                    response_receive,
                    outbox=outbox_send.clone(),
                    events=events,
                    sink=audio_out,
                    on_done=hooks.response_done,
                    on_quiet=metrics.quiet,
                    taps=taps,
                )
                audio = AudioInputActor(
                    audio_receive,
                    outbox=outbox_send.clone(),
                    to_responses=response_send.clone(),
                    source=audio_in,
                    taps=taps,
                    writer=session_actor,
                )
            events.observe(hooks.observe)
            session_actor.handle = hooks.session = handle
            handle._attach(
                _Parts(
                    session=session_actor,
                    responses=responses,
                    tools=tools,
                    audio=audio,
                    hooks=hooks,
                    metrics=metrics,
                )
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hooks.run)
                nursery.start_soon(metrics.run)
                await nursery.start(tools.run)
                await nursery.start(responses.run)
                await nursery.start(audio.run)
                await nursery.start(session_actor.run)
                try:
                    yield handle
                finally:
                    events.end(None)
                    with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_TIMEOUT_S):
                        handle._close()
                        changes.close()
                        with (
                            control,
                            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
                        ):
                            await control.send(CloseSession())
                        await session_actor.finished.wait()
                    metrics.finish()  # the turns still open, with the outputs of the shutdown
                    nursery.cancel_scope.cancel()
