"""Return values rendered as the model's text."""

from typing import Any

import pytest

from framework.tools import (
    ToolOutcome,
    tool,
)

from .kinds import (
    Color,
    Forecast,
    Level,
    Opaque,
    Point,
)


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
