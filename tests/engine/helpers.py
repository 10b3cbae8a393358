"""Test clients for the engine: a raw WebSocket client and an in-memory one.

Both check every server event the engine sends against the official SDK's
models (strict, no unknown keys), so every test is also a conformance test.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import numpy as np
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from framework.audio import pcm16_to_alaw, pcm16_to_ulaw
from framework.engine import Disconnected, Engine, EngineSession
from framework.protocol import to_dict

from ..protocol import oracle

WEATHER_RULES = r"""
fallback = "Sorry, I can only talk about the weather."

[[rule]]
when = "weather in (?P<city>[A-Za-z ]+)"
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
"""

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def user_item(text: str) -> dict[str, Any]:
    """A user message item with one ``input_text`` part."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def speech(ms: int, rate: int = 24000, freq: float = 300.0, amplitude: float = 0.3) -> np.ndarray:
    """A loud tone: what the energy VAD takes for speech."""
    t = np.arange(ms * rate // 1000) / rate
    return (np.sin(2 * math.pi * freq * t) * amplitude * 32767).astype(np.int16)


def silence(ms: int, rate: int = 24000) -> np.ndarray:
    return np.zeros(ms * rate // 1000, dtype=np.int16)


def encode(samples: np.ndarray, fmt: str = "audio/pcm") -> bytes:
    pcm = samples.astype("<i2").tobytes()
    if fmt == "audio/pcmu":
        return pcm16_to_ulaw(pcm)
    if fmt == "audio/pcma":
        return pcm16_to_alaw(pcm)
    return pcm


def appends(
    samples: np.ndarray, chunk_ms: int = 20, rate: int = 24000, fmt: str = "audio/pcm"
) -> list[dict[str, Any]]:
    """``input_audio_buffer.append`` events carrying the samples in chunks."""
    step = chunk_ms * rate // 1000
    return [
        {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(encode(samples[i : i + step], fmt)).decode(),
        }
        for i in range(0, len(samples), step)
    ]


class Client:
    """Sends client events and reads server events, checking each against the SDK."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def _send_text(self, text: str) -> None:
        raise NotImplementedError  # each transport provides it

    async def _receive_text(self) -> str:
        raise NotImplementedError

    async def send(self, event: dict[str, Any] | object) -> None:
        payload = event if isinstance(event, dict) else to_dict(event)
        await self._send_text(json.dumps(payload))

    async def send_raw(self, text: str | bytes) -> None:
        await self._send_text(text)  # type: ignore[arg-type]

    async def recv(self) -> dict[str, Any]:
        event = json.loads(await self._receive_text())
        oracle.check_server_event(event)
        self.received.append(event)
        return event

    async def until(self, kind: str, *, seconds: float = 10) -> list[dict[str, Any]]:
        """Events up to and including the first of type ``kind`` (within ``seconds``)."""
        out = []
        with trio.fail_after(seconds):
            while True:
                event = await self.recv()
                out.append(event)
                if event["type"] == kind:
                    return out

    async def turn(self, text: str, *, seconds: float = 10) -> list[dict[str, Any]]:
        """Adds a user message and asks for a response; its events up to ``response.done``."""
        await self.send({"type": "conversation.item.create", "item": user_item(text)})
        await self.send({"type": "response.create"})
        return await self.until("response.done", seconds=seconds)

    async def error(self, *, seconds: float = 10) -> dict[str, Any]:
        events = await self.until("error", seconds=seconds)
        return events[-1]["error"]

    async def nothing_for(self, seconds: float) -> None:
        """Asserts that no event arrives for a while."""
        with trio.move_on_after(seconds):
            event = await self.recv()
            raise AssertionError(f"unexpected event {event['type']}")


class WsClient(Client):
    def __init__(self, ws: WebSocketConnection) -> None:
        super().__init__()
        self.ws = ws

    async def _send_text(self, text: str) -> None:
        await self.ws.send_message(text)

    async def _receive_text(self) -> str:
        message = await self.ws.get_message()
        assert isinstance(message, str), "the engine only sends text frames"
        return message


@asynccontextmanager
async def connect(
    url: str, *, headers: list[tuple[str, str]] | None = None
) -> AsyncIterator[WsClient]:
    async with open_websocket_url(
        url, extra_headers=headers or [], message_queue_size=1024, max_message_size=64 * 2**20
    ) as ws:
        client = WsClient(ws)
        created = await client.recv()
        assert created["type"] == "session.created"
        yield client
    # When the *server* ends the connection, trio-websocket's client waits for the
    # TCP close and then leaves its socket object open (a ResourceWarning at GC);
    # closing the stream here is idempotent either way.
    await ws._stream.aclose()


types = lambda events: [e["type"] for e in events]  # noqa: E731


async def say(client: Client, text: str) -> None:
    """Adds a user text message and waits until the engine has stored it."""
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )
    await client.until("conversation.item.done")


# --- in memory -------------------------------------------------------------------------


class MemoryConnection:
    """An engine-side connection over memory channels (for MockClock tests)."""

    def __init__(self) -> None:
        self.to_server_send, self.to_server_receive = trio.open_memory_channel[str | bytes](1000)
        self.to_client_send, self.to_client_receive = trio.open_memory_channel[str](10000)
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> str | bytes:
        try:
            return await self.to_server_receive.receive()
        except trio.EndOfChannel:
            raise Disconnected from None

    async def send(self, text: str) -> None:
        await self.to_client_send.send(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        await self.to_client_send.aclose()

    async def abort(self) -> None:
        await self.close(1006, "")


class MemoryClient(Client):
    def __init__(self, conn: MemoryConnection) -> None:
        super().__init__()
        self.conn = conn

    async def _send_text(self, text: str) -> None:
        await self.conn.to_server_send.send(text)

    async def _receive_text(self) -> str:
        return await self.conn.to_client_receive.receive()


@asynccontextmanager
async def memory_session(
    engine: Engine | None = None, **options: Any
) -> AsyncIterator[tuple[MemoryClient, EngineSession]]:
    """An engine session served in memory, with the client side to drive it.

    ``options`` replace the engine's session options (limits, for instance).
    """
    engine = engine or Engine()
    conn = MemoryConnection()
    session = EngineSession(attrs.evolve(engine.options, **options), conn)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        client = MemoryClient(conn)
        created = await client.recv()
        assert created["type"] == "session.created"
        yield client, session
        await conn.to_server_send.aclose()
