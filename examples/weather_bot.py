"""The weather bot: an agent with a function tool and an approval, offline.

What it shows: an ``Agent`` subclass with ``@tool`` methods, one of which needs
approval; ``open_session`` against the local engine started in-process (its
scripted brain follows ``weather.toml``); ``session.run`` turns that include
a tool call and its follow-up; an approval decided by the application; the
spoken replies played into a sink that reports what was heard; and the
session's history and usage at the end. No key, no network, no model.

Run it from the repository root::

    .venv/bin/python examples/weather_bot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from framework import Agent, ApprovalRequested, ClockSink, open_session, tool
from framework.testing import run_engine

RULES = Path(__file__).with_name("weather.toml")
FORECASTS = {"paris": "sunny and 21 degrees", "oslo": "snowing at minus 4"}


class WeatherBot(Agent):
    instructions = "You help people with the weather. Be brief."
    voice = "alloy"

    @tool
    async def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: the city, as the user named it.
        """
        return FORECASTS.get(city.strip().lower(), "cloudy, as far as I know")

    @tool(needs_approval=True, timeout=10)
    async def book_umbrella_delivery(self, address: str) -> str:
        """Sends an umbrella to the user.

        Args:
            address: where to deliver it.
        """
        return f"an umbrella is on its way to {address}"


async def approve_everything(session: object) -> None:
    """The application's side of approvals: here, a yes to each request."""
    async for event in session:  # type: ignore[attr-defined]
        if isinstance(event, ApprovalRequested):
            request = event.request
            print(f"approval:  {request.tool}({request.arguments}) -> approved")
            session.approve(request)  # type: ignore[attr-defined]


async def main() -> None:
    sink = ClockSink()
    async with (
        run_engine(rules=RULES) as url,
        open_session(WeatherBot(), url=url, audio_out=sink) as session,
    ):
        print(f"local engine: {url} (a deterministic scripted model, rules {RULES.name})")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(approve_everything, session)
            for text in (
                "Hello!",
                "What is the weather in Paris?",
                "Please book an umbrella delivery to 5 Rue Cler.",
            ):
                print(f"user:      {text}")
                result = await session.run(text)
                for call in result.tool_calls:
                    shown = f"{call.name}({call.arguments}) -> {call.output!r}"
                    print(f"tool:      {shown} [{call.status}]")
                spoken = sum(m.audio_ms for m in result.messages) / 1000
                print(f"assistant: {result.text}  [{spoken:.1f} s of audio]")
            nursery.cancel_scope.cancel()
        usage = session.usage
        print(
            f"session:   {len(session.history)} items, {usage.responses} responses, "
            f"{usage.input_tokens} tokens in, {usage.output_tokens} out"
        )


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
