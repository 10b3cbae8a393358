"""The triage bot: one agent routes the caller to specialists by handoff. Offline.

What it shows: a ``Triage`` agent with ``handoffs = (Billing(), Support())``,
which gives it the tools ``transfer_to_billing`` and ``transfer_to_support``;
a ``HandedOff`` event when the model calls one, after which the specialist's
instructions and tools are in charge (``session.agent``) and its replies
follow; and telephony audio: the triage agent sets G.711 mu-law in and out,
the specialists set no format, and every ``session.updated`` the server sends
(the first one and the one of each handoff) still says ``audio/pcmu``. Two
calls, one for each specialist, against the local engine started in-process
(its scripted brain follows ``triage_bot.toml``). No key, no network, no model.

Run it from the repository root::

    .venv/bin/python examples/triage_bot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from framework import Agent, HandedOff, ServerEventReceived, Session, open_session, tool
from framework.protocol import AudioPCMU, SessionUpdatedEvent
from framework.testing import run_engine

RULES = Path(__file__).with_name("triage_bot.toml")


class Billing(Agent):
    instructions = "You handle refunds and invoices. Be brief."
    handoff_description = "For refunds, invoices and charges."

    @tool
    async def refund_order(self, order: str) -> str:
        """Refunds an order in full.

        Args:
            order: the order number.
        """
        return f"order {order} is refunded, expect the money in three days"


class Support(Agent):
    instructions = "You fix account and login problems. Be brief."
    handoff_description = "For passwords, logins and technical problems."

    @tool
    async def reset_password(self, email: str) -> str:
        """Sends a password reset link.

        Args:
            email: the account's email address.
        """
        return f"a reset link is on its way to {email}"


class Triage(Agent):
    instructions = "You find out what the caller needs and hand them to the right team."
    voice = "alloy"
    input_audio_format = AudioPCMU(type="audio/pcmu")  # a phone line: G.711 both ways
    output_audio_format = AudioPCMU(type="audio/pcmu")
    handoffs = (Billing(), Support())


def formats(event: SessionUpdatedEvent) -> str:
    audio = event.session.audio
    return f"{audio.input.format.type} in, {audio.output.format.type} out"


async def watch(session: Session) -> None:
    """Prints the handoffs, and the audio formats of every configuration."""
    async for event in session:
        if isinstance(event, HandedOff):
            print(f"handoff:   {event.from_agent} -> {event.to_agent}")
        elif isinstance(event, ServerEventReceived) and isinstance(
            event.event, SessionUpdatedEvent
        ):
            print(f"session:   updated, audio {formats(event.event)}")


async def call(url: str, turns: tuple[str, ...]) -> None:
    """One phone call: a fresh session that starts with the triage agent."""
    async with (
        open_session(Triage(), url=url, raw_events=True) as session,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watch, session)
        for text in turns:
            print(f"user:      {text}")
            result = await session.run(text)
            for done in result.tool_calls:
                print(f"tool:      {done.name}({done.arguments}) -> {done.output!r}")
            print(f"assistant: {result.text}")
            print(f"agent:     {session.agent.name}")
        nursery.cancel_scope.cancel()


async def main() -> None:
    async with run_engine(rules=RULES) as url:
        print(f"local engine: {url} (a deterministic scripted model, rules {RULES.name})")
        print("--- call 1")
        await call(url, ("Hello!", "I was charged twice, I want a refund.", "It is order 4711."))
        print("--- call 2")
        await call(url, ("I cannot log in, I forgot my password.", "It is ana@example.com."))


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
