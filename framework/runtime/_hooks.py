"""The hook runner: the agent's hooks, run one at a time, off the socket reader.

It observes the application events; those an agent has a hook for are queued
(at most :data:`HOOK_QUEUE`; past that a hook call is dropped and counted,
because a slow hook must never stall the protocol) and run in the runner's own
task, on the agent in charge at that moment. A failing hook is logged, never
fatal.

========================  =====================================================
event                     hook
========================  =====================================================
``SessionStarted``        ``on_session_started(session)``
``UserTranscript``        ``on_user_transcript(session, text)`` (final text only)
``ToolCallStarted``       ``on_tool_call(session, name, arguments)``
``response.done``         ``on_response_done(session, response)`` (told by the ResponseActor)
``Interrupted``           ``on_interrupted(session, event)``
``ErrorReported``         ``on_error(session, error)``
========================  =====================================================
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import trio

from framework.protocol import RealtimeResponse

from ._contracts import AgentLike
from ._events import (
    ErrorReported,
    Interrupted,
    SessionEvent,
    SessionStarted,
    ToolCallStarted,
    UserTranscript,
)

if TYPE_CHECKING:
    from ._handle import Session

_log = logging.getLogger("cantata.session")

HOOK_QUEUE = 256
"""Hook calls waiting for the runner; past that they are dropped (and counted)."""

_Call: TypeAlias = Callable[[AgentLike, "Session"], Awaitable[None]]


def _hook_for(event: SessionEvent) -> _Call | None:
    """The agent hook an event calls, bound to the event's values (None: no hook)."""
    if isinstance(event, SessionStarted):
        return lambda agent, session: agent.on_session_started(session)
    if isinstance(event, UserTranscript):
        if not event.final:
            return None
        text = event.text
        return lambda agent, session: agent.on_user_transcript(session, text)
    if isinstance(event, ToolCallStarted):
        name, arguments = event.name, event.arguments
        return lambda agent, session: agent.on_tool_call(session, name, arguments)
    if isinstance(event, Interrupted):
        return lambda agent, session: agent.on_interrupted(session, event)
    if isinstance(event, ErrorReported):
        error = event.error
        return lambda agent, session: agent.on_error(session, error)
    return None


class HookRunner:
    """Runs the agent's hooks for one session (see the module docstring)."""

    def __init__(self) -> None:
        self.session: Session | None = None  # set when the session is wired
        self._send, self._receive = trio.open_memory_channel[_Call](HOOK_QUEUE)
        self.dropped = 0

    def observe(self, event: SessionEvent) -> None:
        """An event observer: queues the hook the event calls, never waiting."""
        call = _hook_for(event)
        if call is not None:
            self._queue(call, event)

    def response_done(self, response: RealtimeResponse) -> None:
        """Queues ``on_response_done`` for a whole response, never waiting."""
        self._queue(lambda agent, session: agent.on_response_done(session, response), "a response")

    def _queue(self, call: _Call, what: object) -> None:
        try:
            self._send.send_nowait(call)
        except trio.WouldBlock:
            self.dropped += 1
            _log.warning("agent hooks are not keeping up; one for %s was dropped", what)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def run(self) -> None:
        with self._receive, self._send:
            async for call in self._receive:
                session = self.session
                if session is None:
                    continue
                try:
                    await call(session.agent, session)
                except Exception:
                    _log.exception("an agent hook failed")
