"""Event order of every flow, over a real WebSocket on loopback (§7 of the reference)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import pytest
import trio

from framework.engine import Engine, Rules, open_engine

from .helpers import (
    WEATHER_RULES,
    WEATHER_TOOL,
    Client,
    appends,
    connect,
    say,
    silence,
    speech,
    types,
)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with open_engine(Engine(rules=Rules.from_toml(WEATHER_RULES))) as running:
        yield running.url


@pytest.fixture
async def slow_url() -> AsyncIterator[str]:
    # 10 ms before every event: a reply streams for about a second, so a cancel
    # or a barge-in surely lands in the middle of it.
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES), latency_ms=10)
    async with open_engine(engine) as running:
        yield running.url


async def _text_session(client: Client, *, tools: bool = True) -> None:
    session: dict[str, object] = {"type": "realtime", "output_modalities": ["text"]}
    if tools:
        session["tools"] = [WEATHER_TOOL]
    await client.send({"type": "session.update", "session": session})
    await client.until("session.updated")


async def test_session_start_and_update(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            created = client.received[0]["session"]
            assert created["type"] == "realtime"
            assert created["audio"]["input"]["turn_detection"]["type"] == "server_vad"
            assert created["id"].startswith("sess_")
            await client.send(
                {
                    "type": "session.update",
                    "event_id": "client-evt-7",
                    "session": {
                        "type": "realtime",
                        "instructions": "Be brief.",
                        "audio": {"input": {"turn_detection": None}},
                    },
                }
            )
            updated = (await client.until("session.updated"))[-1]
            # The full effective config comes back, and the client's event_id does not.
            assert updated["session"]["instructions"] == "Be brief."
            assert updated["session"]["audio"]["input"]["turn_detection"] is None
            assert updated["session"]["audio"]["output"]["voice"] == "alloy"
            assert "client-evt-7" not in json.dumps(updated)


async def test_text_turn_event_order(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await _text_session(client)
            await say(client, "hello there")
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            assert types(events) == [
                "response.created",
                "rate_limits.updated",
                "response.output_item.added",
                "conversation.item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            deltas = "".join(
                e["delta"] for e in events if e["type"] == "response.output_text.delta"
            )
            assert deltas == "Hello! Ask me about the weather."
            done = events[-1]["response"]
            assert done["status"] == "completed"
            assert done["output"][0]["content"] == [
                {"type": "output_text", "text": "Hello! Ask me about the weather."}
            ]
            assert (
                done["usage"]["output_tokens"]
                == done["usage"]["output_token_details"]["text_tokens"]
            )
            assert events[0]["response"]["status"] == "in_progress"
            assert events[0]["response"]["output"] == []


async def test_audio_output_event_order_and_transcript(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await say(client, "hi")
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            kinds = types(events)
            assert kinds[:5] == [
                "response.created",
                "rate_limits.updated",
                "response.output_item.added",
                "conversation.item.added",
                "response.content_part.added",
            ]
            assert kinds[-6:] == [
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            audio = b"".join(
                base64.b64decode(e["delta"])
                for e in events
                if e["type"] == "response.output_audio.delta"
            )
            transcript = "".join(
                e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
            )
            assert transcript == "Hello! Ask me about the weather."
            # The tone synthesizer: 60 ms per character of PCM16 at 24 kHz.
            assert len(audio) == len(transcript) * 60 * 24 * 2
            done = events[-1]["response"]
            # response.done carries the transcript but never the audio bytes.
            assert done["output"][0]["content"] == [
                {"type": "output_audio", "transcript": transcript}
            ]
            assert done["usage"]["output_token_details"]["audio_tokens"] == -(
                -len(transcript) * 60 // 50
            )


async def test_function_call_flow_and_follow_up(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await _text_session(client)
            await say(client, "what's the weather in Paris")
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            kinds = types(events)
            assert kinds[:4] == [
                "response.created",
                "rate_limits.updated",
                "response.output_item.added",
                "conversation.item.added",
            ]
            assert "response.content_part.added" not in kinds
            assert kinds[-4:] == [
                "response.function_call_arguments.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            args_done = events[kinds.index("response.function_call_arguments.done")]
            assert args_done["name"] == "get_weather"
            assert json.loads(args_done["arguments"]) == {"city": "Paris"}
            deltas = "".join(
                e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
            )
            assert deltas == args_done["arguments"]
            call = events[-1]["response"]["output"][0]
            assert call["type"] == "function_call" and call["status"] == "completed"

            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call_output",
                        "call_id": call["call_id"],
                        "output": "sunny, 21 C",
                    },
                }
            )
            await client.until("conversation.item.done")
            await client.send({"type": "response.create"})
            follow = await client.until("response.done")
            text = follow[-1]["response"]["output"][0]["content"][0]["text"]
            assert text == "In Paris it is sunny, 21 C."


async def test_parallel_calls_in_one_response(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await _text_session(client)
            await say(client, "compare two cities")
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            output = events[-1]["response"]["output"]
            assert [json.loads(o["arguments"]) for o in output] == [
                {"city": "Oslo"},
                {"city": "Rome"},
            ]
            assert [
                e["output_index"] for e in events if e["type"] == "response.output_item.added"
            ] == [0, 1]
            for call, answer in zip(output, ["cold", "warm"], strict=True):
                await client.send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call["call_id"],
                            "output": answer,
                        },
                    }
                )
                await client.until("conversation.item.done")
            await client.send({"type": "response.create"})
            follow = await client.until("response.done")
            assert follow[-1]["response"]["output"][0]["content"][0]["text"] == (
                "In Oslo it is cold. In Rome it is warm."
            )


async def test_audio_turn_with_server_vad(url: str) -> None:
    with trio.fail_after(20):
        async with connect(url) as client:
            audio = [*silence(1000), *speech(600), *silence(1000)]
            import numpy as np

            for event in appends(np.array(audio, dtype=np.int16)):
                await client.send(event)
            events = await client.until("response.done")
            kinds = types(events)
            assert kinds[:5] == [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
            ]
            started, stopped, committed = events[0], events[1], events[2]
            # Speech starts at 1000 ms; the prefix padding (300 ms) reaches back to 700.
            assert started["audio_start_ms"] == 700
            # Speech ends at 1600 ms; the silence (500 ms) ends the turn at 2100.
            assert stopped["audio_end_ms"] == 2100
            assert started["item_id"] == stopped["item_id"] == committed["item_id"]
            user = events[3]["item"]
            assert user["role"] == "user" and user["content"][0]["type"] == "input_audio"
            assert "audio" not in user["content"][0]  # audio bytes are left out of events
            # No transcriber is installed: the brain says it cannot read audio.
            reply = events[-1]["response"]["output"][0]["content"][0]["transcript"]
            assert "can't make out audio" in reply

            await client.send(
                {"type": "conversation.item.retrieve", "item_id": committed["item_id"]}
            )
            retrieved = (await client.until("conversation.item.retrieved"))[-1]["item"]
            committed_audio = base64.b64decode(retrieved["content"][0]["audio"])
            assert len(committed_audio) == (2100 - 700) * 24 * 2


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
async def test_g711_input_with_vad(url: str, fmt: str) -> None:
    import numpy as np

    with trio.fail_after(20):
        async with connect(url) as client:
            await client.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {"format": {"type": fmt}},
                            "output": {"format": {"type": fmt}},
                        },
                    },
                }
            )
            await client.until("session.updated")
            audio = np.concatenate([silence(500, 8000), speech(400, 8000), silence(800, 8000)])
            for event in appends(audio, rate=8000, fmt=fmt):
                await client.send(event)
            events = await client.until("response.done")
            started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
            stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
            assert started["audio_start_ms"] == 200
            assert stopped["audio_end_ms"] == 1400
            deltas = [
                base64.b64decode(e["delta"])
                for e in events
                if e["type"] == "response.output_audio.delta"
            ]
            transcript = events[-1]["response"]["output"][0]["content"][0]["transcript"]
            # One byte per sample at 8 kHz: the reply is in the session's G.711 format.
            assert sum(map(len, deltas)) == len(transcript) * 60 * 8


async def test_manual_commit_and_clear(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
                }
            )
            await client.until("session.updated")
            for event in appends(speech(300)):
                await client.send(event)
            await client.send({"type": "input_audio_buffer.clear"})
            await client.until("input_audio_buffer.cleared")
            await client.send({"type": "input_audio_buffer.commit", "event_id": "commit-1"})
            error = await client.error()
            assert error["code"] == "input_audio_buffer_commit_empty"
            assert error["event_id"] == "commit-1"
            assert "buffer only has 0.00ms of audio" in error["message"]
            for event in appends(speech(250)):
                await client.send(event)
            await client.send({"type": "input_audio_buffer.commit"})
            events = await client.until("conversation.item.done")
            assert types(events) == [
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
            ]
            await client.nothing_for(0.3)  # a manual commit never starts a response by itself


async def test_commit_under_100ms_is_refused(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
                }
            )
            await client.until("session.updated")
            for event in appends(speech(50)):
                await client.send(event)
            await client.send({"type": "input_audio_buffer.commit"})
            error = await client.error()
            assert error["message"] == (
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
                "audio, but buffer only has 50.00ms of audio."
            )


async def test_cancel_mid_response(slow_url: str) -> None:
    with trio.fail_after(10):
        async with connect(slow_url) as client:
            await say(client, "tell me a story")
            await client.send({"type": "response.create"})
            first = await client.until("response.output_audio.delta")
            await client.send({"type": "response.cancel", "event_id": "stop"})
            events = first + await client.until("response.done")
            kinds = types(events)
            # The open part and item are closed before response.done.
            for closing in (
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
                "response.output_item.done",
                "conversation.item.done",
            ):
                assert closing in kinds
            done = events[-1]["response"]
            assert done["status"] == "cancelled"
            assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
            assert done["output"][0]["status"] == "incomplete"
            heard = done["output"][0]["content"][0]["transcript"]
            story = (
                "Once upon a time there was a little engine that talked on and on "
                "without a network."
            )
            assert story.startswith(heard) and len(heard) < len(story)
            await client.send({"type": "response.cancel", "event_id": "again"})
            error = await client.error()
            assert error["code"] == "response_cancel_not_active"
            assert error["event_id"] == "again"


async def test_barge_in_cancels_with_turn_detected(slow_url: str) -> None:
    with trio.fail_after(20):
        async with connect(slow_url) as client:
            await say(client, "tell me a story")
            await client.send({"type": "response.create"})
            await client.until("response.output_audio.delta")
            for event in appends(speech(200)):
                await client.send(event)
            events = await client.until("response.done")
            assert "input_audio_buffer.speech_started" in types(events)
            assert events[-1]["response"]["status_details"] == {
                "type": "cancelled",
                "reason": "turn_detected",
            }


async def test_truncate(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await say(client, "hi")
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            item_id = events[-1]["response"]["output"][0]["id"]
            duration = len("Hello! Ask me about the weather.") * 60
            await client.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": duration + 1,
                    "event_id": "t1",
                }
            )
            error = await client.error()
            assert error["param"] == "audio_end_ms" and error["event_id"] == "t1"
            await client.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": 1234,
                }
            )
            truncated = (await client.until("conversation.item.truncated"))[-1]
            assert truncated == {
                **truncated,
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 1234,
            }
            await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
            item = (await client.until("conversation.item.retrieved"))[-1]["item"]
            assert len(base64.b64decode(item["content"][0]["audio"])) == 1234 * 24 * 2
            assert item["content"][0]["transcript"] == ""  # unheard text leaves the context
            await client.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": "item_nope",
                    "content_index": 0,
                    "audio_end_ms": 0,
                }
            )
            assert (await client.error())["code"] == "item_not_found"
            user_id = next(
                e["item"]["id"]
                for e in client.received
                if e["type"] == "conversation.item.added" and e["item"].get("role") == "user"
            )
            await client.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": user_id,
                    "content_index": 0,
                    "audio_end_ms": 0,
                }
            )
            assert "Only assistant messages" in (await client.error())["message"]


async def test_items_create_insert_delete_retrieve(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "id": "a",
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "one"}],
                    },
                }
            )
            first = await client.until("conversation.item.done")
            assert types(first) == ["conversation.item.added", "conversation.item.done"]
            assert first[0]["previous_item_id"] is None
            assert first[0]["item"]["status"] == "completed"
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "id": "c",
                        "type": "message",
                        "role": "system",
                        "content": [{"type": "input_text", "text": "three"}],
                    },
                }
            )
            assert (await client.until("conversation.item.added"))[-1]["previous_item_id"] == "a"
            await client.send(
                {
                    "type": "conversation.item.create",
                    "previous_item_id": "a",
                    "item": {
                        "id": "b",
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "two"}],
                    },
                }
            )
            assert (await client.until("conversation.item.added"))[-1]["previous_item_id"] == "a"
            await client.send(
                {
                    "type": "conversation.item.create",
                    "previous_item_id": "root",
                    "item": {
                        "id": "z",
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "zero"}],
                    },
                }
            )
            assert (await client.until("conversation.item.added"))[-1]["previous_item_id"] is None
            await client.send(
                {
                    "type": "conversation.item.create",
                    "previous_item_id": "nope",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "x"}],
                    },
                }
            )
            assert (await client.error())["param"] == "previous_item_id"
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "id": "a",
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "dup"}],
                    },
                }
            )
            assert (await client.error())["param"] == "item.id"
            await client.send({"type": "conversation.item.delete", "item_id": "b"})
            assert (await client.until("conversation.item.deleted"))[-1]["item_id"] == "b"
            await client.send(
                {"type": "conversation.item.delete", "item_id": "b", "event_id": "d2"}
            )
            error = await client.error()
            assert error["code"] == "item_not_found" and error["event_id"] == "d2"
            await client.send({"type": "conversation.item.retrieve", "item_id": "c"})
            item = (await client.until("conversation.item.retrieved"))[-1]["item"]
            assert item["content"] == [{"type": "input_text", "text": "three"}]


async def test_one_active_response_per_conversation(slow_url: str) -> None:
    # The second response.create must land while the first reply still streams:
    # without the latency knob a whole reply leaves in one write, before it can.
    with trio.fail_after(10):
        async with connect(slow_url) as client:
            await say(client, "tell me a story")
            await client.send({"type": "response.create"})
            created = (await client.until("response.created"))[-1]
            await client.send({"type": "response.create", "event_id": "second"})
            error = await client.error()
            assert error["code"] == "conversation_already_has_active_response"
            assert created["response"]["id"] in error["message"]
            assert error["event_id"] == "second"
            # An out-of-band response may run alongside.
            await client.send(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "metadata": {"job": "side"},
                        "output_modalities": ["text"],
                        "input": [
                            {
                                "type": "message",
                                "role": "user",
                                "content": [{"type": "input_text", "text": "hello"}],
                            }
                        ],
                    },
                }
            )
            done = []
            while len(done) < 2:
                event = await client.recv()
                if event["type"] == "response.done":
                    done.append(event["response"])
            side = next(r for r in done if r.get("metadata") == {"job": "side"})
            assert side["conversation_id"] is None
            assert side["output"][0]["content"][0]["text"] == "Hello! Ask me about the weather."


async def test_out_of_band_response_with_references(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await _text_session(client)
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "id": "u1",
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "hi"}],
                    },
                }
            )
            await client.until("conversation.item.done")
            await client.send(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "metadata": {"k": "v"},
                        "input": [{"type": "item_reference", "id": "u1"}],
                    },
                }
            )
            events = await client.until("response.done")
            assert "conversation.item.added" not in types(events)  # nothing joins the conversation
            assert events[-1]["response"]["metadata"] == {"k": "v"}
            await client.send(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "input": [{"type": "item_reference", "id": "missing"}],
                    },
                }
            )
            assert (await client.error())["param"] == "response.input[0].id"


async def test_max_output_tokens_makes_an_incomplete_response(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await _text_session(client)
            await say(client, "tell me a story")
            await client.send({"type": "response.create", "response": {"max_output_tokens": 5}})
            done = (await client.until("response.done"))[-1]["response"]
            assert done["status"] == "incomplete"
            assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
            assert done["usage"]["output_tokens"] <= 5
            assert done["output"][0]["content"][0]["text"] == "Once upon a time there"


async def test_usage_is_deterministic(url: str) -> None:
    async def one_run() -> dict[str, object]:
        async with connect(url) as client:
            await say(client, "hi")
            await client.send({"type": "response.create"})
            return (await client.until("response.done"))[-1]["response"]["usage"]  # type: ignore[no-any-return]

    with trio.fail_after(10):
        assert await one_run() == await one_run()


async def test_function_outputs_are_seen_by_the_next_response(url: str) -> None:
    with trio.fail_after(10):
        async with connect(url) as client:
            await _text_session(client)
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call",
                        "name": "get_weather",
                        "call_id": "c9",
                        "arguments": '{"city": "Lima"}',
                    },
                }
            )
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": "c9", "output": "mild"},
                }
            )
            await client.until("conversation.item.done")
            await client.until("conversation.item.done")
            await client.send({"type": "response.create"})
            done = (await client.until("response.done"))[-1]["response"]
            assert done["output"][0]["content"][0]["text"] == "In Lima it is mild."
