"""Function tools: schemas from type hints, strict arguments, and one outcome per call.

Timeouts run on trio's ``autojump_clock`` with async tools; sync tools run in
worker threads, which a mock clock cannot jump, so their tests use real time
bounded by ``trio.fail_after``.
"""

import enum
import functools
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal, Optional

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from framework.protocol import UNSET, RealtimeFunctionTool, to_dict
from framework.tool import (
    FunctionTool,
    ToolArgumentsError,
    ToolOutcome,
    tool,
    tools_of,
)

# --- types used in signatures -------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Size(enum.StrEnum):
    S = "s"
    L = "l"


@attrs.frozen
class Point:
    lat: float
    lon: float = attrs.field(default=0.0, metadata={"description": "Degrees east."})
    tags: list[str] = attrs.Factory(list)


@attrs.frozen
class Route:
    start: Point
    stops: list[Point]


@attrs.frozen
class Checked:
    n: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen
class Forecast:
    city: str
    color: Color
    temps: list[float]


@attrs.define
class Node:
    child: "Node | None" = None


def schema_of(fn: Callable[..., Any]) -> dict[str, Any]:
    return tool(fn).parameters


def obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


# --- schemas ------------------------------------------------------------------------------


def test_schema_of_scalars() -> None:
    def f(s: str, i: int, x: float, b: bool) -> None: ...

    assert schema_of(f) == obj(
        {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
        },
        ["s", "i", "x", "b"],
    )


def test_schema_without_parameters() -> None:
    def f() -> None: ...

    assert schema_of(f) == obj({}, [])


def test_schema_of_literals() -> None:
    def f(unit: Literal["c", "f"], n: Literal[1, 2], mixed: Literal["a", 1]) -> None: ...

    assert schema_of(f) == obj(
        {
            "unit": {"type": "string", "enum": ["c", "f"]},
            "n": {"type": "integer", "enum": [1, 2]},
            "mixed": {"enum": ["a", 1]},
        },
        ["unit", "n", "mixed"],
    )


def test_schema_of_enums() -> None:
    def f(color: Color, level: Level) -> None: ...

    assert schema_of(f) == obj(
        {
            "color": {"type": "string", "enum": ["red", "blue"]},
            "level": {"type": "integer", "enum": [1, 2]},
        },
        ["color", "level"],
    )


def test_schema_of_optionals() -> None:
    def f(a: int | None, b: Optional[str], c: Literal["x"] | None = None) -> None:  # noqa: UP045
        ...

    assert schema_of(f) == obj(
        {
            "a": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "b": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "c": {
                "anyOf": [{"type": "string", "enum": ["x"]}, {"type": "null"}],
                "default": None,
            },
        },
        ["a", "b"],
    )


def test_schema_of_lists_and_dicts() -> None:
    def f(xs: list[int], m: dict[str, float], nested: list[dict[str, list[bool]]]) -> None: ...

    assert schema_of(f) == obj(
        {
            "xs": {"type": "array", "items": {"type": "integer"}},
            "m": {"type": "object", "additionalProperties": {"type": "number"}},
            "nested": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "boolean"}},
                },
            },
        },
        ["xs", "m", "nested"],
    )


POINT = obj(
    {
        "lat": {"type": "number"},
        "lon": {"type": "number", "description": "Degrees east.", "default": 0.0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    ["lat"],
)


def test_schema_of_attrs_classes() -> None:
    def f(route: Route, where: Point | None = None) -> None: ...

    assert schema_of(f) == obj(
        {
            "route": obj(
                {"start": POINT, "stops": {"type": "array", "items": POINT}},
                ["start", "stops"],
            ),
            "where": {"anyOf": [POINT, {"type": "null"}], "default": None},
        },
        ["route"],
    )


NO_JSON = object()


def test_schema_defaults() -> None:
    def f(
        city: str,
        unit: Literal["c", "f"] = "c",
        days: int = 3,
        color: Color = Color.BLUE,
        tags: list[str] = ["a"],  # noqa: B006
        origin: Point = Point(1.0),
        marker: str = NO_JSON,  # type: ignore[assignment]
    ) -> None: ...

    # A default without a JSON form is left out of the schema, but stays optional.
    assert schema_of(f) == obj(
        {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
            "days": {"type": "integer", "default": 3},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "blue"},
            "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
            "origin": {**POINT, "default": {"lat": 1.0, "lon": 0.0, "tags": []}},
            "marker": {"type": "string"},
        },
        ["city"],
    )


def test_string_annotations_are_resolved() -> None:
    def f(x: "int", p: "Point | None") -> None: ...

    assert schema_of(f) == obj(
        {"x": {"type": "integer"}, "p": {"anyOf": [POINT, {"type": "null"}]}}, ["x", "p"]
    )

    def g(x: "Undefined") -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match=r"Tool g: cannot resolve its type hints: .*Undefined"):
        tool(g)


def test_docstring_gives_the_description_and_parameter_docs() -> None:
    def get_weather(city: str, unit: str = "c", days: int = 1) -> None:
        """Current weather for a city,
        as seen from the sky.

        A second paragraph the model does not need.

        Args:
            city (str): The city's name,
                in English.
            unit: "c" or "f".
            ghost: Not a parameter; ignored.

        Returns:
            Nothing.
        """

    t = tool(get_weather)
    assert t.description == "Current weather for a city, as seen from the sky."
    assert t.parameters["properties"] == {
        "city": {"type": "string", "description": "The city's name, in English."},
        "unit": {"type": "string", "description": '"c" or "f".', "default": "c"},
        "days": {"type": "integer", "default": 1},
    }


def test_docstring_summary_stops_at_a_section() -> None:
    def f(x: int) -> None:
        """Adds one.
        Args:
            x: The number.
        """

    t = tool(f)
    assert t.description == "Adds one."
    assert t.parameters["properties"]["x"]["description"] == "The number."


def test_description_option_wins_over_the_docstring() -> None:
    def f() -> None:
        """From the docstring."""

    assert tool(description="Given.")(f).description == "Given."


def test_no_docstring_means_no_description_on_the_wire() -> None:
    def f() -> None: ...

    t = tool(f)
    assert t.description == ""
    assert t.definition().description is UNSET


def test_definition_is_the_wire_object() -> None:
    @tool(name="get-weather")
    async def get_weather(city: str) -> str:
        """Current weather."""
        return city

    wire = get_weather.definition()
    assert wire == RealtimeFunctionTool(
        type="function",
        name="get-weather",
        description="Current weather.",
        parameters=obj({"city": {"type": "string"}}, ["city"]),
    )
    assert to_dict(wire) == {
        "type": "function",
        "name": "get-weather",
        "description": "Current weather.",
        "parameters": obj({"city": {"type": "string"}}, ["city"]),
    }
    # Editing the wire object leaves the tool alone.
    params: Any = wire.parameters
    params["properties"].clear()
    assert get_weather.parameters["properties"] == {"city": {"type": "string"}}


# --- decoration-time errors ---------------------------------------------------------------


def _unannotated(x):  # type: ignore[no-untyped-def]
    return x


@pytest.mark.parametrize(
    ("annotation", "why"),
    [
        (object, "unsupported type object"),
        (Any, "unsupported type Any"),
        (Callable[[int], int], "unsupported type collections.abc.Callable"),
        (list, "give the item type"),
        (dict[int, str], "keys must be str"),
        (int | str, "the only union supported is X | None"),
        (int | str | None, "the only union supported is X | None"),
        (tuple[int, int], "unsupported type tuple[int, int]"),
        (Literal[1.5], "Literal values must be str, int or bool"),
        (type(None), "unsupported type NoneType"),
    ],
)
def test_unsupported_annotation_names_tool_and_parameter(annotation: Any, why: str) -> None:
    def lookup(city: str, bad: int) -> None: ...

    lookup.__annotations__["bad"] = annotation
    with pytest.raises(TypeError, match=r"^Tool lookup: parameter 'bad' ") as info:
        tool(lookup)
    assert why in str(info.value)
    assert "Supported: str, int, float, bool" in str(info.value)


def test_unsupported_field_of_an_attrs_class_names_the_field() -> None:
    @attrs.frozen
    class Bad:
        ok: int
        when: object

    def f(arg: list[Bad]) -> None: ...

    with pytest.raises(TypeError, match=r"Tool f: parameter 'arg' \(field .*Bad\.when\)"):
        tool(f)


def test_recursive_attrs_class_is_refused() -> None:
    def f(node: Node) -> None: ...

    with pytest.raises(TypeError, match="recursive type Node"):
        tool(f)


def test_enum_with_unsupported_values_is_refused() -> None:
    class Pair(enum.Enum):
        A = (1, 2)

    def f(p: Pair) -> None: ...

    with pytest.raises(TypeError, match="Enum values must be str or int"):
        tool(f)


def test_missing_annotation_and_star_args_are_refused() -> None:
    with pytest.raises(TypeError, match="parameter 'x' has no type annotation"):
        tool(_unannotated)

    def star(*names: str) -> None: ...

    with pytest.raises(TypeError, match=r"parameter 'names': \*args and \*\*kwargs"):
        tool(star)


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


# --- methods ------------------------------------------------------------------------------


class Bot:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    @tool
    async def greet(self, name: str) -> str:
        """Greets someone."""
        return f"{self.greeting}, {name}"

    def not_a_tool(self) -> None: ...

    @tool(name="shout")
    def loud(self, text: str) -> str:
        return f"{self.greeting.upper()} {text.upper()}"


class LoudBot(Bot):
    @tool
    async def whisper(self, text: str) -> str:
        return text.lower()

    @tool
    async def greet(self, name: str) -> str:
        return f"hey {name}"


class QuietBot(Bot):
    def loud(self, text: str) -> str:  # type: ignore[override]
        return text


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


# --- invoking: success ----------------------------------------------------------------------


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


@pytest.mark.parametrize(
    ("value", "output"),
    [
        ("plain text", "plain text"),
        ("", ""),
        (None, "null"),
        (42, "42"),
        (2.5, "2.5"),
        (True, "true"),
        ([1, "a", None], '[1,"a",null]'),
        ((1, 2), "[1,2]"),
        ({"temp": 21, "sky": "clear"}, '{"temp":21,"sky":"clear"}'),
        ({1: "a"}, '{"1":"a"}'),
        (Color.RED, "red"),
        (Level.HIGH, "2"),
        (
            Forecast(city="Paris", color=Color.BLUE, temps=[1.5, 2.0]),
            '{"city":"Paris","color":"blue","temps":[1.5,2.0]}',
        ),
        ([Point(1.0)], '[{"lat":1.0,"lon":0.0,"tags":[]}]'),
        (Opaque(), "<opaque thing>"),
        ({1, 2}, "{1, 2}"),
    ],
)
async def test_return_values_become_output_text(value: Any, output: str) -> None:
    @tool
    async def f() -> Any:
        return value

    outcome = await f.invoke("{}")
    assert outcome == ToolOutcome(status="ok", output=output, value=value)
    assert outcome.ok


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
        ('{"city": "P", "days": "3"}', P + 'expected integer, got string "3" @ $.days'),
        ('{"city": "P", "days": true}', P + "expected integer, got boolean true @ $.days"),
        ('{"city": "P", "days": 1.5}', P + "expected integer, got number 1.5 @ $.days"),
        ('{"city": "P", "days": null}', P + "expected integer, got null @ $.days"),
        ('{"city": "P", "ratio": "2"}', P + 'expected number, got string "2" @ $.ratio'),
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
            '{"city": "P", "where": {"lat": "1", "x": 0}}',
            P + 'expected number, got string "1" @ $.where.lat; unknown field(s) x @ $.where',
        ),
        (
            '{"city": "P", "where": {"lat": 1, "tags": [2]}}',
            P + "expected string, got integer 2 @ $.where.tags[0]",
        ),
        ('{"city": "P", "where": [1]}', P + "expected object or null, got array @ $.where"),
        (
            '{"city": "P", "named": {"a": 1, "b": "2"}}',
            P + "expected integer, got string \"2\" @ $.named['b']",
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
    outcome = await t.invoke('{"days": "2", "unit": "k"}')
    assert outcome.output == (
        P + "missing required argument @ $.city; "
        'expected integer, got string "2" @ $.days; '
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
