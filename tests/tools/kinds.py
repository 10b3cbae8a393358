"""Types and helpers the tools tests share: hints of every supported kind, bots."""

import enum
from collections.abc import Callable
from typing import Any

import attrs
import jsonschema

from framework.tools import FunctionTool, tool

# --- types used in signatures -----------------------------------------------------------


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
    return checked_schema(tool(fn))


def obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


POINT = obj(
    {
        "lat": {"type": "number"},
        "lon": {"type": "number", "description": "Degrees east.", "default": 0.0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    ["lat"],
)


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


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


def checked_schema(t: FunctionTool) -> dict[str, Any]:
    """The tool's parameters schema, after checking it is valid JSON Schema (2020-12)."""
    jsonschema.Draft202012Validator.check_schema(t.parameters)
    return t.parameters


def one_argument(hint: Any) -> FunctionTool:
    """A tool whose one parameter, ``x``, has the type ``hint``."""

    def f(x: Any) -> None: ...

    f.__annotations__["x"] = hint
    return tool(f)
