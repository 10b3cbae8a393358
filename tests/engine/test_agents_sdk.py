"""The OpenAI Agents SDK (``RealtimeRunner``), unchanged, as the engine's client.

Each flow runs a real ``RealtimeAgent`` session on asyncio in a worker thread,
pointed at the engine as its documentation says for a custom endpoint
(``model_config={"url": ..., "headers": {}}``): the URL names no model, so the
SDK's own default model arrives in its first ``session.update``. The engine
runs in the trio test with a per-event latency, so ``interrupt()``, a
barge-in and a tripped output guardrail all land while a reply is streaming.
Each test checks what the SDK reported, every frame the engine sent (strictly,
against the official SDK's models, off the wire), and the engine's
conversation afterwards (``conversation.item.retrieve`` of what was cut).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
from agents import GuardrailFunctionOutput, OutputGuardrail, function_tool, set_tracing_disabled
from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession
from agents.realtime.model_inputs import RealtimeModelSendRawMessage
from agents.realtime.openai_realtime import DEFAULT_REALTIME_MODEL

from .clients import (
    GREETING,
    SORRY,
    STORY,
    WEATHER_ANSWER,
    WEATHER_QUESTION,
    Served,
    answered_weather,
    barged_in,
    chunks,
    clean,
    cut,
    of_type,
    responses,
    said,
    serve,
    spoken,
    user_texts,
)
from .test_sdk import in_asyncio

# Tracing exports to the hosted platform; these sessions never leave the machine.
set_tracing_disabled(True)

INSTRUCTIONS = "You help people with the weather."
SERVER_VAD = {
    "type": "server_vad",
    "silence_duration_ms": 400,
    "create_response": True,
    "interrupt_response": True,
}


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: the city, as the user named it.
    """
    return "sunny"


@function_tool
def refund_order(order: int) -> str:
    """Refunds an order.

    Args:
        order: the order number.
    """
    return f"refunded order {order}"


billing = RealtimeAgent(name="Billing", instructions="You refund orders.", tools=[refund_order])
triage = RealtimeAgent(
    name="Triage", instructions=INSTRUCTIONS, tools=[get_weather], handoffs=[billing]
)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve() as served:
        yield served


# --- driving the SDK --------------------------------------------------------------------------


def raw(event: Any) -> dict[str, Any] | None:
    """The server event a session event carries, if it is one."""
    if event.type == "raw_model_event" and event.data.type == "raw_server_event":
        data: dict[str, Any] = event.data.data
        return data
    return None


def server(*kinds: str) -> Callable[[Any], bool]:
    """Matches the session event that carries a server event of one of the ``kinds``."""
    return lambda event: (data := raw(event)) is not None and data["type"] in kinds


def sdk(kind: str) -> Callable[[Any], bool]:
    """Matches the SDK's own session event of type ``kind``."""
    return lambda event: event.type == kind


class Watch:
    """A session's events, collected as they come, with bounded waits on them."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.events: list[Any] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.session:
            self.events.append(event)
            self._changed.set()

    async def nth(self, match: Callable[[Any], bool], n: int = 1, *, seconds: float = 10) -> Any:
        """The ``n``-th matching event of the session, counted from its start."""
        async with asyncio.timeout(seconds):
            while True:
                found = [e for e in self.events if match(e)]
                if len(found) >= n:
                    return found[n - 1]
                self._changed.clear()
                await self._changed.wait()

    async def retrieve(self, item_id: str) -> None:
        """Asks the engine for a stored item, through the SDK's raw-event path."""

        def answer(event: Any) -> bool:
            data = raw(event)
            return (
                data is not None
                and data["type"] == "conversation.item.retrieved"
                and (data["item"]["id"] == item_id)
            )

        before = len([e for e in self.events if answer(e)])
        await self.session.model.send_event(
            RealtimeModelSendRawMessage(
                message={"type": "conversation.item.retrieve", "other_data": {"item_id": item_id}}
            )
        )
        await self.nth(answer, before + 1)

    async def stream(self, audio: bytes) -> None:
        """The user speaks: the audio in 100 ms chunks, as fast as the socket takes it."""
        for chunk in chunks(audio):
            await self.session.send_audio(chunk)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


Script = Callable[[Watch], Awaitable[None]]


async def run_agent(
    url: str,
    script: Script,
    *,
    agent: RealtimeAgent[Any] = triage,
    settings: dict[str, Any] | None = None,
    seconds: float = 25,
    **config: Any,
) -> list[Any]:
    """Runs ``script`` in a ``RealtimeRunner`` session on the engine; the session's events."""

    async def client() -> list[Any]:
        runner = RealtimeRunner(
            agent,
            config={"model_settings": settings or {}, "tracing_disabled": True, **config},
        )
        session = await runner.run(model_config={"url": url, "headers": {}})
        async with session:
            watch = Watch(session)
            try:
                # The SDK's first session.update names its model and the agent's
                # configuration; a refusal would leave the agent unconfigured.
                answer = raw(await watch.nth(server("session.updated", "error")))
                assert answer is not None and answer["type"] == "session.updated", answer
                await script(watch)
            finally:
                await watch.stop()
        return watch.events

    with trio.fail_after(seconds + 5):
        return await in_asyncio(client, seconds=seconds)


def history(events: list[Any]) -> list[tuple[str, str]]:
    """The conversation as the SDK shows it to its user: (role, text) per message."""
    items: list[Any] = []
    for event in events:
        if event.type == "history_updated":
            items = list(event.history)
        elif event.type == "history_added":
            items = [i for i in items if i.item_id != event.item.item_id] + [event.item]
    lines = []
    for item in items:
        if item.type == "message":
            text = " ".join(
                (getattr(part, "text", None) or getattr(part, "transcript", None) or "")
                for part in item.content
            )
            lines.append((item.role, text))
    return lines


def configured(wire: list[dict[str, Any]]) -> dict[str, Any]:
    """The session the engine last confirmed."""
    session: dict[str, Any] = of_type(wire, "session.updated")[-1]["session"]
    return session


# --- flows ----------------------------------------------------------------------------------


async def test_text_turn_configures_the_session_from_session_update(served: Served) -> None:
    """The URL names no model: the SDK's session.update does, and its instructions
    and tools take effect (the engine adopts the model instead of refusing it)."""

    async def script(watch: Watch) -> None:
        await watch.session.send_message("hello there")
        await watch.nth(server("response.done"))

    events = await run_agent(served.url, script, settings={"modalities": ["text"]})
    wire = clean(served)
    session = configured(wire)
    assert session["model"] == DEFAULT_REALTIME_MODEL
    assert session["instructions"] == INSTRUCTIONS
    assert [t["name"] for t in session["tools"]] == ["get_weather", "transfer_to_billing"]
    assert session["output_modalities"] == ["text"]
    (done,) = responses(wire)
    assert done["status"] == "completed" and said(done) == [GREETING]
    assert history(events)[-2:] == [("user", "hello there"), ("assistant", GREETING)]


async def test_tool_turn(served: Served) -> None:
    async def script(watch: Watch) -> None:
        await watch.session.send_message("What's the weather in Paris?")
        await watch.nth(sdk("tool_end"))
        await watch.nth(server("response.done"), 2)

    events = await run_agent(served.url, script, settings={"modalities": ["text"]})
    wire = clean(served)
    (end,) = [e for e in events if e.type == "tool_end"]
    assert end.tool.name == "get_weather" and end.output == "sunny"
    answered_weather(*responses(wire))
    assert history(events)[-1] == ("assistant", WEATHER_ANSWER)


async def test_handoff(served: Served) -> None:
    """The triage agent hands off to billing: the SDK reconfigures the session with
    billing's instructions and tools, and billing's tool answers the next turn."""

    async def script(watch: Watch) -> None:
        await watch.session.send_message("I want a refund")
        await watch.nth(sdk("handoff"))
        await watch.nth(server("response.done"), 2)
        await watch.session.send_message("It is order 4711")
        await watch.nth(sdk("tool_end"))
        await watch.nth(server("response.done"), 4)

    events = await run_agent(served.url, script, settings={"modalities": ["text"]})
    wire = clean(served)
    (handoff,) = [e for e in events if e.type == "handoff"]
    assert (handoff.from_agent.name, handoff.to_agent.name) == ("Triage", "Billing")
    session = configured(wire)
    assert session["instructions"] == "You refund orders."
    assert [t["name"] for t in session["tools"]] == ["refund_order"]
    replies = [said(r) for r in responses(wire)]
    assert replies == [
        [],
        ["Billing here. Which order should I refund?"],
        [],
        ["Done: refunded order 4711."],
    ]
    (end,) = [e for e in events if e.type == "tool_end"]
    assert end.tool.name == "refund_order"
    # The captured "4711" reached `order: int` as an integer.
    call = responses(wire)[2]["output"][0]
    assert call["name"] == "refund_order" and call["arguments"] == '{"order": 4711}'


async def test_audio_turn_with_server_vad(served: Served) -> None:
    """Speech in, through the engine's VAD and ears, a tool call, and speech out."""

    async def script(watch: Watch) -> None:
        await watch.stream(spoken(WEATHER_QUESTION))
        await watch.nth(sdk("tool_end"))
        await watch.nth(server("response.done"), 2)

    events = await run_agent(served.url, script, settings={"turn_detection": SERVER_VAD})
    wire = clean(served)
    kinds = [e["type"] for e in wire]
    for kind in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
    ):
        assert kinds.count(kind) == 1, kind
    (transcript,) = of_type(wire, "conversation.item.input_audio_transcription.completed")
    assert transcript["transcript"] == WEATHER_QUESTION
    call, answer = responses(wire)
    answered_weather(call, answer)
    assert answer["output"][0]["content"][0]["type"] == "output_audio"
    audio = b"".join(e.audio.data for e in events if e.type == "audio")
    assert len(audio) > 0 and any(e.type == "audio_end" for e in events)
    assert ("user", WEATHER_QUESTION) in history(events)
    assert history(events)[-1] == ("assistant", WEATHER_ANSWER)


async def test_interrupt_mid_reply_truncates_what_was_played(served: Served) -> None:
    """``interrupt()`` while the story still streams: the SDK truncates the item at
    its playback position. With server VAD's ``interrupt_response`` it does not
    cancel, so the reply goes on to the end; the stored item keeps the cut and
    drops the transcript nobody heard."""

    async def script(watch: Watch) -> None:
        await watch.session.send_message("tell me a story")
        first = await watch.nth(sdk("audio"))
        await watch.nth(sdk("audio"), 4)
        await watch.session.interrupt()
        await watch.nth(server("conversation.item.truncated"))
        await watch.nth(server("response.done"))
        await watch.retrieve(first.item_id)

    events = await run_agent(served.url, script, settings={"turn_detection": SERVER_VAD})
    wire = clean(served)
    cut(served, wire)
    # It landed mid-reply, and the reply went on to its end.
    kinds = [e["type"] for e in wire]
    assert kinds.index("conversation.item.truncated") < kinds.index("response.done")
    (done,) = responses(wire)
    assert done["status"] == "completed"
    assert any(e.type == "audio_interrupted" for e in events)


async def test_interrupt_without_vad_also_cancels(served: Served) -> None:
    """With no turn detection the SDK's ``interrupt()`` truncates and cancels."""

    async def script(watch: Watch) -> None:
        await watch.session.send_message("tell me a story")
        first = await watch.nth(sdk("audio"))
        await watch.nth(sdk("audio"), 3)
        await watch.session.interrupt()
        await watch.nth(server("response.done"))
        await watch.retrieve(first.item_id)

    await run_agent(served.url, script, settings={"turn_detection": None})
    wire = clean(served)
    sent = [e["type"] for e in served.tap.client_events()]
    assert sent.index("conversation.item.truncate") < sent.index("response.cancel")
    cut(served, wire)
    (done,) = responses(wire)
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "client_cancelled"


async def test_barge_in(served: Served) -> None:
    """The user speaks over the streaming story: the engine cancels it (turn
    detected), the SDK stops playback and truncates, and the user's turn is
    answered once the cancelled response is done."""

    async def script(watch: Watch) -> None:
        await watch.session.send_message("tell me a story")
        first = await watch.nth(sdk("audio"))
        await watch.nth(sdk("audio"), 4)
        await watch.stream(spoken(WEATHER_QUESTION))
        await watch.nth(sdk("tool_end"))
        await watch.nth(server("response.done"), 3)
        await watch.retrieve(first.item_id)

    events = await run_agent(served.url, script, settings={"turn_detection": SERVER_VAD})
    wire = clean(served)
    barged_in(served, wire)
    assert any(e.type == "audio_interrupted" for e in events)
    assert history(events)[-1] == ("assistant", WEATHER_ANSWER)


async def test_output_guardrail_trips_mid_reply(served: Served) -> None:
    """A guardrail on the transcript trips while the story streams: the SDK cancels
    and truncates the reply, tells the model, and the model answers again."""

    def no_engines(context: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="engine" in output)

    guarded = RealtimeAgent(
        name="Guarded",
        instructions=INSTRUCTIONS,
        output_guardrails=[OutputGuardrail(guardrail_function=no_engines, name="no_engines")],
    )

    async def script(watch: Watch) -> None:
        await watch.session.send_message("tell me a story")
        first = await watch.nth(sdk("audio"))
        await watch.nth(sdk("guardrail_tripped"))
        await watch.nth(server("response.done"), 2)
        await watch.retrieve(first.item_id)

    events = await run_agent(
        served.url,
        script,
        agent=guarded,
        settings={"turn_detection": SERVER_VAD},
        guardrails_settings={"debounce_text_length": 20},
    )
    wire = clean(served)
    (tripped,) = [e for e in events if e.type == "guardrail_tripped"]
    assert "engine" in tripped.message and len(tripped.message) < len(STORY)
    story, again = responses(wire)
    assert story["status"] == "cancelled"
    assert said(again) == [SORRY]
    assert user_texts(wire) == ["tell me a story", "guardrail triggered: no_engines"]
    cut(served, wire)
