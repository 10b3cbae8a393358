"""Sessions that survive, against the local engine over loopback, with real faults.

The faults come through the engine's operator interface, as an operator (or a
test) drives a running engine: the line dropped with no closing handshake
mid-reply and mid-call, handshakes refused, and a short session lifetime for
rollovers. What the session holds afterwards is read from the engine's own
conversation. Every test is bounded by ``trio.fail_after``. The drop mid-call and
the rollover run on both framings of the connection (``Endpoint.framing``).
"""

from __future__ import annotations

import attrs
import httpx2
import pytest
import trio

from framework import ClockSink, open_session
from framework.engine import Engine, EngineSession, OperatorClient, RunningEngine, open_engine
from framework.engine import Rules as EngineRules
from framework.runtime import (
    AssistantDelta,
    Endpoint,
    ErrorReported,
    Reconnected,
    Reconnecting,
    RolledOver,
    SessionEvent,
    ToolCallFinished,
    ToolCallStarted,
)
from framework.transport import Framing

from .bots import RULES, WeatherBot
from .test_continuity import FAST, Patient, collect, texts
from .test_timing import Talker, quiet, tone

STORY = "Once upon a time there was a little engine that talked on and on without a network."


def _operator(http: httpx2.AsyncClient, running: RunningEngine) -> OperatorClient:
    return OperatorClient(http, running.http_url.removesuffix("/v1"), api_key=None)


def _engine(**options: object) -> Engine:
    return Engine(rules=EngineRules.from_toml(RULES), **options)  # type: ignore[arg-type]


def _only(engine: Engine) -> EngineSession:
    (session,) = engine.sessions
    return session


async def test_killed_mid_reply_the_session_resumes_with_its_history() -> None:
    engine = _engine(latency_ms=20)
    events: list[SessionEvent] = []
    with trio.fail_after(60):
        async with (
            open_engine(engine) as running,
            httpx2.AsyncClient(timeout=10) as http,
            open_session(WeatherBot(), url=running.url, continuity=FAST) as session,
            trio.open_nursery() as nursery,
        ):
            await session.run("hello")
            first = _only(engine)
            operator = _operator(http, running)

            async def drop() -> None:
                await operator.drop(first.id)

            nursery.start_soon(
                collect,
                session,
                events,
                lambda e: isinstance(e, AssistantDelta) and "upon" in e.delta,
                drop,
            )
            result = await session.run("tell me a story")
            second = _only(engine)
            nursery.cancel_scope.cancel()
    assert second is not first
    assert [r.status for r in result.responses] == ["incomplete", "completed"]
    assert result.text.endswith(STORY)
    (reconnected,) = [e for e in events if isinstance(e, Reconnected)]
    assert reconnected.replayed == 4  # hello, its answer, the story asked, its beginning
    conversation = texts(second)
    assert conversation[:3] == [
        ("user", "hello"),
        ("assistant", "Hello! Ask me about the weather."),
        ("user", "tell me a story"),
    ]
    assert conversation[3][0] == "assistant" and STORY.startswith(conversation[3][1])
    assert conversation[4] == ("assistant", STORY)
    assert len(conversation) == 5


FRAMINGS = pytest.mark.parametrize("framing", ["trio-websocket", "websockets"])


@FRAMINGS
async def test_killed_mid_call_every_call_is_answered_exactly_once(framing: Framing) -> None:
    engine = _engine()
    bot = Patient()
    events: list[SessionEvent] = []
    with trio.fail_after(60):
        async with (
            open_engine(engine) as running,
            httpx2.AsyncClient(timeout=10) as http,
            open_session(
                bot, endpoints=[Endpoint(url=running.url, framing=framing)], continuity=FAST
            ) as session,
            trio.open_nursery() as nursery,
        ):
            first = _only(engine)
            operator = _operator(http, running)

            async def drop() -> None:
                await operator.drop(first.id)

            nursery.start_soon(
                collect, session, events, lambda e: isinstance(e, ToolCallStarted), drop
            )
            result = await session.run("What is the weather in Paris?")
            second = _only(engine)
            nursery.cancel_scope.cancel()
    (call,) = result.tool_calls
    assert (call.status, call.output) == ("ok", "sunny")
    assert bot.calls == ["Paris"]
    assert len([e for e in events if isinstance(e, ToolCallFinished)]) == 1
    assert [k for k, _ in texts(first)] == ["user", "call"]  # it died before the output
    conversation = texts(second)
    assert [k for k, _ in conversation] == ["user", "call", "output", "assistant"]
    call_id = conversation[1][1].split()[1]
    assert conversation[2][1] == f"{call_id} sunny"
    assert conversation[3] == ("assistant", "In Paris it is sunny.")


async def test_failover_to_a_second_engine() -> None:
    primary, backup = _engine(), _engine()
    events: list[SessionEvent] = []
    policy = attrs.evolve(FAST, attempts=2)
    with trio.fail_after(60):
        async with (
            open_engine(primary) as running_primary,
            open_engine(backup) as running_backup,
            httpx2.AsyncClient(timeout=10) as http,
            open_session(
                WeatherBot(),
                url=running_primary.url,
                endpoints=[Endpoint(url=running_backup.url)],
                continuity=policy,
            ) as session,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(collect, session, events)
            await session.run("hello")
            operator = _operator(http, running_primary)
            await operator.refuse(3600)  # the primary goes down, for good ...
            await operator.drop(_only(primary).id)  # ... and takes the line with it
            result = await session.run("What is the weather in Rome?")
            assert session.endpoint == running_backup.url
            on_backup = texts(_only(backup))
            nursery.cancel_scope.cancel()
    assert [e.endpoint for e in events if isinstance(e, Reconnecting)] == [
        running_primary.url,
        running_primary.url,
        running_backup.url,
    ]
    (reconnected,) = [e for e in events if isinstance(e, Reconnected)]
    assert reconnected.failed_over
    assert result.text == "In Rome it is warm."
    assert on_backup[:2] == [
        ("user", "hello"),
        ("assistant", "Hello! Ask me about the weather."),
    ]
    assert primary.refused == 2


@FRAMINGS
async def test_rollover_at_a_short_expiry_loses_and_repeats_no_audio(framing: Framing) -> None:
    engine = _engine(max_session_s=4)
    events: list[SessionEvent] = []
    policy = attrs.evolve(FAST, rollover_margin_s=0.5)
    sink = ClockSink()
    served: list[EngineSession] = []
    sent = 0
    utterances = 0
    with trio.fail_after(60):
        async with (
            open_engine(engine) as running,
            open_session(
                Talker(),
                endpoints=[Endpoint(url=running.url, framing=framing)],
                continuity=policy,
                audio_out=sink,
            ) as session,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(collect, session, events)

            async def track() -> None:
                while True:
                    served.extend(s for s in engine.sessions if s not in served)
                    await engine.wait_until(lambda e: any(s not in served for s in e.sessions))

            nursery.start_soon(track)
            started = trio.current_time()
            while trio.current_time() - started < 9:  # two lifetimes and more
                utterances += 1
                for chunk in (tone(400), quiet(1400)):
                    for i in range(0, len(chunk), 960):
                        await session.send_audio(chunk[i : i + 960])
                        sent += 960
                        await trio.sleep(0.02)  # a microphone's pace
            await session.wait_quiet()
            await sink.drain()
            # The session the client is on: on a slow machine the next rollover may
            # already have opened its standby beside it.
            (last,) = [s for s in engine.sessions if s.id == session.id]
            standby = len(engine.sessions) - 1
            received_ms = sum(s.statistics().input.received_ms for s in served)
            nursery.cancel_scope.cancel()
    rolled = [e for e in events if isinstance(e, RolledOver)]
    assert len(rolled) >= 2
    assert not [e for e in events if isinstance(e, Reconnecting | ErrorReported)]
    assert len(served) == len(rolled) + 1 + standby
    # Every byte of the microphone reached exactly one session, none twice.
    assert received_ms * 48 == sent
    # Each utterance became one turn on the server, and one reply was played.
    assert [k for k, _ in texts(last)].count("user") == utterances
    assert len(sink.audio) == utterances
