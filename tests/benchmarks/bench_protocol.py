"""Receive-path benchmark: parsing a realistic mix of Realtime server events.

Three parsers read the same frames (JSON text, as a WebSocket delivers them):

* ``cantata``: ``framework.protocol.parse_server_event``;
* ``openai-sdk``: the official SDK's own receive path, its realtime
  connection's ``parse_event`` (``json.loads`` + ``construct_type_unchecked``);
* ``orjson-floor``: ``orjson.loads`` alone, the cost of decoding the JSON.

The mix is what a voice session sends: a user turn with VAD and input
transcription, an audio reply streamed as 100 ms base64 deltas with transcript
deltas, a function call streamed as argument deltas, and ``response.done``
events with usage. Run it on demand::

    python tests/benchmarks/bench_protocol.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from framework.protocol import parse_server_event


def _event_mix(turns: int = 4, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    frames: list[dict[str, Any]] = []
    counter = iter(range(10**9))

    def ev(kind: str, **fields: Any) -> None:
        frames.append({"type": kind, "event_id": f"event_{next(counter):08d}", **fields})

    audio_100ms = base64.b64encode(rng.randbytes(4800)).decode()  # 24 kHz PCM16, 100 ms
    words = [
        "sure",
        "the",
        "weather",
        "in",
        "paris",
        "is",
        "sunny",
        "and",
        "mild",
        "today",
        "with",
        "light",
        "wind",
    ]
    for turn in range(turns):
        user, reply, call = f"item_u{turn}", f"item_a{turn}", f"item_f{turn}"
        resp, resp2 = f"resp_{turn}a", f"resp_{turn}b"
        ev("input_audio_buffer.speech_started", audio_start_ms=1000 * turn, item_id=user)
        ev("input_audio_buffer.speech_stopped", audio_end_ms=1000 * turn + 900, item_id=user)
        ev("input_audio_buffer.committed", item_id=user, previous_item_id=None)
        user_item = {
            "id": user,
            "type": "message",
            "role": "user",
            "status": "completed",
            "object": "realtime.item",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        ev("conversation.item.added", item=user_item, previous_item_id=None)
        ev("conversation.item.done", item=user_item, previous_item_id=None)
        for word in words[:4]:
            ev(
                "conversation.item.input_audio_transcription.delta",
                item_id=user,
                content_index=0,
                delta=word + " ",
            )
        ev(
            "conversation.item.input_audio_transcription.completed",
            item_id=user,
            content_index=0,
            transcript="what is the weather in paris",
            usage={"type": "duration", "seconds": 0.9},
        )
        # A function call first ...
        response = {
            "id": resp,
            "object": "realtime.response",
            "status": "in_progress",
            "output": [],
        }
        ev("response.created", response=response)
        ev(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.01},
                {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
            ],
        )
        fc = {
            "id": call,
            "type": "function_call",
            "object": "realtime.item",
            "status": "in_progress",
            "name": "get_weather",
            "call_id": f"call_{turn}",
            "arguments": "",
        }
        ev("response.output_item.added", response_id=resp, output_index=0, item=fc)
        ev("conversation.item.added", item=fc, previous_item_id=user)
        args = '{"city": "Paris", "unit": "c"}'
        for i in range(0, len(args), 4):
            ev(
                "response.function_call_arguments.delta",
                response_id=resp,
                item_id=call,
                output_index=0,
                call_id=f"call_{turn}",
                delta=args[i : i + 4],
            )
        ev(
            "response.function_call_arguments.done",
            response_id=resp,
            item_id=call,
            output_index=0,
            call_id=f"call_{turn}",
            name="get_weather",
            arguments=args,
        )
        done_fc = {**fc, "status": "completed", "arguments": args}
        ev("response.output_item.done", response_id=resp, output_index=0, item=done_fc)
        ev("conversation.item.done", item=done_fc, previous_item_id=user)
        usage = {
            "total_tokens": 412,
            "input_tokens": 380,
            "output_tokens": 32,
            "input_token_details": {
                "text_tokens": 300,
                "audio_tokens": 80,
                "image_tokens": 0,
                "cached_tokens": 256,
                "cached_tokens_details": {"text_tokens": 256, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": 32, "audio_tokens": 0},
        }
        ev(
            "response.done",
            response={
                **response,
                "status": "completed",
                "output": [done_fc],
                "usage": usage,
                "conversation_id": "conv_1",
                "output_modalities": ["audio"],
                "max_output_tokens": "inf",
                "status_details": None,
                "metadata": None,
            },
        )
        # ... then the spoken answer: 3 s of audio in 100 ms deltas.
        ev("response.created", response={**response, "id": resp2})
        msg = {
            "id": reply,
            "type": "message",
            "role": "assistant",
            "object": "realtime.item",
            "status": "in_progress",
            "content": [],
        }
        ev("response.output_item.added", response_id=resp2, output_index=0, item=msg)
        ev("conversation.item.added", item=msg, previous_item_id=call)
        ev(
            "response.content_part.added",
            response_id=resp2,
            item_id=reply,
            output_index=0,
            content_index=0,
            part={"type": "audio", "transcript": ""},
        )
        for i in range(30):
            ev(
                "response.output_audio.delta",
                response_id=resp2,
                item_id=reply,
                output_index=0,
                content_index=0,
                delta=audio_100ms,
            )
            if i % 2 == 0:
                ev(
                    "response.output_audio_transcript.delta",
                    response_id=resp2,
                    item_id=reply,
                    output_index=0,
                    content_index=0,
                    delta=words[(i // 2) % len(words)] + " ",
                )
        transcript = " ".join(words)
        ev(
            "response.output_audio.done",
            response_id=resp2,
            item_id=reply,
            output_index=0,
            content_index=0,
        )
        ev(
            "response.output_audio_transcript.done",
            response_id=resp2,
            item_id=reply,
            output_index=0,
            content_index=0,
            transcript=transcript,
        )
        ev(
            "response.content_part.done",
            response_id=resp2,
            item_id=reply,
            output_index=0,
            content_index=0,
            part={"type": "audio", "transcript": transcript},
        )
        final = {
            **msg,
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": transcript}],
        }
        ev("response.output_item.done", response_id=resp2, output_index=0, item=final)
        ev("conversation.item.done", item=final, previous_item_id=call)
        ev(
            "response.done",
            response={
                **response,
                "id": resp2,
                "status": "completed",
                "output": [final],
                "usage": usage,
            },
        )
    return [json.dumps(f) for f in frames]


def _sdk_parser() -> Callable[[str], Any]:
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

    # parse_event does not touch the connection; calling it unbound measures the
    # SDK's receive path without opening a socket.
    parse_event = AsyncRealtimeConnection.parse_event
    return lambda raw: parse_event(None, raw)  # type: ignore[arg-type]


def _measure(parse: Callable[[str], Any], frames: list[str], seconds: float) -> float:
    """Events per second, best of several rounds of at least ``seconds`` / 5 each."""
    for raw in frames:  # warm up (and fill every lazily built hook)
        parse(raw)
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            for raw in frames:
                parse(raw)
            count += len(frames)
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def run(seconds: float = 3.0) -> dict[str, float]:
    """Measures the three parsers; returns events per second for each."""
    frames = _event_mix()
    return {
        "cantata": _measure(parse_server_event, frames, seconds),
        "openai-sdk": _measure(_sdk_parser(), frames, seconds),
        "orjson-floor": _measure(orjson.loads, frames, seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per parser")
    args = parser.parse_args()
    frames = _event_mix()
    kinds: dict[str, int] = {}
    for raw in frames:
        kind = json.loads(raw)["type"]
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"{len(frames)} frames, {sum(map(len, frames)) / len(frames):.0f} bytes on average")
    result = run(args.seconds)
    for name, rate in result.items():
        print(f"{name:>14}: {rate:>12,.0f} events/s")
    print(f"cantata / openai-sdk   = {result['cantata'] / result['openai-sdk']:.1f}x faster")
    print(f"orjson-floor / cantata = {result['orjson-floor'] / result['cantata']:.2f}x slower")


if __name__ == "__main__":
    main()
