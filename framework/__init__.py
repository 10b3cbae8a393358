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
"""

from framework.agent import Agent as Agent
from framework.approval import ApprovalRequest as ApprovalRequest
from framework.approval import Decision as Decision
from framework.audio import AudioSink as AudioSink
from framework.audio import ClockSink as ClockSink
from framework.events import SessionEvent as SessionEvent
from framework.session import Session as Session
from framework.session import SessionRefused as SessionRefused
from framework.session import TurnResult as TurnResult
from framework.session import open_session as open_session
from framework.tool import FunctionTool as FunctionTool
from framework.tool import ToolOutcome as ToolOutcome
from framework.tool import tool as tool
from framework.transport import ConnectionClosed as ConnectionClosed
