"""framework.testing's ScriptedServer, as its documentation shows it."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from framework import Agent, open_session, tool
from framework.protocol import (
    ConversationItemCreateEvent,
    RealtimeConversationItemUserMessage,
    ResponseCreateEvent,
)
from framework.testing import ScriptedServer


class WeatherBot(Agent):
    @tool
    async def get_weather(self, city: str) -> str:
        """The weather in a city."""
        return "sunny"


async def test_the_documented_example(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    with trio.fail_after(10):
        async with open_session(WeatherBot(), connection=server) as session:
            await session.send_text("What is the weather in Paris?")
            await server.expect(ResponseCreateEvent)
            await server.send(*server.function_call("get_weather", {"city": "Paris"}))
            output = await server.expect(ConversationItemCreateEvent)
    question = server.of_type(ConversationItemCreateEvent)[0]
    assert isinstance(question.item, RealtimeConversationItemUserMessage)
    assert question.item.content[0].text == "What is the weather in Paris?"
    assert output.item.output == "sunny"  # type: ignore[union-attr]
    assert [e.type for e in server.received][:2] == ["session.update", "conversation.item.create"]


async def test_a_closed_client_is_recorded(autojump_clock: MockClock) -> None:
    server = ScriptedServer()
    await server.aclose(1000, "bye")
    assert server.closed == (1000, "bye")
