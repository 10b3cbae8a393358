"""Outputs as the local engine receives them: at session end, and when too large.

The engine runs in memory (``engine_wire``) on ``MockClock``. After the
``open_session`` block the test speaks the protocol on the same wire to read
what the engine holds: the ``conversation.item.added`` events it sent for the
outputs it took, and the items themselves (``conversation.item.retrieve``).
"""

from __future__ import annotations

import orjson
import trio
from trio.testing import MockClock

from framework import Agent, open_session, tool
from framework.runtime import ToolCallFinished, ToolCallStarted
from framework.testing import MemoryWire, engine_wire

RULES = r"""
fallback = "?"

[[rule]]
when = "two slow ones"
calls = [{ name = "slow", args = {} }, { name = "slow", args = {} }]

[[rule]]
when = "everything"
call = "everything"

[[rule]]
after = "everything"
say = "Got it."
"""

MIB = 1024 * 1024


class Slow(Agent):
    output_modalities = ("text",)

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = 0

    @tool
    async def slow(self) -> str:
        """Takes an hour."""
        try:
            await trio.sleep(3600)
        except trio.Cancelled:
            self.cancelled += 1
            raise
        return "done"


class Hoarder(Agent):
    output_modalities = ("text",)

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    @tool
    async def everything(self) -> str:
        """Returns more than any server takes in one event."""
        self.calls += 1
        return "y" * (17 * MIB)


async def _engine_events(wire: MemoryWire) -> list[dict[str, object]]:
    """The server events the engine sent that nobody read yet."""
    events = []
    with trio.move_on_after(1):
        while True:
            events.append(orjson.loads(await wire.receive_text()))
    return events


def _outputs_added(events: list[dict[str, object]]) -> list[dict[str, str]]:
    return [
        e["item"]  # type: ignore[misc]
        for e in events
        if e["type"] == "conversation.item.added" and e["item"]["type"] == "function_call_output"  # type: ignore[index]
    ]


async def _retrieve(wire: MemoryWire, item_id: str) -> dict[str, object]:
    await wire.send_text(
        orjson.dumps({"type": "conversation.item.retrieve", "item_id": item_id}).decode()
    )
    while True:
        event = orjson.loads(await wire.receive_text())
        if event["type"] == "conversation.item.retrieved":
            return event["item"]  # type: ignore[no-any-return]


async def test_leaving_while_tools_run_delivers_each_output(autojump_clock: MockClock) -> None:
    bot = Slow()
    with trio.fail_after(60):
        async with engine_wire(rules=RULES) as wire:
            async with open_session(bot, connection=wire) as session:
                await session.send_text("two slow ones")
                started = 0
                async for event in session:
                    started += isinstance(event, ToolCallStarted)
                    if started == 2:
                        break
            # The session is over; the engine's conversation holds both outputs.
            added = _outputs_added(await _engine_events(wire))
            stored = [await _retrieve(wire, item["id"]) for item in added]
    assert bot.cancelled == 2
    assert [item["output"] for item in stored] == [
        "The call was cancelled because the session ended."
    ] * 2
    assert len({item["call_id"] for item in stored}) == 2


async def test_an_output_too_large_for_the_engine_is_refused_then_explained(
    autojump_clock: MockClock,
) -> None:
    bot = Hoarder()
    with trio.fail_after(120):
        async with engine_wire(rules=RULES) as wire:
            async with open_session(bot, connection=wire, tool_output_limit=32 * MIB) as session:
                result = await session.run("everything")
                stats = session.statistics()
                outputs = [i.id for i in session.history.items if i.kind == "function_call_output"]
            stored = [await _retrieve(wire, item_id) for item_id in outputs]
    (call,) = result.tool_calls
    assert call.status == "refused"
    assert "too large" in call.output and "message_too_large" not in call.output
    assert bot.calls == 1  # no loop: the model was told, once
    assert stats["outputs_refused"] == 1
    assert stats["creates_sent"] == 2  # the turn, and one follow-up after the explanation
    assert result.text == "Got it."
    # The engine holds one output for the call: the short one.
    assert [item["output"] for item in stored] == [call.output]


async def test_a_long_output_is_cut_to_the_limit_with_a_note(autojump_clock: MockClock) -> None:
    bot = Hoarder()
    with trio.fail_after(120):
        async with engine_wire(rules=RULES) as wire:
            async with open_session(bot, connection=wire) as session:
                result = await session.run("everything")
                (output,) = [i for i in session.history.items if i.kind == "function_call_output"]
            stored = await _retrieve(wire, output.id)
    (call,) = result.tool_calls
    assert isinstance(call, ToolCallFinished)
    assert call.status == "ok"
    assert len(call.output) == 1_000_000
    assert call.output.endswith(
        f"[Cut: the result was {17 * MIB} characters; only the first 1000000 are shown.]"
    )
    assert stored["output"] == call.output
