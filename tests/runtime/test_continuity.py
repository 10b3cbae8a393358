"""Sessions that survive: reconnect, failover, rollover and checkpoints, in memory.

Each test runs whole sessions against engine sessions served in memory
(``memory_engine``), on trio's MockClock, and makes the fault real on the
engine's side: the line dropped, the session expired, dials refused. What
the session then holds is read from the engine's own conversation.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from framework import ClockSink, ConnectionClosed, open_session, tool
from framework.engine import EngineSession
from framework.protocol import (
    AssistantMessageContent,
    ConversationItem,
    ConversationItemAdded,
    ConversationItemTruncatedEvent,
    InputAudioBufferSpeechStartedEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    ResponseAudioDeltaEvent,
    ResponseOutputItemAddedEvent,
    UserMessageContent,
)
from framework.runtime import (
    AssistantDelta,
    Checkpoint,
    Continuity,
    Endpoint,
    ErrorReported,
    History,
    Reconnected,
    Reconnecting,
    RolledOver,
    Session,
    SessionEvent,
    ToolCallFinished,
    ToolCallStarted,
)
from framework.runtime._continuity import UNHEARD, backoff, replay_items
from framework.testing import MemoryEngine, memory_engine

from .bots import RULES, WeatherBot
from .test_timing import Talker, quiet, tone

FAST = Continuity(backoff_s=0.1, max_backoff_s=1.0, jitter=0.0)


class Patient(WeatherBot):
    """A weather tool that takes a second."""

    @tool
    async def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: the city's name.
        """
        await trio.sleep(1.0)
        self.calls.append(city)
        return "sunny"


def texts(session: EngineSession) -> list[tuple[str, str]]:
    """The engine's conversation as (kind, words)."""
    out = []
    for item in session.conversation.items():
        if isinstance(item, RealtimeConversationItemFunctionCall):
            out.append(("call", f"{item.name} {item.call_id}"))
        elif isinstance(item, RealtimeConversationItemFunctionCallOutput):
            out.append(("output", f"{item.call_id} {item.output}"))
        else:
            words = " ".join(
                str(getattr(p, "text", None) or getattr(p, "transcript", None) or "")
                for p in getattr(item, "content", ())
            )
            out.append((str(getattr(item, "role", "?")), words))
    return out


async def collect(
    session: Session,
    into: list[SessionEvent],
    when: Callable[[SessionEvent], bool] | None = None,
    then: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Keeps the session's events; the first that ``when`` matches sets off ``then``."""
    async for event in session:
        into.append(event)
        if when is not None and then is not None and when(event):
            when = None
            await then()


def _is_delta_with(words: str, event: SessionEvent) -> bool:
    return isinstance(event, AssistantDelta) and words in event.delta


def endpoint(served: MemoryEngine, name: str = "memory") -> Endpoint:
    return Endpoint(dial=served.dial, name=name)


async def test_a_drop_mid_response_resumes_with_the_history(autojump_clock: MockClock) -> None:
    events: list[SessionEvent] = []
    async with (
        memory_engine(rules=RULES, latency_ms=50) as served,
        open_session(WeatherBot(), endpoints=[endpoint(served)], continuity=FAST) as session,
        trio.open_nursery() as nursery,
    ):
        await session.run("hello")
        first = served.latest
        mid_reply = partial(_is_delta_with, "upon")
        nursery.start_soon(collect, session, events, mid_reply, first.drop)
        result = await session.run("tell me a story")
        second = served.latest
        nursery.cancel_scope.cancel()
    assert second is not first
    assert [type(e).__name__ for e in events if isinstance(e, Reconnecting | Reconnected)] == [
        "Reconnecting",
        "Reconnected",
    ]
    (reconnected,) = [e for e in events if isinstance(e, Reconnected)]
    assert reconnected.attempts == 1 and not reconnected.failed_over
    # The cut response ended as cut, and the turn got its answer on the new line.
    assert [r.status for r in result.responses] == ["incomplete", "completed"]
    story = "Once upon a time there was a little engine that talked on and on without a network."
    assert result.text.endswith(story)
    # The new session holds the whole conversation: replayed, then continued.
    conversation = texts(second)
    assert conversation[:3] == [
        ("user", "hello"),
        ("assistant", "Hello! Ask me about the weather."),
        ("user", "tell me a story"),
    ]
    assert conversation[3][0] == "assistant" and conversation[3][1].startswith("Once upon")
    assert conversation[4] == ("assistant", story)
    assert len(conversation) == 5


async def test_a_call_running_across_a_drop_gets_exactly_one_output(
    autojump_clock: MockClock,
) -> None:
    bot = Patient()
    events: list[SessionEvent] = []
    async with (
        memory_engine(rules=RULES) as served,
        open_session(bot, endpoints=[endpoint(served)], continuity=FAST) as session,
        trio.open_nursery() as nursery,
    ):
        first = served.latest
        nursery.start_soon(
            collect, session, events, lambda e: isinstance(e, ToolCallStarted), first.drop
        )
        result = await session.run("What is the weather in Paris?")
        second = served.latest
        nursery.cancel_scope.cancel()
    assert second is not first
    (call,) = result.tool_calls
    assert (call.status, call.output) == ("ok", "sunny")
    assert bot.calls == ["Paris"]  # the tool ran once
    assert len([e for e in events if isinstance(e, ToolCallFinished)]) == 1
    # The old session never got the output; the new one has it once, after its call.
    assert not [k for k, _ in texts(first) if k == "output"]
    conversation = texts(second)
    kinds = [k for k, _ in conversation]
    assert kinds == ["user", "call", "output", "assistant"]
    assert conversation[2][1].endswith(" sunny")
    assert conversation[1][1].split()[1] == conversation[2][1].split()[0]  # the same call_id
    assert conversation[3] == ("assistant", "In Paris it is sunny.")


async def test_failover_to_the_next_endpoint(autojump_clock: MockClock) -> None:
    events: list[SessionEvent] = []
    policy = attrs.evolve(FAST, attempts=2)
    async with (
        memory_engine(rules=RULES) as primary,
        memory_engine(rules=RULES) as backup,
        open_session(
            WeatherBot(),
            endpoints=[endpoint(primary, "primary"), endpoint(backup, "backup")],
            continuity=policy,
        ) as session,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(collect, session, events)
        await session.run("hello")
        assert session.endpoint == "primary"
        primary.engine.refuse(3600)  # the primary is down for good
        await primary.latest.drop()
        result = await session.run("What is the weather in Oslo?")
        assert session.endpoint == "backup"
        nursery.cancel_scope.cancel()
    tries = [(e.attempt, e.endpoint) for e in events if isinstance(e, Reconnecting)]
    assert tries == [(1, "primary"), (2, "primary"), (3, "backup")]
    (reconnected,) = [e for e in events if isinstance(e, Reconnected)]
    assert reconnected.failed_over and reconnected.endpoint == "backup"
    assert result.text == "In Oslo it is snowing."
    assert texts(backup.latest)[:2] == [
        ("user", "hello"),
        ("assistant", "Hello! Ask me about the weather."),
    ]
    assert primary.engine.refused == 2


async def test_past_its_bounds_the_session_ends_with_the_drop(autojump_clock: MockClock) -> None:
    events: list[SessionEvent] = []
    policy = attrs.evolve(FAST, attempts=3, give_up_after_s=30)
    with pytest.raises(ConnectionClosed) as ended:
        async with (
            memory_engine(rules=RULES) as served,
            open_session(WeatherBot(), endpoints=[endpoint(served)], continuity=policy) as session,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(collect, session, events)
            await session.run("hello")
            served.engine.refuse(3600)
            await served.latest.drop()
            await trio.sleep(60)
    assert ended.value.code == 1006
    assert [e.attempt for e in events if isinstance(e, Reconnecting)] == [1, 2, 3]
    assert [round(e.delay_s, 3) for e in events if isinstance(e, Reconnecting)] == [0, 0.1, 0.2]


async def test_an_expired_session_is_a_drop_like_any_other(autojump_clock: MockClock) -> None:
    events: list[SessionEvent] = []
    no_rollover = attrs.evolve(FAST, rollover=False)
    async with (
        memory_engine(rules=RULES) as served,
        open_session(WeatherBot(), endpoints=[endpoint(served)], continuity=no_rollover) as session,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(collect, session, events)
        await session.run("hello")
        served.latest.expire_now()  # earlier than the expires_at it announced
        result = await session.run("What is the weather in Rome?")
        nursery.cancel_scope.cancel()
    assert result.text == "In Rome it is warm."
    assert len([e for e in events if isinstance(e, Reconnected)]) == 1
    assert len(served.served) == 2


async def test_user_audio_in_the_gap_is_held_and_sent_after_the_replay(
    autojump_clock: MockClock,
) -> None:
    """20 ms chunks through a drop: every byte reaches a session once, in order."""
    policy = attrs.evolve(FAST, hold_audio_s=10)
    sent = 0
    async with (
        memory_engine(rules=RULES) as served,
        open_session(Talker(), endpoints=[endpoint(served)], continuity=policy) as session,
    ):
        chunks = [quiet(200), tone(600), quiet(600)] * 2
        for n, chunk in enumerate(chunks):
            for i in range(0, len(chunk), 960):
                await session.send_audio(chunk[i : i + 960])
                sent += len(chunk[i : i + 960])
                await trio.sleep(0.02)
            if n == 2:
                await served.latest.drop()  # between two utterances, audio still flowing
        await session.wait_quiet()
        await trio.sleep(1)
        received = sum(s.statistics().input.received_ms for s in served.served)
        stats = session.statistics()
    assert received * 48 == sent
    assert stats["audio_bytes_dropped"] == 0


async def test_user_audio_past_the_bound_in_a_long_gap_is_dropped_and_counted(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A gap of over 1.5 s with half a second held: the rest is dropped, counted, never sent."""
    policy = attrs.evolve(FAST, hold_audio_s=0.5, attempts=10)
    sent = 0
    async with (
        memory_engine(rules=RULES) as served,
        open_session(Talker(), endpoints=[endpoint(served)], continuity=policy) as session,
    ):
        chunks = [quiet(200), tone(600), quiet(2400), tone(600), quiet(600)]
        for n, chunk in enumerate(chunks):
            for i in range(0, len(chunk), 960):
                await session.send_audio(chunk[i : i + 960])
                sent += len(chunk[i : i + 960])
                await trio.sleep(0.02)
            if n == 1:
                served.engine.refuse(1.5)
                await served.latest.drop()  # the user goes on talking into the gap
            if n == 3:
                await served.latest.drop()  # a short outage: nothing to drop this time
        await session.wait_quiet()
        await trio.sleep(1)
        received = [s.statistics().input.received_ms * 48 for s in served.served]
        dropped = session.statistics()["audio_bytes_dropped"]
    assert len(received) == 3
    # Every byte reached a session once, or was dropped and counted; none twice.
    assert sum(received) + dropped == sent
    # The line was down for about 1.5 s (from the drop's notice to the end of the
    # refusal), of which 0.5 s was kept: close to a second went, in whole chunks.
    assert 900 * 48 <= dropped <= 1000 * 48 and dropped % 960 == 0
    # The held half second went to the new session, ahead of what followed.
    assert received[1] >= 500 * 48
    # The application is told how much, once: the second outage dropped nothing.
    (warned,) = [r.getMessage() for r in caplog.records if r.name == "cantata.audio"]
    assert warned.startswith(f"{dropped} bytes of the user's audio were dropped")


async def test_rollover_before_expiry_loses_and_repeats_no_audio(
    autojump_clock: MockClock,
) -> None:
    events: list[SessionEvent] = []
    policy = attrs.evolve(FAST, rollover_lead_s=4.0, rollover_margin_s=1.0)
    sink = ClockSink()
    sent = 0
    async with (
        memory_engine(rules=RULES, max_session_s=10) as served,
        open_session(
            Talker(), endpoints=[endpoint(served)], continuity=policy, audio_out=sink
        ) as session,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(collect, session, events)
        utterances = 0
        started = trio.current_time()
        while trio.current_time() - started < 25:  # two and a half session lifetimes
            utterances += 1
            for chunk in (tone(500), quiet(1500)):
                for i in range(0, len(chunk), 960):
                    await session.send_audio(chunk[i : i + 960])
                    sent += 960
                    await trio.sleep(0.02)
        await session.wait_quiet()
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    rolled = [e for e in events if isinstance(e, RolledOver)]
    # A session lives 10 s and is replaced 4 s before its end, at a quiet moment.
    assert len(rolled) >= 3 and all(e.quiet for e in rolled)
    assert len(served.served) == len(rolled) + 1
    assert not [e for e in events if isinstance(e, Reconnecting | ErrorReported)]
    # Every byte of the user's audio reached exactly one session.
    assert sum(s.statistics().input.received_ms for s in served.served) * 48 == sent
    # Each utterance became one user turn, and its reply was played once.
    turns = [k for k, _ in texts(served.latest) if k == "user"]
    assert len(turns) == len(sink.audio) == utterances


async def test_a_checkpoint_moves_the_session_to_another_engine(autojump_clock: MockClock) -> None:
    async with memory_engine(rules=RULES) as served:
        async with open_session(WeatherBot(), endpoints=[endpoint(served)]) as session:
            await session.run("hello")
            await session.run("What is the weather in Paris?")
            saved = session.checkpoint().to_json()
        assert '"calls":[]' in saved
        async with memory_engine(rules=RULES) as elsewhere:
            checkpoint = Checkpoint.from_json(saved)
            async with open_session(
                WeatherBot(), endpoints=[endpoint(elsewhere)], resume=checkpoint
            ) as moved:
                result = await moved.run("What is the weather in Rome?")
            conversation = texts(elsewhere.latest)
    assert result.text == "In Rome it is warm."
    assert [k for k, _ in conversation] == [
        "user", "assistant", "user", "call", "output", "assistant",
        "user", "call", "output", "assistant",
    ]  # fmt: skip
    assert conversation[5] == ("assistant", "In Paris it is sunny.")


async def test_a_call_open_at_the_checkpoint_is_answered_once_after_the_move(
    autojump_clock: MockClock,
) -> None:
    bot = Patient()
    async with memory_engine(rules=RULES) as served:
        async with open_session(bot, endpoints=[endpoint(served)]) as session:
            await session.send_text("What is the weather in Oslo?")
            async for event in session:
                if isinstance(event, ToolCallStarted):
                    break
            checkpoint = Checkpoint.from_json(session.checkpoint().to_json())
        (call,) = checkpoint.calls
        assert (call.name, call.state) == ("get_weather", "running")
        async with memory_engine(rules=RULES) as elsewhere:
            async with open_session(
                WeatherBot(), endpoints=[endpoint(elsewhere)], resume=checkpoint
            ) as moved:
                await moved.wait_quiet()
            conversation = texts(elsewhere.latest)
    outputs = [words for kind, words in conversation if kind == "output"]
    assert len(outputs) == 1 and outputs[0].startswith(call.call_id)
    assert "may or may not have finished" in outputs[0]
    assert conversation[-1][0] == "assistant"  # the model was asked to go on


def test_a_checkpoint_that_is_not_one_says_where() -> None:
    with pytest.raises(ValueError, match="not a session checkpoint"):
        Checkpoint.from_json('{"session_id": "s", "agent": 3}')
    with pytest.raises(ValueError, match="not a session checkpoint"):
        Checkpoint.from_json("{oops")


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "function_call", "function_call_output", "x"]),
        "role": st.sampled_from(["user", "assistant", "system", "tool"]),
        "content": _JSON,
        "call_id": _JSON,
        "name": _JSON,
        "arguments": _JSON,
        "output": _JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _JSON,
        st.fixed_dictionaries(
            {"session_id": st.text(max_size=8), "agent": st.text(max_size=8)},
            optional={"items": st.lists(_ITEM, max_size=3), "calls": _JSON, "sticky": _JSON},
        ),
    )
)
def test_a_checkpoint_from_anywhere_is_read_whole_or_refused_plainly(value: object) -> None:
    """What a checkpoint store hands back: a checkpoint whose conversation can be sent, or
    a ValueError that says so; never another exception."""
    try:
        checkpoint = Checkpoint.from_json(orjson.dumps(value))
    except ValueError as e:
        assert str(e).startswith("not a session checkpoint")
        return
    assert len(checkpoint.conversation()) == len(checkpoint.items)


def test_backoff_doubles_within_its_bounds_and_jitters() -> None:
    waits = list(itertools.islice(backoff(Continuity(backoff_s=0.25, max_backoff_s=2.0)), 7))
    assert waits[0] == 0
    tops = [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert all(top / 2 <= wait <= top for wait, top in zip(waits[1:], tops, strict=True))
    seeded = Continuity(seed=7)
    assert list(itertools.islice(backoff(seeded), 5)) == list(itertools.islice(backoff(seeded), 5))


def _history(*events: object) -> History:
    history = History()
    for event in events:
        history.apply(event)  # type: ignore[arg-type]
    return history


def test_replay_turns_audio_into_its_words_and_cuts_what_was_not_heard() -> None:
    def added(item: ConversationItem) -> ConversationItemAdded:
        return ConversationItemAdded(event_id="e", item=item)

    spoken = RealtimeConversationItemUserMessage(
        id="u1", content=[UserMessageContent(type="input_audio", transcript="what time is it")]
    )
    mumbled = RealtimeConversationItemUserMessage(
        id="u2", content=[UserMessageContent(type="input_audio")]
    )
    reply = RealtimeConversationItemAssistantMessage(
        id="a1",
        status="completed",
        content=[AssistantMessageContent(type="output_audio", transcript="one two three four")],
    )
    unfinished = RealtimeConversationItemFunctionCall(id="f1", call_id="c1", name="x", arguments="")
    history = _history(
        added(spoken),
        added(mumbled),
        ResponseOutputItemAddedEvent(event_id="e", response_id="r", output_index=0, item=reply),
        ResponseAudioDeltaEvent(
            event_id="e", response_id="r", item_id="a1", output_index=0, content_index=0,
            delta="A" * 64,  # 48 bytes: 1 ms of PCM16 at 24 kHz
        ),
        ConversationItemTruncatedEvent(event_id="e", item_id="a1", content_index=0, audio_end_ms=0),
        InputAudioBufferSpeechStartedEvent(event_id="e", audio_start_ms=0, item_id="u3"),
        ResponseOutputItemAddedEvent(
            event_id="e", response_id="r2", output_index=0, item=unfinished
        ),
    )  # fmt: skip
    history.get("a1").truncated_ms = 0  # type: ignore[union-attr]
    history.get("a1").text = "one two three four"  # type: ignore[union-attr]
    history.get("a1").audio_bytes = 48 * 1000  # type: ignore[union-attr]
    history.get("a1").truncated_ms = 500  # type: ignore[union-attr]
    items, skipped = replay_items(history, [], 48)
    assert skipped == 1  # the call whose arguments never came whole
    user, mumble, assistant = items
    assert isinstance(user, RealtimeConversationItemUserMessage)
    assert [(p.type, p.text) for p in user.content] == [("input_text", "what time is it")]
    assert isinstance(mumble, RealtimeConversationItemUserMessage)
    assert mumble.content[0].text == UNHEARD
    assert isinstance(assistant, RealtimeConversationItemAssistantMessage)
    assert assistant.content[0].text == "one two [interrupted]"  # half of it was heard
    assert [getattr(i, "id", None) for i in items] == ["u1", "u2", "a1"]  # the same ids
