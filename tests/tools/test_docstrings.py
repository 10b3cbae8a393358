"""Descriptions from Google-style docstrings, and the wire definition of a tool."""

from typing import Any

from framework.protocol import UNSET, RealtimeFunctionTool, to_dict
from framework.tools import (
    tool,
)

from .kinds import (
    obj,
)


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
