"""JSON schemas from type hints, and the refusal of hints that have none."""

import enum
from collections.abc import Callable
from typing import Any, Literal, Optional

import attrs
import pytest

from framework.tools import (
    tool,
)

from .kinds import (
    POINT,
    Color,
    Level,
    Node,
    Point,
    Route,
    obj,
    schema_of,
)

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
ORIGIN = Point(1.0)


def test_schema_defaults() -> None:
    def f(
        city: str,
        unit: Literal["c", "f"] = "c",
        days: int = 3,
        color: Color = Color.BLUE,
        tags: list[str] = ["a"],  # noqa: B006
        origin: Point = ORIGIN,
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
