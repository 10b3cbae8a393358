"""What the four actors of a session share: the runtime record.

It is built by ``open_session`` and handed to each actor. It holds no tasks
of its own; the actors' inboxes, the outbox, the activity count, the local
history, the usage totals and the publisher of application events.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from framework.approval import Approvals
from framework.audio import AudioSink
from framework.events import ServerEventReceived, SessionEvent
from framework.protocol import RealtimeResponseUsage, RealtimeSessionCreateRequest, ServerEvent

from ._history import History
from ._messages import Activity, Outbox

if TYPE_CHECKING:
    from framework.agent import Agent
    from framework.plugin import Contribution, Plugin
    from framework.tools import FunctionTool

_log = logging.getLogger("cantata.session")

APP_EVENT_BUFFER = 1024
"""Application events kept for ``async for event in session``; past it the oldest go."""


class Wire(Protocol):
    """The connection a session runs on (a WebSocket, or memory in tests)."""

    async def send_text(self, text: str) -> None: ...

    async def receive_text(self) -> str: ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None: ...


@attrs.define
class Usage:
    """Token usage summed over a session's (or a turn's) responses."""

    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    cached_tokens: int = 0

    def add(self, usage: RealtimeResponseUsage | None) -> None:
        self.responses += 1
        if usage is None:
            return
        self.input_tokens += _int(usage.input_tokens)
        self.output_tokens += _int(usage.output_tokens)
        self.total_tokens += _int(usage.total_tokens)
        details_in = usage.input_token_details
        if details_in is not None and not isinstance(details_in, str):
            self.input_audio_tokens += _int(getattr(details_in, "audio_tokens", 0))
            self.cached_tokens += _int(getattr(details_in, "cached_tokens", 0))
        details_out = usage.output_token_details
        if details_out is not None and not isinstance(details_out, str):
            self.output_audio_tokens += _int(getattr(details_out, "audio_tokens", 0))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class EventQueue:
    """The application's events: bounded, dropping the oldest when full.

    A session must never wait for an application that does not read its
    events; ``dropped`` counts what was lost that way.
    """

    def __init__(self, size: int = APP_EVENT_BUFFER) -> None:
        self._events: deque[SessionEvent] = deque(maxlen=size)
        self._arrived = trio.Event()
        self.dropped = 0
        self.closed: BaseException | None = None
        self._ended = False

    def put(self, event: SessionEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._arrived.set()

    def end(self, error: BaseException | None) -> None:
        self._ended = True
        self.closed = error
        self._arrived.set()

    async def get(self) -> SessionEvent:
        """The next event; raises ``StopAsyncIteration`` once the session ended."""
        while not self._events:
            if self._ended:
                if self.closed is not None:
                    raise self.closed
                raise StopAsyncIteration
            self._arrived = trio.Event()
            await self._arrived.wait()
        return self._events.popleft()


@attrs.define(kw_only=True, eq=False)
class Runtime:
    """The record the actors of one session share."""

    agent: Agent
    outbox: Outbox
    response_inbox: trio.MemorySendChannel[Any]
    tool_inbox: trio.MemorySendChannel[Any]
    audio_inbox: trio.MemorySendChannel[Any]
    sink: AudioSink | None = None
    raw_events: bool = False
    activity: Activity = attrs.Factory(Activity)
    history: History = attrs.Factory(History)
    usage: Usage = attrs.Factory(Usage)
    approvals: Approvals = attrs.Factory(Approvals)
    events: EventQueue = attrs.Factory(EventQueue)
    config: RealtimeSessionCreateRequest | None = None
    session_id: str = ""
    observers: list[Callable[[SessionEvent], None]] = attrs.Factory(list)
    hook_channel: trio.MemorySendChannel[Any] | None = None
    contributions: list[tuple[Plugin, Contribution]] = attrs.Factory(list)
    hooks_dropped: int = 0
    handle: Any = None  # the public Session, passed to agent hooks

    def tools(self) -> dict[str, FunctionTool]:
        """The function tools of the session now: the agent's, then its plugins'.

        The agent's tools keep their names. Every plugin tool whose name is
        shared (with the agent or another plugin) is offered as
        ``<plugin>_<name>``, shortened with a hash to the protocol's 64
        characters, so no tool hides another whatever order they came in.
        """
        found = {t.name: t for t in self.agent.all_tools()}
        offered = [(p.name, t) for p, c in self.contributions for t in c.tools()]
        counts: dict[str, int] = {}
        for _, t in offered:
            counts[t.name] = counts.get(t.name, 0) + 1
        for owner, t in offered:
            name = t.name
            if name in found or counts[name] > 1:
                name = _fit(f"{owner}_{name}")
            if name in found:
                _log.warning("tool %s of plugin %s is left out: %s is taken", t.name, owner, name)
                continue
            found[name] = t if name == t.name else attrs.evolve(t, name=name)
        return found

    def find_tool(self, name: str) -> FunctionTool | None:
        return self.tools().get(name)

    def tool_definitions(self) -> list[Any]:
        """What goes in ``session.tools``: function tools, then hosted ones."""
        definitions: list[Any] = [t.definition() for t in self.tools().values()]
        definitions.extend(self.agent.hosted_tools)
        for _, contribution in self.contributions:
            definitions.extend(contribution.hosted_tools)
        return definitions

    def session_config(self, *, handoff: bool = False) -> RealtimeSessionCreateRequest:
        """The agent's ``session.update`` payload, with the plugins' tools."""
        return self.agent.session_config(
            keep_audio_from=self.config if handoff else None,
            session=self.handle,
            tools=self.tool_definitions(),
        )

    def publish(self, event: SessionEvent) -> None:
        """Hands an application event to observers and to the event queue."""
        for observer in list(self.observers):
            observer(event)
        self.events.put(event)

    def call_hook(self, name: str, *args: Any) -> None:
        """Queues an agent hook call for the hook runner (user code runs there)."""
        if self.hook_channel is None:
            return
        try:
            self.hook_channel.send_nowait((name, args))
        except trio.WouldBlock:
            self.hooks_dropped += 1
            _log.warning("agent hooks are not keeping up; %s was dropped", name)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def route_server_event(self, event: ServerEvent) -> None:
        """Offers a raw server event to the application when it asked for them."""
        if self.raw_events:
            self.publish(ServerEventReceived(event=event))


def _fit(name: str, limit: int = 64) -> str:
    """``name`` within the protocol's length limit, kept unique by a short hash."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}_{digest}"
