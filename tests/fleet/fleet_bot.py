"""The bot the fleet's tests run in their worker processes.

The simulated SIP trunk carries no audio, so the caller talks through the
keypad: the engine's operator interface presses a key in the call, and
``on_call`` turns each key into the caller's line (a text turn). What the
tests wait for, the bot reports on a Redis stream (``FLEET_TEST_EVENTS``,
under ``FLEET_TEST_REDIS``): the tests read it with blocking reads instead of
polling the workers.
"""

from __future__ import annotations

import os

import coredis
import trio

from framework.runtime import (
    ApprovalRequested,
    AssistantMessage,
    DtmfReceived,
    ToolCallFinished,
    ToolCallStarted,
)
from framework.telephony import PhoneAgent, PhoneCall
from framework.tools import tool

EVENTS = "fleet-test:events"
LINES = {
    "1": "What is the weather in Paris",
    "2": "Look up my order",
    "3": "Pay 12 to Bob",
    "4": "Hello there",
}
RULES = "fleet_bot.toml"


class FleetBot(PhoneAgent):
    instructions = "You answer the phone for the fleet's tests."

    @tool
    async def get_weather(self, city: str) -> str:
        """The weather in a city.

        Args:
            city: the city.
        """
        return "sunny"

    @tool(timeout=600)
    async def look_up_order(self) -> str:
        """Looks up the caller's order (slowly: the tests kill a worker meanwhile)."""
        await trio.sleep(600)
        return "shipped"

    @tool(needs_approval=True)
    async def pay(self, amount: float, to: str) -> str:
        """Pays someone.

        Args:
            amount: how much.
            to: who.
        """
        return f"paid {amount:g} to {to}"


async def on_call(call: PhoneCall) -> None:
    """Keys become the caller's lines; tool and approval events are reported."""
    assert call.session is not None
    session = call.session
    redis = coredis.Redis.from_url(os.environ["FLEET_TEST_REDIS"], decode_responses=True)
    async with redis:

        async def report(kind: str, **fields: str) -> None:
            await redis.xadd(
                EVENTS, {"kind": kind, "call": call.id, "pid": str(os.getpid()), **fields}
            )

        await report("up")
        async for event in session:
            if isinstance(event, DtmfReceived) and event.digit in LINES:
                await session.send_text(LINES[event.digit])
            elif isinstance(event, ToolCallStarted):
                await report("tool_started", name=event.name, tool_call=event.call_id)
            elif isinstance(event, ToolCallFinished):
                await report("tool_finished", name=event.name, output=event.output)
            elif isinstance(event, AssistantMessage):
                await report("said", text=event.text)
            elif isinstance(event, ApprovalRequested):
                await report("approval", tool_call=event.request.call_id)
