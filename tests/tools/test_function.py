"""The FunctionTool: options, methods, calls, failures, timeouts and approval.

Timeouts run on trio's ``autojump_clock`` with async tools; sync tools run in
worker threads, which a mock clock cannot jump, so their tests use real time
bounded by ``trio.fail_after``.
"""

import functools
import threading
from collections.abc import Coroutine, Mapping
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from framework.tools import (
    FunctionTool,
    ToolOutcome,
    tool,
    tools_of,
)

from .kinds import (
    Bot,
    LoudBot,
    Opaque,
    Point,
    QuietBot,
    obj,
)


@pytest.mark.parametrize("name", ["", "has space", "dot.ted", "x" * 65, "naïve"])
def test_invalid_names_are_refused(name: str) -> None:
    def f() -> None: ...

    with pytest.raises(ValueError, match=r"Tool name .* is invalid"):
        tool(name=name)(f)


def test_name_defaults_to_the_function_and_may_be_64_chars() -> None:
    def get_weather_2() -> None: ...

    assert tool(get_weather_2).name == "get_weather_2"
    assert tool(name="x" * 64)(get_weather_2).name == "x" * 64
    with pytest.raises(ValueError, match="'<lambda>' is invalid"):
        tool(lambda: None)


def test_invalid_options_are_refused() -> None:
    def f() -> None: ...

    with pytest.raises(ValueError, match="on_interrupt must be one of"):
        tool(on_interrupt="explode")(f)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="timeout must be positive"):
        tool(timeout=0)(f)
    with pytest.raises(TypeError, match="timeout must be a number"):
        tool(timeout=True)(f)
    with pytest.raises(TypeError, match="needs_approval must be a bool or a callable"):
        tool(needs_approval="yes")(f)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="pass options by keyword"):
        tool("f")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="already a tool"):
        tool(tool(f))
    with pytest.raises(TypeError, match="a function or a method"):
        tool(staticmethod(f))


def test_options_are_stored() -> None:
    def f() -> None: ...

    plain = tool(f)
    assert (plain.timeout, plain.needs_approval, plain.on_interrupt) == (None, False, "cancel")
    t = tool(timeout=2.5, needs_approval=True, on_interrupt="finish_and_speak")(f)
    assert (t.timeout, t.needs_approval, t.on_interrupt) == (2.5, True, "finish_and_speak")


async def test_method_tool_is_bound_through_an_instance() -> None:
    bot = Bot("Hello")
    bound = bot.greet
    assert isinstance(bound, FunctionTool)
    assert bound.instance is bot
    assert bound.is_method
    assert Bot.greet.instance is None
    assert bound.parameters == obj({"name": {"type": "string"}}, ["name"])
    assert (await bound.invoke('{"name": "Ada"}')).output == "Hello, Ada"
    assert (await Bot("Hi").greet.invoke('{"name": "Ada"}')).output == "Hi, Ada"
    assert await bot.greet("Bob") == "Hello, Bob"


async def test_sync_method_tool_gets_self_in_its_thread() -> None:
    with trio.fail_after(5):
        outcome = await Bot("hi").loud.invoke('{"text": "there"}')
    assert outcome == ToolOutcome(status="ok", output="HI THERE", value="HI THERE")


async def test_method_tool_read_from_the_class_cannot_be_invoked() -> None:
    with pytest.raises(TypeError, match="invoke it through an instance"):
        await Bot.greet.invoke('{"name": "Ada"}')


def test_plain_function_tool_on_a_class_is_not_bound() -> None:
    def helper(x: int) -> int:
        return x

    class Holder:
        t = tool(helper)

    assert Holder().t is Holder.t
    assert not Holder.t.is_method
    assert Holder().t(2) == 2


def test_tools_of_lists_tools_in_definition_order() -> None:
    bot = Bot("Hi")
    found = tools_of(bot)
    assert [t.name for t in found] == ["greet", "shout"]
    assert all(t.instance is bot for t in found)
    assert [t.name for t in FunctionTool.collect(bot)] == ["greet", "shout"]
    assert [t.instance for t in tools_of(Bot)] == [None, None]


async def test_tools_of_follows_inheritance_and_overrides() -> None:
    loud = tools_of(LoudBot("Hi"))
    # The override keeps the base's place; new tools come after the base's.
    assert [t.name for t in loud] == ["greet", "shout", "whisper"]
    assert (await loud[0].invoke('{"name": "Ada"}')).output == "hey Ada"
    # Overriding a tool with a plain method removes it.
    assert [t.name for t in tools_of(QuietBot("Hi"))] == ["greet"]


def test_tools_of_refuses_duplicate_names() -> None:
    class Twice:
        @tool(name="same")
        def a(self) -> None: ...

        @tool(name="same")
        def b(self) -> None: ...

    with pytest.raises(ValueError, match="two tools named 'same': a and b"):
        tools_of(Twice())


def test_method_needs_self() -> None:
    with pytest.raises(TypeError, match="is a method but takes no self"):

        class Broken:
            @tool
            def f() -> None: ...


async def test_sync_tool_runs_in_a_worker_thread() -> None:
    @tool
    def where() -> int:
        return threading.get_ident()

    with trio.fail_after(5):
        outcome = await where.invoke("{}")
    assert outcome.status == "ok"
    assert outcome.value != threading.get_ident()


async def test_sync_tool_does_not_block_the_event_loop() -> None:
    # The tool waits (really sleeping in its thread) for an event only a trio
    # task sets: if the tool ran on the loop, that task could never run.
    released = threading.Event()

    @tool
    def slow() -> bool:
        return released.wait(timeout=2)

    async def release_soon() -> None:
        await trio.sleep(0.05)
        released.set()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_soon)
            outcome = await slow.invoke("{}")
    assert outcome == ToolOutcome(status="ok", output="true", value=True)


async def test_wrapped_async_function_runs_on_the_loop() -> None:
    async def inner(x: int) -> str:
        trio.lowlevel.current_task()  # raises outside trio, e.g. in a worker thread
        return str(x * 2)

    @functools.wraps(inner)
    def wrapper(x: int) -> Coroutine[Any, Any, str]:
        return inner(x)

    outcome = await tool(wrapper).invoke('{"x": 21}')
    assert outcome == ToolOutcome(status="ok", output="42", value="42")


async def test_sync_function_returning_a_coroutine_is_an_error() -> None:
    # Without __wrapped__ there is no telling it is async until it runs in its thread.
    async def later() -> str:
        return "never"

    def opaque_wrapper() -> Coroutine[Any, Any, str]:
        return later()

    with trio.fail_after(5):
        outcome = await tool(opaque_wrapper).invoke("{}")
    assert outcome.status == "error"
    assert outcome.output.startswith("opaque_wrapper failed: TypeError: Trio expected a sync")


# --- invoking: failures of the tool -------------------------------------------------------


async def test_exception_in_an_async_tool_is_an_error_outcome() -> None:
    error = ValueError("no such city: 'Atlantis'")

    @tool
    async def get_weather(city: str) -> str:
        raise error

    outcome = await get_weather.invoke('{"city": "Atlantis"}')
    assert outcome == ToolOutcome(
        status="error",
        output="get_weather failed: ValueError: no such city: 'Atlantis'",
        error="ValueError: no such city: 'Atlantis'",
    )
    assert outcome.exception is error
    assert "Traceback" not in outcome.output


async def test_exception_in_a_sync_tool_is_an_error_outcome() -> None:
    @tool
    def lookup() -> str:
        raise KeyError

    with trio.fail_after(5):
        outcome = await lookup.invoke("{}")
    assert (outcome.status, outcome.output, outcome.error) == (
        "error",
        "lookup failed: KeyError",
        "KeyError",
    )
    assert isinstance(outcome.exception, KeyError)


async def test_unserializable_return_value_is_an_error_outcome() -> None:
    value = {"when": Opaque()}

    @tool
    async def f() -> dict[str, Any]:
        return value

    outcome = await f.invoke("{}")
    assert outcome.status == "error"
    assert outcome.value is value
    assert outcome.output.startswith("f returned a value that cannot be sent: TypeError: ")
    assert "Opaque" in outcome.output


# --- timeouts and cancellation --------------------------------------------------------------


def sleeper(seconds: float, **options: Any) -> FunctionTool:
    @tool(**options)
    async def nap() -> str:
        await trio.sleep(seconds)
        return "rested"

    return nap


async def test_timeout_is_an_outcome(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    outcome = await sleeper(100, timeout=5).invoke("{}")
    assert outcome == ToolOutcome(
        status="timeout",
        output="nap took longer than 5 s and was stopped.",
        error="timed out after 5 s",
    )
    assert trio.current_time() - start == pytest.approx(5)


async def test_session_default_applies_when_the_tool_has_none(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    outcome = await sleeper(100).invoke("{}", default_timeout=0.25)
    assert outcome.output == "nap took longer than 0.25 s and was stopped."
    assert trio.current_time() - start == pytest.approx(0.25)


async def test_the_tool_timeout_wins_over_the_session_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome = await sleeper(100, timeout=30).invoke("{}", default_timeout=1)
    assert outcome.output == "nap took longer than 30 s and was stopped."
    assert (await sleeper(10, timeout=30).invoke("{}", default_timeout=1)).output == "rested"


async def test_no_timeout_lets_the_tool_run(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    outcome = await sleeper(3600).invoke("{}")
    assert outcome == ToolOutcome(status="ok", output="rested", value="rested")
    assert trio.current_time() - start == pytest.approx(3600)


async def test_timeout_of_a_sync_tool_abandons_its_thread() -> None:
    # Real time: a mock clock cannot jump over a thread.
    release = threading.Event()
    finished = threading.Event()

    @tool(timeout=0.05)
    def stuck() -> str:
        release.wait(timeout=5)
        finished.set()
        return "late"

    try:
        with trio.fail_after(2):
            outcome = await stuck.invoke("{}")
        assert outcome.status == "timeout"
        assert outcome.output == "stuck took longer than 0.05 s and was stopped."
        assert not finished.is_set()
    finally:
        release.set()


async def test_cancellation_by_the_caller_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcomes: list[ToolOutcome] = []
    with trio.move_on_after(1) as scope:
        outcomes.append(await sleeper(100, timeout=50).invoke("{}"))
    assert scope.cancelled_caught
    assert outcomes == []


# --- approval -------------------------------------------------------------------------------


def approval_tool(policy: Any) -> FunctionTool:
    @tool(needs_approval=policy)
    async def pay(amount: int, to: str = "shop") -> None: ...

    return pay


async def test_constant_approval_policies() -> None:
    assert await approval_tool(True).needs_approval_for('{"amount": 1}') is True
    assert await approval_tool(False).needs_approval_for("not json") is False


async def test_sync_and_async_approval_policies_see_parsed_arguments() -> None:
    seen: list[Mapping[str, Any]] = []

    def big(args: Mapping[str, Any]) -> bool:
        seen.append(args)
        return bool(args["amount"] > 100)

    async def big_async(args: Mapping[str, Any]) -> bool:
        await trio.lowlevel.checkpoint()
        return bool(args["amount"] > 100)

    for policy in (big, big_async):
        t = approval_tool(policy)
        assert await t.needs_approval_for('{"amount": 500}') is True
        assert await t.needs_approval_for('{"amount": 5}') is False
        assert await t.needs_approval_for({"amount": 500, "to": "x"}) is True
    assert seen[0] == {"amount": 500, "to": "shop"}


@pytest.mark.parametrize(
    ("policy", "arguments"),
    [
        (lambda args: False, '{"amount": "lots"}'),
        (lambda args: False, "{"),
        (lambda args: args["missing"], '{"amount": 1}'),
        (lambda args: None, '{"amount": 1}'),
        (lambda args: "no", '{"amount": 1}'),
    ],
)
async def test_approval_policies_fail_closed(policy: Any, arguments: str) -> None:
    assert await approval_tool(policy).needs_approval_for(arguments) is True


# --- parse once, run on what was parsed -----------------------------------------------------


async def test_run_takes_the_parsed_arguments_without_parsing_again() -> None:
    seen: list[tuple[int, Point]] = []

    @tool
    async def place(n: int, /, where: Point) -> str:
        seen.append((n, where))
        return "placed"

    parsed = place.parse_arguments('{"n": 2, "where": {"lat": 1}}')
    assert parsed == {"n": 2, "where": Point(1.0)}
    kept = dict(parsed)
    outcome = await place.run(parsed)
    assert outcome == ToolOutcome(status="ok", output="placed", value="placed")
    assert seen == [(2, Point(1.0))]
    assert parsed == kept  # run leaves the caller's arguments as they were
    # What was parsed is what runs: a value the JSON could not express reaches the tool.
    marker = Point(9.0, tags=["not from JSON"])
    await place.run({"n": 3, "where": marker})
    assert seen[-1][1] is marker


async def test_approval_and_run_see_the_same_parsed_values() -> None:
    decided: list[Mapping[str, Any]] = []
    ran: list[Point] = []

    def policy(args: Mapping[str, Any]) -> bool:
        decided.append(args)
        return True

    @tool(needs_approval=policy)
    async def go(where: Point) -> None:
        ran.append(where)

    parsed = go.parse_arguments('{"where": {"lat": 4}}')
    assert await go.needs_approval_for(parsed) is True
    await go.run(parsed)
    assert decided == [parsed]
    assert decided[0]["where"] is ran[0]


async def test_run_applies_the_timeouts(autojump_clock: trio.testing.MockClock) -> None:
    nap = sleeper(100)
    outcome = await nap.run(nap.parse_arguments(""), default_timeout=2)
    assert outcome.status == "timeout"
    assert outcome.output == "nap took longer than 2 s and was stopped."


async def test_run_of_an_unbound_method_tool_is_refused() -> None:
    with pytest.raises(TypeError, match="invoke it through an instance"):
        await Bot.greet.run({"name": "Ada"})
