"""The official ``openai`` SDK, unchanged, as the client of the local engine.

The engine runs in the trio test; the SDK runs on asyncio, so each client runs
in a worker thread with its own event loop. Every raw frame the SDK reads is
checked against the strict oracle, and the event the SDK parsed from it must be
the SDK's own class for its type (its unions fall back silently otherwise).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import numpy as np
import pytest
import trio
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemDone,
    ConversationItemTruncatedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    RealtimeErrorEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_server_event import ConversationItemRetrieved

from framework.engine import Engine, Rules, open_engine

from ..protocol import oracle
from .helpers import WEATHER_RULES, WEATHER_TOOL, appends, silence, speech

T = TypeVar("T")

API_KEY = "sk-cantata-test"
MODEL = "gpt-realtime-mini"
GREETING = "Hello! Ask me about the weather."
STORY = "Once upon a time there was a little engine that talked on and on without a network."
MS_PER_CHAR = 60  # the default tone synthesizer
BYTES_PER_MS = 24 * 2  # PCM16 mono at 24 kHz


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), api_key=API_KEY)
    async with open_engine(engine) as running:
        # The SDK appends "/realtime" to the path of its websocket_base_url and adds
        # ?model=..., so "ws://host:port/v1" reaches the engine's endpoint.
        yield running.url.removesuffix("/realtime")


@pytest.fixture
async def slow_base_url() -> AsyncIterator[str]:
    # 10 ms before every event keeps a reply streaming for about a second.
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), api_key=API_KEY, latency_ms=10)
    async with open_engine(engine) as running:
        yield running.url.removesuffix("/realtime")


async def in_asyncio(client: Callable[[], Awaitable[T]], *, seconds: float = 8) -> T:
    """Runs an SDK client on a fresh asyncio loop in a worker thread.

    Args:
        client: the coroutine function to run.
        seconds: the asyncio side's own bound, below each test's trio bound.
    """

    async def bounded() -> T:
        async with asyncio.timeout(seconds):
            return await client()

    # Abandoned on cancel, so the test's fail_after holds even if asyncio hangs.
    return await trio.to_thread.run_sync(lambda: asyncio.run(bounded()), abandon_on_cancel=True)


class CheckedConnection:
    """An SDK connection whose received events are all checked against the oracle.

    Attributes:
        conn: the SDK connection, used for sending.
        events: the SDK's parsed events, in order.
        frames: the raw JSON of each event, as sent on the wire.
    """

    def __init__(self, conn: AsyncRealtimeConnection) -> None:
        self.conn = conn
        self.events: list[Any] = []
        self.frames: list[dict[str, Any]] = []
        self._unparsed: list[dict[str, Any]] = []
        read = conn.recv_bytes

        async def recv_bytes() -> bytes:
            data = await read()
            self._unparsed.append(json.loads(data))
            return data

        # The SDK's recv() reads through this attribute, so the raw frame is kept
        # beside the event it parses, with no change to the SDK's own parsing.
        conn.recv_bytes = recv_bytes  # type: ignore[method-assign]

    async def recv(self) -> Any:
        """The next event, once its frame passed the oracle and the SDK typed it."""
        event = await self.conn.recv()
        (frame,) = self._unparsed
        self._unparsed.clear()
        oracle.check_server_event(frame)
        kind = frame["type"]
        assert type(event) is oracle.SERVER_TYPES[kind], (kind, type(event))
        assert event.type == kind
        assert event.to_dict(mode="json") == frame  # the SDK parsed it losslessly
        self.events.append(event)
        self.frames.append(frame)
        return event

    def frame_of(self, event: Any) -> dict[str, Any]:
        """The raw frame an event was parsed from."""
        return next(f for e, f in zip(self.events, self.frames, strict=True) if e is event)

    async def until(self, kind: str, *, seconds: float = 5) -> list[Any]:
        """Events up to and including the first of type ``kind``."""
        out = []
        async with asyncio.timeout(seconds):
            while True:
                event = await self.recv()
                out.append(event)
                if event.type == kind:
                    return out

    async def say(self, text: str) -> None:
        """Adds a user text message and waits until the engine has it."""
        await self.conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            }
        )
        done = (await self.until("conversation.item.done"))[-1]
        assert isinstance(done.item, RealtimeConversationItemUserMessage)
        assert done.item.content[0].text == text

    async def text_session(self) -> None:
        """Switches to text output with the weather tool."""
        await self.conn.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "tools": [WEATHER_TOOL]}
        )
        updated = (await self.until("session.updated"))[-1]
        assert isinstance(updated, SessionUpdatedEvent)
        assert updated.session.output_modalities == ["text"]
        assert [t.name for t in updated.session.tools] == ["get_weather"]


@asynccontextmanager
async def sdk_connect(base_url: str) -> AsyncIterator[CheckedConnection]:
    """An SDK connection to the engine, past its session.created."""
    async with (
        AsyncOpenAI(api_key=API_KEY, websocket_base_url=base_url, max_retries=0) as client,
        client.realtime.connect(model=MODEL) as conn,
    ):
        checked = CheckedConnection(conn)
        async with asyncio.timeout(5):
            created = await checked.recv()
        assert isinstance(created, SessionCreatedEvent)
        # The model came through the query string the SDK built.
        assert created.session.model == MODEL
        yield checked


def kinds(events: list[Any]) -> list[str]:
    """The types of a list of events."""
    return [e.type for e in events]


def one(events: list[Any], kind: str) -> Any:
    """The only event of type ``kind`` in a list."""
    (event,) = [e for e in events if e.type == kind]
    return event


async def test_text_turn(base_url: str) -> None:
    """A text reply: the exact event order, one response and item throughout."""

    async def client() -> None:
        async with sdk_connect(base_url) as sdk:
            await sdk.text_session()
            await sdk.say("hello there")
            user_id = sdk.events[-1].item.id
            await sdk.conn.response.create()
            events = await sdk.until("response.done")
            assert kinds(events) == [
                "response.created",
                "rate_limits.updated",
                "response.output_item.added",
                "conversation.item.added",
                "response.content_part.added",
                *["response.output_text.delta"] * len(GREETING.split(" ")),
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            created, done = events[0], events[-1]
            assert isinstance(created, ResponseCreatedEvent)
            assert created.response.status == "in_progress" and created.response.output == []
            response_id = created.response.id
            item_id = events[2].item.id
            for event in events[2:-1]:
                assert getattr(event, "response_id", response_id) == response_id
                assert getattr(event, "item_id", item_id) == item_id
            assert events[3].previous_item_id == user_id
            deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
            assert "".join(deltas) == GREETING
            assert one(events, "response.output_text.done").text == GREETING
            assert isinstance(done, ResponseDoneEvent)
            assert done.response.id == response_id and done.response.status == "completed"
            (item,) = done.response.output
            assert isinstance(item, RealtimeConversationItemAssistantMessage)
            assert item.id == item_id and item.status == "completed"
            assert [(c.type, c.text) for c in item.content] == [("output_text", GREETING)]

    with trio.fail_after(10):
        await in_asyncio(client)


async def test_audio_output_turn(base_url: str) -> None:
    """An audio reply: 100 ms PCM deltas, a transcript that matches, response.done."""

    async def client() -> None:
        async with sdk_connect(base_url) as sdk:
            await sdk.say("hi")
            await sdk.conn.response.create()
            events = await sdk.until("response.done")
            names = kinds(events)
            assert names[:5] == [
                "response.created",
                "rate_limits.updated",
                "response.output_item.added",
                "conversation.item.added",
                "response.content_part.added",
            ]
            assert names[-6:] == [
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            assert set(names[5:-6]) == {
                "response.output_audio.delta",
                "response.output_audio_transcript.delta",
            }
            chunks = [
                base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
            ]
            duration_ms = len(GREETING) * MS_PER_CHAR
            assert sum(map(len, chunks)) == duration_ms * BYTES_PER_MS
            assert all(len(c) == 100 * BYTES_PER_MS for c in chunks[:-1])  # 100 ms deltas
            transcript = "".join(
                e.delta for e in events if e.type == "response.output_audio_transcript.delta"
            )
            assert transcript == GREETING
            assert one(events, "response.output_audio_transcript.done").transcript == GREETING
            assert one(events, "response.content_part.added").part.type == "audio"
            done = events[-1]
            assert isinstance(done, ResponseDoneEvent)
            assert done.response.status == "completed"
            assert done.response.output_modalities == ["audio"]
            (item,) = done.response.output
            assert isinstance(item, RealtimeConversationItemAssistantMessage)
            assert [(c.type, c.transcript) for c in item.content] == [("output_audio", GREETING)]
            # response.done carries the transcript, never the audio bytes.
            assert "audio" not in sdk.frame_of(done)["response"]["output"][0]["content"][0]

    with trio.fail_after(10):
        await in_asyncio(client)


async def test_audio_input_with_server_vad(base_url: str) -> None:
    """Streamed speech is detected, committed and answered, at exact offsets."""

    padding_ms, silence_ms = 250, 350
    lead_ms, talk_ms, tail_ms = 730, 470, 600
    # Speech starts at lead_ms; the committed audio reaches back by the padding.
    start_ms = lead_ms - padding_ms
    # Speech ends at lead_ms + talk_ms; the turn ends once the silence has lasted.
    end_ms = lead_ms + talk_ms + silence_ms
    audio = np.concatenate([silence(lead_ms), speech(talk_ms), silence(tail_ms)])

    async def client() -> None:
        async with sdk_connect(base_url) as sdk:
            await sdk.conn.session.update(
                session={
                    "type": "realtime",
                    "audio": {
                        "input": {
                            "turn_detection": {
                                "type": "server_vad",
                                "prefix_padding_ms": padding_ms,
                                "silence_duration_ms": silence_ms,
                            }
                        }
                    },
                }
            )
            updated = (await sdk.until("session.updated"))[-1]
            vad = updated.session.audio.input.turn_detection
            assert (vad.type, vad.prefix_padding_ms, vad.silence_duration_ms) == (
                "server_vad",
                padding_ms,
                silence_ms,
            )
            for append in appends(audio):
                await sdk.conn.input_audio_buffer.append(audio=append["audio"])
            events = await sdk.until("response.done")
            assert kinds(events)[:7] == [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
                "response.created",
                "rate_limits.updated",
            ]
            started, stopped, committed, added = events[:4]
            assert isinstance(started, InputAudioBufferSpeechStartedEvent)
            assert isinstance(stopped, InputAudioBufferSpeechStoppedEvent)
            assert isinstance(committed, InputAudioBufferCommittedEvent)
            assert isinstance(added, ConversationItemAdded)
            assert started.audio_start_ms == start_ms
            assert stopped.audio_end_ms == end_ms
            item_id = started.item_id
            assert stopped.item_id == committed.item_id == added.item.id == item_id
            assert committed.previous_item_id is None
            assert isinstance(added.item, RealtimeConversationItemUserMessage)
            assert added.item.content[0].type == "input_audio"
            assert "audio" not in sdk.frame_of(added)["item"]["content"][0]  # left out of events
            # Nobody asked: the response is the engine's own, over the committed turn.
            done = events[-1]
            assert isinstance(done, ResponseDoneEvent)
            assert done.response.status == "completed"
            assert "can't make out audio" in done.response.output[0].content[0].transcript

            await sdk.conn.conversation.item.retrieve(item_id=item_id)
            retrieved = (await sdk.until("conversation.item.retrieved"))[-1]
            assert isinstance(retrieved, ConversationItemRetrieved)
            committed_audio = base64.b64decode(retrieved.item.content[0].audio)
            assert committed_audio == audio[start_ms * 24 : end_ms * 24].astype("<i2").tobytes()

    with trio.fail_after(15):
        await in_asyncio(client, seconds=12)


async def test_function_call_and_follow_up(base_url: str) -> None:
    """The engine calls get_weather; the client's output feeds the next reply."""

    async def client() -> None:
        async with sdk_connect(base_url) as sdk:
            await sdk.text_session()
            await sdk.say("what's the weather in Paris")
            await sdk.conn.response.create()
            events = await sdk.until("response.done")
            names = kinds(events)
            assert names[:4] == [
                "response.created",
                "rate_limits.updated",
                "response.output_item.added",
                "conversation.item.added",
            ]
            assert set(names[4:-4]) == {"response.function_call_arguments.delta"}
            assert names[-4:] == [
                "response.function_call_arguments.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            args_done = events[-4]
            assert isinstance(args_done, ResponseFunctionCallArgumentsDoneEvent)
            assert args_done.name == "get_weather"
            assert json.loads(args_done.arguments) == {"city": "Paris"}
            deltas = [e.delta for e in events[4:-4]]
            assert "".join(deltas) == args_done.arguments
            assert {e.call_id for e in events[4:-4]} == {args_done.call_id}
            done = events[-1]
            assert isinstance(done, ResponseDoneEvent) and done.response.status == "completed"
            (call,) = done.response.output
            assert isinstance(call, RealtimeConversationItemFunctionCall)
            assert call.status == "completed" and call.call_id == args_done.call_id
            assert call.arguments == args_done.arguments

            await sdk.conn.conversation.item.create(
                item={
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": "sunny, 21 C",
                }
            )
            item_done = (await sdk.until("conversation.item.done"))[-1]
            assert isinstance(item_done, ConversationItemDone)
            assert isinstance(item_done.item, RealtimeConversationItemFunctionCallOutput)
            assert item_done.item.call_id == call.call_id
            assert item_done.previous_item_id == call.id
            await sdk.conn.response.create()
            follow = (await sdk.until("response.done"))[-1]
            assert isinstance(follow, ResponseDoneEvent)
            assert follow.response.status == "completed"
            (answer,) = follow.response.output
            assert isinstance(answer, RealtimeConversationItemAssistantMessage)
            assert answer.content[0].text == "In Paris it is sunny, 21 C."

    with trio.fail_after(10):
        await in_asyncio(client)


async def test_truncate_assistant_audio(base_url: str) -> None:
    """Truncating past the audio fails; within it, cuts the audio and the text."""

    async def client() -> None:
        async with sdk_connect(base_url) as sdk:
            await sdk.say("hi")
            await sdk.conn.response.create()
            events = await sdk.until("response.done")
            heard = b"".join(
                base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
            )
            item_id = events[-1].response.output[0].id
            duration_ms = len(GREETING) * MS_PER_CHAR
            assert len(heard) == duration_ms * BYTES_PER_MS

            await sdk.conn.conversation.item.truncate(
                item_id=item_id, content_index=0, audio_end_ms=duration_ms + 1, event_id="t1"
            )
            error = (await sdk.until("error"))[-1]
            assert isinstance(error, RealtimeErrorEvent)
            assert error.error.type == "invalid_request_error"
            assert error.error.code == "invalid_value"
            assert error.error.param == "audio_end_ms"
            assert error.error.event_id == "t1"
            assert f"{duration_ms}ms" in error.error.message

            await sdk.conn.conversation.item.truncate(
                item_id=item_id, content_index=0, audio_end_ms=1234
            )
            truncated = (await sdk.until("conversation.item.truncated"))[-1]
            assert isinstance(truncated, ConversationItemTruncatedEvent)
            assert (truncated.item_id, truncated.content_index, truncated.audio_end_ms) == (
                item_id,
                0,
                1234,
            )
            await sdk.conn.conversation.item.retrieve(item_id=item_id)
            item = (await sdk.until("conversation.item.retrieved"))[-1].item
            assert isinstance(item, RealtimeConversationItemAssistantMessage)
            # The audio is cut where playback stopped; the unheard text is gone.
            assert base64.b64decode(item.content[0].audio) == heard[: 1234 * BYTES_PER_MS]
            assert item.content[0].transcript == ""

    with trio.fail_after(10):
        await in_asyncio(client)


@pytest.mark.parametrize(
    "after",
    ["response.output_audio.delta", "response.output_audio_transcript.delta"],
    ids=["after_audio_delta", "after_transcript_delta"],
)
async def test_cancel_mid_response(slow_base_url: str, after: str) -> None:
    """A cancel mid-stream closes the open item and ends the response cancelled.

    The cancel lands while the engine waits to send the next delta: a transcript
    delta in one case, an audio delta in the other.
    """

    async def client() -> None:
        async with sdk_connect(slow_base_url) as sdk:
            await sdk.say("tell me a story")
            await sdk.conn.response.create()
            first = await sdk.until(after)
            response_id = first[0].response.id
            await sdk.conn.response.cancel()
            events = first + await sdk.until("response.done")
            names = kinds(events)
            closing = [
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            # The open part and item are closed, in order, and nothing streams after.
            assert names[-6:] == closing
            assert set(names[5:-6]) <= {
                "response.output_audio.delta",
                "response.output_audio_transcript.delta",
            }
            done = events[-1]
            assert isinstance(done, ResponseDoneEvent)
            assert done.response.id == response_id
            assert done.response.status == "cancelled"
            assert done.response.status_details is not None
            assert done.response.status_details.type == "cancelled"
            assert done.response.status_details.reason == "client_cancelled"
            (item,) = done.response.output
            assert isinstance(item, RealtimeConversationItemAssistantMessage)
            assert item.status == "incomplete"
            transcript = item.content[0].transcript
            assert STORY.startswith(transcript) and len(transcript) < len(STORY)
            said = "".join(
                e.delta for e in events if e.type == "response.output_audio_transcript.delta"
            )
            heard = b"".join(
                base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
            )
            assert 0 < len(heard) < len(STORY) * MS_PER_CHAR * BYTES_PER_MS
            await sdk.conn.conversation.item.retrieve(item_id=item.id)
            kept = (await sdk.until("conversation.item.retrieved"))[-1].item
            assert isinstance(kept, RealtimeConversationItemAssistantMessage)
            # The done events and the stored item hold exactly what was streamed: a
            # delta the cancel stopped was never sent, so it must not count.
            assert one(events, "response.output_audio_transcript.done").transcript == said
            assert transcript == said
            kept_audio = base64.b64decode(kept.content[0].audio)
            assert len(kept_audio) == len(heard)
            assert kept_audio == heard

    with trio.fail_after(10):
        await in_asyncio(client)
