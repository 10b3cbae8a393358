"""Argument conversion: the model's JSON structured into parameter types, or refused."""

from typing import Any, Literal

import pytest

from framework.tools import (
    FunctionTool,
    ToolArgumentsError,
    ToolOutcome,
    tool,
)

from .kinds import (
    Checked,
    Color,
    Level,
    Point,
    Route,
    Size,
)


async def test_arguments_are_structured_and_defaults_filled() -> None:
    seen: dict[str, Any] = {}

    @tool
    async def f(
        pos: int,
        /,
        x: float,
        color: Color,
        route: Route,
        level: Level = Level.LOW,
        size: Size = Size.S,
        maybe: str | None = None,
        m: dict[str, Point] | None = None,
        *,
        kw: bool = False,
    ) -> str:
        seen.update(
            pos=pos, x=x, color=color, route=route, level=level, size=size, maybe=maybe, m=m, kw=kw
        )
        return "done"

    outcome = await f.invoke(
        '{"pos": 1, "x": 3, "color": "blue", "kw": true, "m": {"a": {"lat": 2}},'
        ' "level": 2, "size": "l",'
        ' "route": {"start": {"lat": 1.5}, "stops": [{"lat": 0, "tags": ["t"]}]}}'
    )
    assert outcome.status == "ok"
    assert seen == {
        "pos": 1,
        "x": 3.0,
        "color": Color.BLUE,
        "route": Route(start=Point(1.5), stops=[Point(0.0, tags=["t"])]),
        "level": Level.HIGH,
        "size": Size.L,
        "maybe": None,
        "m": {"a": Point(2.0)},
        "kw": True,
    }
    assert type(seen["x"]) is float
    assert type(seen["level"]) is Level
    assert type(seen["size"]) is Size


# --- invoking: bad arguments ----------------------------------------------------------------


def counting_tool() -> tuple[FunctionTool, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    @tool
    async def get_weather(
        city: str,
        days: int = 1,
        unit: Literal["c", "f"] = "c",
        color: Color | None = None,
        ratio: float = 1.0,
        flags: list[bool] | None = None,
        where: Point | None = None,
        named: dict[str, int] | None = None,
    ) -> str:
        calls.append({"city": city, "days": days, "unit": unit, "where": where, "named": named})
        return "sunny"

    return get_weather, calls


P = "Invalid arguments for get_weather: "


@pytest.mark.parametrize(
    ("arguments", "output"),
    [
        ("", P + "missing required argument @ $.city"),
        ("abc", P + "not valid JSON (unexpected character, expected a JSON value at char 0)"),
        ('{"city": "Paris",}', P + "not valid JSON (trailing comma is not allowed at char 16)"),
        ("NaN", P + "not valid JSON (unexpected character, expected a JSON value at char 0)"),
        ('["Paris"]', P + "expected a JSON object, got array"),
        ('"Paris"', P + 'expected a JSON object, got string "Paris"'),
        ("{}", P + "missing required argument @ $.city"),
        (
            '{"city": "Paris", "cty": "x"}',
            P + "unknown argument (expected one of: city, days, unit, color, ratio, flags, "
            "where, named) @ $.cty",
        ),
        ('{"city": 3}', P + "expected string, got integer 3 @ $.city"),
        ('{"city": 3.5}', P + "expected string, got number 3.5 @ $.city"),
        ('{"city": true}', P + "expected string, got boolean true @ $.city"),
        ('{"city": "P", "days": "3.5"}', P + 'expected integer, got string "3.5" @ $.days'),
        ('{"city": "P", "days": true}', P + "expected integer, got boolean true @ $.days"),
        ('{"city": "P", "days": 1.5}', P + "expected integer, got number 1.5 @ $.days"),
        ('{"city": "P", "days": null}', P + "expected integer, got null @ $.days"),
        ('{"city": "P", "ratio": "2x"}', P + 'expected number, got string "2x" @ $.ratio'),
        ('{"city": "P", "ratio": false}', P + "expected number, got boolean false @ $.ratio"),
        ('{"city": "P", "unit": "k"}', P + 'expected one of "c", "f", got string "k" @ $.unit'),
        (
            '{"city": "P", "color": "green"}',
            P + 'expected one of "red", "blue" or null, got string "green" @ $.color',
        ),
        (
            '{"city": "P", "flags": [true, "yes", 1]}',
            P + 'expected boolean, got string "yes" @ $.flags[1]; '
            "expected boolean, got integer 1 @ $.flags[2]",
        ),
        (
            '{"city": "P", "flags": "true"}',
            P + 'expected array or null, got string "true" @ $.flags',
        ),
        ('{"city": "P", "where": {}}', P + "missing required field @ $.where.lat"),
        (
            '{"city": "P", "where": {"lat": "north", "x": 0}}',
            P + 'expected number, got string "north" @ $.where.lat; unknown field(s) x @ $.where',
        ),
        (
            '{"city": "P", "where": {"lat": 1, "tags": [2]}}',
            P + "expected string, got integer 2 @ $.where.tags[0]",
        ),
        ('{"city": "P", "where": [1]}', P + "expected object or null, got array @ $.where"),
        (
            '{"city": "P", "named": {"a": 1, "b": "2.5"}}',
            P + "expected integer, got string \"2.5\" @ $.named['b']",
        ),
    ],
)
async def test_bad_arguments_are_one_clear_outcome(arguments: str, output: str) -> None:
    t, calls = counting_tool()
    outcome = await t.invoke(arguments)
    assert outcome == ToolOutcome(
        status="bad_arguments", output=output, error=output.removeprefix(P)
    )
    assert not outcome.ok
    assert calls == []


async def test_booleans_do_not_pass_for_integer_choices() -> None:
    @tool
    async def pick(n: Literal[1, 2], level: Level) -> str:
        return f"{n} {level!r}"

    assert (await pick.invoke('{"n": 1, "level": 2}')).output == "1 <Level.HIGH: 2>"
    outcome = await pick.invoke('{"n": true, "level": true}')
    assert outcome.output == (
        "Invalid arguments for pick: expected one of 1, 2, got boolean true @ $.n; "
        "expected one of 1, 2, got boolean true @ $.level"
    )


async def test_every_argument_problem_is_reported_at_once() -> None:
    t, calls = counting_tool()
    outcome = await t.invoke('{"days": "two", "unit": "k"}')
    assert outcome.output == (
        P + "missing required argument @ $.city; "
        'expected integer, got string "two" @ $.days; '
        'expected one of "c", "f", got string "k" @ $.unit'
    )
    assert calls == []


async def test_long_values_are_shortened_in_messages() -> None:
    t, _ = counting_tool()
    outcome = await t.invoke('{"city": "' + "y" * 50 + '", "days": "' + "x" * 50 + '"}')
    assert outcome.output == P + 'expected integer, got string "' + "x" * 36 + "... @ $.days"


async def test_a_tool_without_parameters_refuses_arguments() -> None:
    @tool
    async def ping() -> str:
        return "pong"

    assert (await ping.invoke("")).output == "pong"
    assert (await ping.invoke(" {} ")).output == "pong"

    outcome = await ping.invoke('{"x": 1}')
    assert outcome.output == "Invalid arguments for ping: unknown argument (it takes none) @ $.x"


async def test_attrs_validator_failure_is_a_bad_argument() -> None:
    @tool
    async def f(c: Checked) -> None: ...

    outcome = await f.invoke('{"c": {"n": 0}}')
    assert outcome.status == "bad_arguments"
    assert outcome.output == (
        "Invalid arguments for f: invalid value (ValueError: 'n' must be > 0: 0) @ $.c"
    )


def test_parse_arguments_raises_with_the_problems() -> None:
    t, _ = counting_tool()
    assert t.parse_arguments('{"city": "P"}') == {
        "city": "P",
        "days": 1,
        "unit": "c",
        "color": None,
        "ratio": 1.0,
        "flags": None,
        "where": None,
        "named": None,
    }
    with pytest.raises(ToolArgumentsError) as info:
        t.parse_arguments('{"days": 2.5}')
    assert info.value.tool_name == "get_weather"
    assert info.value.problems == (
        "missing required argument @ $.city",
        "expected integer, got number 2.5 @ $.days",
    )
