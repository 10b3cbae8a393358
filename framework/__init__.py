"""Cantata: realtime voice and text agents on trio, speaking the Realtime API protocol.

The public API for agent authors::

    from framework import Agent, open_session, tool

    class Bot(Agent):
        instructions = "Be brief."

        @tool
        async def get_weather(self, city: str) -> str:
            \"\"\"Current weather for a city.\"\"\"
            return "sunny"

    async with open_session(Bot(), url="ws://127.0.0.1:8765/v1/realtime") as session:
        result = await session.run("What's the weather in Paris?")

The names below are imported on first use, so that ``framework.protocol`` or
``framework.engine`` alone (the engine's start-up, a protocol-only client)
does not pay for the whole runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Agent": "framework.agent",
    "ApprovalRequest": "framework.approval",
    "Decision": "framework.approval",
    "AudioSink": "framework.audio",
    "ClockSink": "framework.audio",
    "SessionEvent": "framework.events",
    "Plugin": "framework.plugin",
    "Session": "framework.session",
    "SessionRefused": "framework.errors",
    "CantataError": "framework.errors",
    "TurnResult": "framework.session",
    "open_session": "framework.session",
    "FunctionTool": "framework.tools",
    "ToolOutcome": "framework.tools",
    "tool": "framework.tools",
    "ConnectionClosed": "framework.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from framework.agent import Agent as Agent
    from framework.approval import ApprovalRequest as ApprovalRequest
    from framework.approval import Decision as Decision
    from framework.audio import AudioSink as AudioSink
    from framework.audio import ClockSink as ClockSink
    from framework.errors import CantataError as CantataError
    from framework.errors import ConnectionClosed as ConnectionClosed
    from framework.errors import SessionRefused as SessionRefused
    from framework.events import SessionEvent as SessionEvent
    from framework.plugin import Plugin as Plugin
    from framework.session import Session as Session
    from framework.session import TurnResult as TurnResult
    from framework.session import open_session as open_session
    from framework.tools import FunctionTool as FunctionTool
    from framework.tools import ToolOutcome as ToolOutcome
    from framework.tools import tool as tool


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'framework' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
