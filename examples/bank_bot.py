"""The bank bot: approvals with a deadline, decided by the application. Offline.

What it shows: a free tool (``get_balance``) next to one that needs approval
(``transfer``, through a predicate over its arguments: small amounts go
through, larger ones ask); the application watching ``ApprovalRequested``
events and answering with ``session.approve`` or ``session.reject`` (with a
reason the model is told); and a request nobody answers, which the agent's
``approval_timeout`` (1 s here, so the example is quick) turns into a
rejection. The local engine's scripted brain follows ``bank_bot.toml``.
No key, no network, no model.

Run it from the repository root::

    .venv/bin/python examples/bank_bot.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import trio

from framework import Agent, ApprovalRequested, Session, open_session, tool
from framework.testing import run_engine

RULES = Path(__file__).with_name("bank_bot.toml")


def large(args: dict[str, Any]) -> bool:
    """The approval policy of ``transfer``: anything over 50 needs a yes."""
    return int(args["amount"]) > 50


class BankBot(Agent):
    instructions = "You are a bank assistant. Be brief and careful with money."
    output_modalities = ("text",)
    approval_timeout = 1.0  # seconds an approval may wait before it is a rejection

    def __init__(self) -> None:
        super().__init__()
        self.balance = 1000

    @tool
    async def get_balance(self) -> str:
        """The account's current balance."""
        return f"{self.balance} euros"

    @tool(needs_approval=large)
    async def transfer(self, amount: int, to: str) -> str:
        """Sends money to someone.

        Args:
            amount: how many euros.
            to: who receives them.
        """
        self.balance -= amount
        return f"sent {amount} euros to {to}, {self.balance} euros left"


async def decide(session: Session) -> None:
    """The application's side: yes to Alice, no to Mallory, silence for Bob."""
    async for event in session:
        if not isinstance(event, ApprovalRequested):
            continue
        request = event.request
        to = (request.values or {}).get("to")  # the arguments as the tool gets them
        if to == "Alice":
            print(f"approval:  {request.tool}({request.arguments}) -> approved")
            session.approve(request)
        elif to == "Mallory":
            print(f"approval:  {request.tool}({request.arguments}) -> rejected")
            session.reject(request, "the account holder does not know Mallory")
        else:
            left = request.deadline - trio.current_time()
            shown = f"{request.tool}({request.arguments})"
            print(f"approval:  {shown} -> no answer (a rejection in {left:.0f} s)")


async def main() -> None:
    async with (
        run_engine(rules=RULES) as url,
        open_session(BankBot(), url=url) as session,
        trio.open_nursery() as nursery,
    ):
        print(f"local engine: {url} (a deterministic scripted model, rules {RULES.name})")
        nursery.start_soon(decide, session)
        for text in (
            "What is my balance?",
            "Transfer 20 euros to Carol.",
            "Transfer 300 euros to Alice.",
            "Transfer 500 euros to Mallory.",
            "Transfer 200 euros to Bob.",
            "And my balance now?",
        ):
            print(f"user:      {text}")
            result = await session.run(text)
            for call in result.tool_calls:
                print(
                    f"tool:      {call.name}({call.arguments}) -> {call.output!r} [{call.status}]"
                )
            print(f"assistant: {result.text}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
