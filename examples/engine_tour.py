"""A tour of the local engine, offline: a weather conversation on the raw protocol.

What it shows: the engine started in-process on a loopback port with the rules
in ``weather.toml``; a client on :mod:`framework.transport` that configures the
session (a function tool, audio replies), types two user turns, answers the
engine's ``get_weather`` call with a local Python function, and prints the
transcript and the audio it got back. No key, no network, no model.

Run it from the repository root::

    .venv/bin/python examples/engine_tour.py
"""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import trio

from framework.protocol import (
    ConversationItemCreateEvent,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    RealtimeErrorEvent,
    RealtimeFunctionTool,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreateEvent,
    ResponseDoneEvent,
    ResponseOutputItemDoneEvent,
    SessionUpdateEvent,
    UserMessageContent,
)
from framework.testing import run_engine
from framework.transport import RealtimeConnection, open_connection

RULES = Path(__file__).with_name("weather.toml")
FORECASTS = {"paris": "sunny and 21 degrees", "oslo": "snowing at minus 4"}


def get_weather(city: str) -> str:
    """The tool the engine's brain calls: a canned forecast."""
    return FORECASTS.get(city.strip().lower(), "cloudy, as far as I know")


async def _turn(conn: RealtimeConnection, text: str) -> ResponseDoneEvent:
    """Says ``text`` as the user and plays out the response, answering tool calls."""
    print(f"user:      {text}")
    await conn.send(
        ConversationItemCreateEvent(
            item=RealtimeConversationItemUserMessage(
                content=[UserMessageContent(type="input_text", text=text)]
            )
        )
    )
    await conn.send(ResponseCreateEvent())
    started = time.perf_counter()
    audio_bytes = 0
    async for event in conn:
        if isinstance(event, ResponseAudioDeltaEvent):
            audio_bytes += len(base64.b64decode(event.delta))
        elif isinstance(event, ResponseAudioTranscriptDoneEvent):
            seconds = audio_bytes / 2 / 24000
            print(f"assistant: {event.transcript}  [{seconds:.1f} s of audio]")
        elif isinstance(event, ResponseOutputItemDoneEvent) and isinstance(
            event.item, RealtimeConversationItemFunctionCall
        ):
            call = event.item
            output = get_weather(**json.loads(call.arguments))
            print(f"tool:      {call.name}({call.arguments}) -> {output!r}")
            await conn.send(
                ConversationItemCreateEvent(
                    item=RealtimeConversationItemFunctionCallOutput(
                        call_id=str(call.call_id), output=output
                    )
                )
            )
        elif isinstance(event, ResponseDoneEvent):
            calls = [
                i
                for i in event.response.output
                if isinstance(i, RealtimeConversationItemFunctionCall)
            ]
            if calls:
                await conn.send(ResponseCreateEvent())  # the follow-up that reads the output
                continue
            ms = (time.perf_counter() - started) * 1000
            print(f"           ({event.response.status}, {ms:.0f} ms, usage {_usage(event)})")
            return event
        elif isinstance(event, RealtimeErrorEvent):
            raise RuntimeError(f"engine error: {event.error.message}")
    raise RuntimeError("the engine closed the connection mid-turn")


def _usage(event: ResponseDoneEvent) -> str:
    usage = event.response.usage
    return f"{usage.input_tokens} in / {usage.output_tokens} out" if usage else "none"


async def main() -> None:
    async with run_engine(rules=RULES) as url, open_connection(url) as conn:
        print(f"local engine: {url} (a deterministic scripted model, rules {RULES.name})")
        await conn.receive()  # session.created
        await conn.send(
            SessionUpdateEvent(
                session=RealtimeSessionCreateRequest(
                    instructions="You help people with the weather. Be brief.",
                    output_modalities=["audio"],
                    audio=RealtimeAudioConfig(input=RealtimeAudioConfigInput(turn_detection=None)),
                    tools=[
                        RealtimeFunctionTool(
                            type="function",
                            name="get_weather",
                            description="Current weather for a city.",
                            parameters={
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                                "required": ["city"],
                            },
                        )
                    ],
                )
            )
        )
        await conn.receive()  # session.updated
        for text in ("Hello!", "What is the weather in Paris?"):
            await _turn(conn, text)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
