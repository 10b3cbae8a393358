"""Agents and engine rules shared by the runtime tests."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from framework import Agent, open_session, tool
from framework.protocol import AudioPCMU
from framework.runtime import ApprovalRequested, Endpoint, Session, SessionPlugin
from framework.testing import memory_engine

RULES = r"""
fallback = "Sorry, I can only talk about the weather."

[[rule]]
when = "weather in (?P<city>[A-Za-z ]+?)[?.!]*$"
call = "get_weather"
args = { city = "{city}" }

[[rule]]
after = "get_weather"
say = "In {city} it is {output}."

[[rule]]
when = "^(hi|hello)\\b"
say = "Hello! Ask me about the weather."

[[rule]]
when = "tell me a story"
say = "Once upon a time there was a little engine that talked on and on without a network."

[[rule]]
when = "two cities"
calls = [
    { name = "get_weather", args = { city = "Oslo" } },
    { name = "get_weather", args = { city = "Rome" } },
]

[[rule]]
when = "explode"
call = "explode"

[[rule]]
when = "bad arguments"
call = "get_weather"
args = { city = 42 }

[[rule]]
when = "teleport"
call = "teleport"
args = { to = "Mars" }

[[rule]]
when = "slowly"
call = "slow_lookup"

[[rule]]
when = "send (?P<amount>[0-9]+)"
call = "transfer_money"
args = { amount = "{amount}" }

[[rule]]
after = "transfer_money"
say = "Transfer result: {output}"

[[rule]]
when = "billing"
call = "transfer_to_billing"

[[rule]]
when = "invoice"
say = "Billing here: your invoice is paid."
"""

FORECASTS = {"paris": "sunny", "oslo": "snowing", "rome": "warm"}


class WeatherBot(Agent):
    """Text replies, a weather tool and some tools that misbehave."""

    instructions = "You help people with the weather."
    output_modalities = ("text",)
    tool_timeout = 2.0

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.slow_finished = False
        self.slow_cancelled = False

    @tool
    async def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: the city's name.
        """
        self.calls.append(city)
        return FORECASTS.get(city.lower(), "cloudy")

    @tool
    async def explode(self) -> str:
        """A tool that fails."""
        raise RuntimeError("the weather station is on fire")

    @tool(timeout=0.5)
    async def slow_lookup(self) -> str:
        """A tool that takes too long (or forever)."""
        try:
            await trio.sleep(3600)
        except trio.Cancelled:
            self.slow_cancelled = True
            raise
        self.slow_finished = True
        return "done"


class PolicyTools(Agent):
    """Three slow tools, one per barge-in policy; ``ran`` records the calls that finished."""

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.ran: list[str] = []

    async def _work(self, name: str) -> str:
        await trio.sleep(1.0)
        self.ran.append(name)
        return f"{name} finished"

    @tool(on_interrupt="cancel")
    async def stop_me(self) -> str:
        """Stops when the user talks."""
        return await self._work("stop_me")

    @tool(on_interrupt="finish_silently")
    async def quiet_one(self) -> str:
        """Finishes, without a reply, when the user talks."""
        return await self._work("quiet_one")

    @tool(on_interrupt="finish_and_speak")
    async def chatty(self) -> str:
        """Finishes and is spoken of anyway."""
        return await self._work("chatty")


class BankBot(Agent):
    """Transfers need approval; the decision comes from the application."""

    instructions = "You move money, carefully."
    output_modalities = ("text",)
    approval_timeout = 30.0

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.transferred: list[int] = []

    @tool(needs_approval=lambda args: int(args["amount"]) > 50)
    async def transfer_money(self, amount: str) -> str:
        """Sends money.

        Args:
            amount: how much, in euros.
        """
        self.transferred.append(int(amount))
        return f"sent {amount} euros"


class Billing(Agent):
    name = "Billing"
    instructions = "You answer billing questions."
    output_modalities = ("text",)
    handoff_description = "Invoices and payments."


class PhoneTriage(Agent):
    """A telephony agent (G.711 mu-law both ways) that hands billing questions off."""

    name = "Triage"
    instructions = "You route callers."
    output_modalities = ("text",)
    input_audio_format = AudioPCMU(type="audio/pcmu")
    output_audio_format = AudioPCMU(type="audio/pcmu")
    handoffs = (Billing(),)


async def weather_turns(plugins: Sequence[SessionPlugin] = ()) -> Session:
    """Two turns of the weather bot on an engine in memory: a greeting, then a tool call.

    Returns the session, closed (its metrics are complete).
    """
    async with (
        memory_engine(rules=RULES) as served,
        open_session(
            WeatherBot(), endpoints=[Endpoint(dial=served.dial)], plugins=plugins
        ) as session,
    ):
        await session.run("hello")
        await session.run("What is the weather in Paris?")
    return session


async def approve_after(session: Session, seconds: float) -> None:
    """Answers the session's next approval request with a yes, ``seconds`` after it came."""
    async for event in session:
        if isinstance(event, ApprovalRequested):
            await trio.sleep(seconds)
            session.approve(event.request)
            return
