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
    "AudioSink": "framework.audio",
    "ClockSink": "framework.audio",
    "CantataError": "framework.errors",
    "ConnectionClosed": "framework.errors",
    "SessionRefused": "framework.errors",
    "Plugin": "framework.plugin",
    "ApprovalRequest": "framework.runtime",
    "ApprovalRequested": "framework.runtime",
    "AssistantDelta": "framework.runtime",
    "AssistantMessage": "framework.runtime",
    "Decision": "framework.runtime",
    "DtmfReceived": "framework.runtime",
    "ElicitationAnswer": "framework.runtime",
    "ElicitationRequest": "framework.runtime",
    "ElicitationRequested": "framework.runtime",
    "ErrorReported": "framework.runtime",
    "HandedOff": "framework.runtime",
    "Interrupted": "framework.runtime",
    "McpCallFinished": "framework.runtime",
    "McpToolsListed": "framework.runtime",
    "PlayoutStopped": "framework.runtime",
    "ResponseFinished": "framework.runtime",
    "ServerEventReceived": "framework.runtime",
    "Session": "framework.runtime",
    "SessionEvent": "framework.runtime",
    "SessionStarted": "framework.runtime",
    "ToolCallFinished": "framework.runtime",
    "ToolCallStarted": "framework.runtime",
    "ToolProgress": "framework.runtime",
    "TranscriptSegment": "framework.runtime",
    "TurnResult": "framework.runtime",
    "UserSpeechStarted": "framework.runtime",
    "UserSpeechStopped": "framework.runtime",
    "UserTranscript": "framework.runtime",
    "open_session": "framework.runtime",
    "open_transcription_session": "framework.runtime",
    "FunctionTool": "framework.tools",
    "ToolOutcome": "framework.tools",
    "ToolResult": "framework.tools",
    "tool": "framework.tools",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from framework.agent import Agent as Agent
    from framework.audio import AudioSink as AudioSink
    from framework.audio import ClockSink as ClockSink
    from framework.errors import CantataError as CantataError
    from framework.errors import ConnectionClosed as ConnectionClosed
    from framework.errors import SessionRefused as SessionRefused
    from framework.plugin import Plugin as Plugin
    from framework.runtime import ApprovalRequest as ApprovalRequest
    from framework.runtime import ApprovalRequested as ApprovalRequested
    from framework.runtime import AssistantDelta as AssistantDelta
    from framework.runtime import AssistantMessage as AssistantMessage
    from framework.runtime import Decision as Decision
    from framework.runtime import DtmfReceived as DtmfReceived
    from framework.runtime import ElicitationAnswer as ElicitationAnswer
    from framework.runtime import ElicitationRequest as ElicitationRequest
    from framework.runtime import ElicitationRequested as ElicitationRequested
    from framework.runtime import ErrorReported as ErrorReported
    from framework.runtime import HandedOff as HandedOff
    from framework.runtime import Interrupted as Interrupted
    from framework.runtime import McpCallFinished as McpCallFinished
    from framework.runtime import McpToolsListed as McpToolsListed
    from framework.runtime import PlayoutStopped as PlayoutStopped
    from framework.runtime import ResponseFinished as ResponseFinished
    from framework.runtime import ServerEventReceived as ServerEventReceived
    from framework.runtime import Session as Session
    from framework.runtime import SessionEvent as SessionEvent
    from framework.runtime import SessionStarted as SessionStarted
    from framework.runtime import ToolCallFinished as ToolCallFinished
    from framework.runtime import ToolCallStarted as ToolCallStarted
    from framework.runtime import ToolProgress as ToolProgress
    from framework.runtime import TranscriptSegment as TranscriptSegment
    from framework.runtime import TurnResult as TurnResult
    from framework.runtime import UserSpeechStarted as UserSpeechStarted
    from framework.runtime import UserSpeechStopped as UserSpeechStopped
    from framework.runtime import UserTranscript as UserTranscript
    from framework.runtime import open_session as open_session
    from framework.runtime import open_transcription_session as open_transcription_session
    from framework.tools import FunctionTool as FunctionTool
    from framework.tools import ToolOutcome as ToolOutcome
    from framework.tools import ToolResult as ToolResult
    from framework.tools import tool as tool


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'framework' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
