"""What the third-party client tests share: the engine they talk to, its rules,
the user's speech, and the check of every frame the engine sent.

The engine runs with a per-event latency, so a reply is still streaming when
an interrupt, a barge-in or a guardrail lands, as on a real call; with real
ears (pocketsphinx in grammar mode) and a real voice for the user (espeak), so
an audio turn is understood. Every client reaches it through a recording proxy
(:mod:`.wiretap`), and each test checks each frame the engine sent against the
official SDK's models.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import attrs
import numpy as np
import trustme

from framework.engine import Engine, Rules, open_engine
from plugins.speech import EspeakSynthesizer, PocketsphinxTranscriber

from ..protocol import oracle
from .wiretap import Tap, open_tap

LATENCY_MS = 30
"""Before every event the engine sends: a reply of a few seconds of audio streams
for about as long, so interrupts land mid-reply."""

RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000
MS_PER_CHAR = 60  # the engine's tone voice

STORY = (
    "Once upon a time there was a little engine that talked on and on without a network, "
    "and everybody listened to it until the very end of the line."
)
GREETING = "Hello! Ask me about the weather."
SORRY = "Sorry, let me put that differently."
WEATHER_QUESTION = "What is the weather in Paris"
PHRASES = [WEATHER_QUESTION, "Tell me a story", "Hello there"]

RULES = rf"""
fallback = "Sorry, I did not catch that."

[[rule]]
when = "^(hi|hello)\\b"
say = "{GREETING}"

[[rule]]
when = "weather in (?P<city>[A-Za-z ]+?)[?.!]*$"
call = "get_weather"
args = {{ city = "{{city}}" }}

[[rule]]
after = "get_weather"
say = "In {{city}} it is {{output}}."

[[rule]]
when = "tell me a story"
say = "{STORY}"

[[rule]]
when = "refund"
call = "transfer_to_billing"

[[rule]]
after = "transfer_to_billing"
say = "Billing here. Which order should I refund?"

[[rule]]
when = "order (?P<order>\\d+)"
call = "refund_order"
args = {{ order = "{{order}}" }}

[[rule]]
after = "refund_order"
say = "Done: {{output}}."

[[rule]]
when = "guardrail triggered|answer was blocked"
say = "{SORRY}"
"""

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city."}},
    "required": ["city"],
}
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "integer", "description": "The order number."}},
    "required": ["order"],
}


@cache
def transcriber() -> PocketsphinxTranscriber:
    """The engine's ears, loaded once per test process."""
    ears = PocketsphinxTranscriber(grammar=PHRASES)
    ears.load()
    return ears


@cache
def spoken(text: str, *, silence_ms: int = 900) -> bytes:
    """PCM16 24 kHz: the user saying ``text``, then silence long enough to end the turn."""
    voice = EspeakSynthesizer().synthesize_blocking(text, rate=RATE, voice="alloy")
    pause = np.zeros(silence_ms * RATE // 1000, dtype=np.int16)
    return np.concatenate([pause[: RATE // 10], voice, pause]).astype("<i2").tobytes()


def chunks(audio: bytes, ms: int = 100) -> list[bytes]:
    step = ms * BYTES_PER_MS
    return [audio[i : i + step] for i in range(0, len(audio), step)]


@attrs.frozen
class Served:
    """The engine behind its tap: the URL a client dials and what crossed the wire."""

    url: str
    tap: Tap


@asynccontextmanager
async def serve(*, tls: tuple[trustme.CA, str, str] | None = None) -> AsyncIterator[Served]:
    """The engine with the test rules, ears and latency, behind a recording proxy.

    Args:
        tls: the authority, certificate and key files: the engine and the proxy
            then both speak TLS, and the client must trust the authority.
    """
    engine = Engine(rules=Rules.from_toml(RULES), transcriber=transcriber(), latency_ms=LATENCY_MS)
    certfile, keyfile = (tls[1], tls[2]) if tls else (None, None)
    async with open_engine(engine, certfile=certfile, keyfile=keyfile) as running:
        server_ssl = upstream_ssl = None
        if tls is not None:
            server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ssl.load_cert_chain(certfile or "", keyfile)
            upstream_ssl = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            upstream_ssl.load_verify_locations(cadata=tls[0].cert_pem.bytes().decode())
        # The URL names no model, as an application pointing an Agents SDK at its
        # own server writes it: both name their model in session.update.
        async with open_tap(running.url, server_ssl=server_ssl, upstream_ssl=upstream_ssl) as (
            url,
            tap,
        ):
            yield Served(url=url, tap=tap)


# --- reading the wire -----------------------------------------------------------------------


def checked(tap: Tap) -> list[dict[str, Any]]:
    """Every event the engine sent, each validated strictly against the official SDK."""
    assert tap.binary_from_server() == [], "the engine sent a binary frame"
    events = tap.server_events()
    for event in events:
        oracle.check_server_event(event)
    return events


def clean(served: Served) -> list[dict[str, Any]]:
    """The engine's events of a flow, all valid, none an ``error``."""
    events = checked(served.tap)
    assert errors(events) == []
    return events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["error"] for e in of_type(events, "error")]


def audio_ms(item: dict[str, Any]) -> float:
    """The length of a retrieved assistant item's audio."""
    return len(base64.b64decode(item["content"][0]["audio"])) / BYTES_PER_MS


def cut(served: Served, wire: list[dict[str, Any]]) -> dict[str, Any]:
    """Checks the one truncation of a flow; the ``conversation.item.truncate`` the client sent.

    The client truncated a reply mid-way (at a position short of its whole
    audio), the engine confirmed that position, and the stored item, as the
    client retrieved it last, kept exactly that much audio and no transcript
    (nobody heard the rest of it).
    """
    (truncate,) = of_type(served.tap.client_events(), "conversation.item.truncate")
    (truncated,) = of_type(wire, "conversation.item.truncated")
    assert truncated["item_id"] == truncate["item_id"]
    assert truncated["audio_end_ms"] == truncate["audio_end_ms"]
    assert 0 < truncate["audio_end_ms"] < len(STORY) * MS_PER_CHAR
    retrieved = [
        e["item"]
        for e in of_type(wire, "conversation.item.retrieved")
        if e["item"]["id"] == truncate["item_id"]
    ]
    item = retrieved[-1]
    assert audio_ms(item) == truncate["audio_end_ms"]
    assert item["content"][0]["transcript"] == ""
    return truncate


def responses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``response`` of each ``response.done``, in order."""
    return [e["response"] for e in of_type(events, "response.done")]


def user_texts(events: list[dict[str, Any]]) -> list[str]:
    """The text of each user message added to the conversation."""
    return [
        e["item"]["content"][0]["text"]
        for e in of_type(events, "conversation.item.added")
        if e["item"].get("role") == "user" and e["item"]["content"][0]["type"] == "input_text"
    ]


def said(response: dict[str, Any]) -> list[str]:
    """The text or transcript of each assistant message of a finished response."""
    out = []
    for item in response["output"]:
        if item["type"] == "message":
            part = item["content"][0]
            out.append(part.get("text", part.get("transcript", "")))
    return out


WEATHER_ANSWER = "In Paris it is sunny."


def answered_weather(call: dict[str, Any], answer: dict[str, Any]) -> None:
    """A response that called ``get_weather`` for Paris, and the one that answered."""
    (function_call,) = call["output"]
    assert function_call["name"] == "get_weather"
    assert function_call["arguments"] == '{"city": "Paris"}'
    assert said(answer) == [WEATHER_ANSWER]


def barged_in(served: Served, wire: list[dict[str, Any]]) -> None:
    """The story cancelled by the user's turn, cut where the client stopped playing it,
    and the user's question (heard through the engine's ears) answered after."""
    story, call, answer = responses(wire)
    assert story["status"] == "cancelled"
    assert story["status_details"]["reason"] == "turn_detected"
    answered_weather(call, answer)
    cut(served, wire)
