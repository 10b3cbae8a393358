"""Function tool ``parameters`` are checked as JSON Schema (issue 11, item 4).

A schema the model could not follow is refused when the tool is declared,
with an error naming the tool and where in its schema the mistake is, instead
of being accepted and failing later, far from its cause.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from framework.engine import Engine, Rules

from .helpers import WEATHER_RULES, memory_session


def _tool(parameters: object, name: str = "get_weather") -> dict[str, Any]:
    return {"type": "function", "name": name, "description": "Weather.", "parameters": parameters}


@pytest.mark.parametrize(
    ("parameters", "path", "says"),
    [
        ({"type": "nonsense"}, "type", "'nonsense'"),
        ({"type": "object", "properties": [{"city": {"type": "string"}}]}, "properties", "object"),
        ({"type": "object", "required": "city"}, "required", "array"),
        (
            {"type": "object", "properties": {"city": {"type": "strin"}}},
            "properties.city.type",
            "'strin'",
        ),
        ({"type": "object", "properties": {"n": {"minimum": "3"}}}, "properties.n.minimum", "'3'"),
    ],
)
async def test_a_bad_schema_is_refused_naming_tool_and_path(
    parameters: object, path: str, says: str
) -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES))
    with trio.fail_after(10):
        async with memory_session(engine) as (client, _):
            fine = _tool({"type": "object", "properties": {}}, name="ok_tool")
            await client.send(
                {
                    "type": "session.update",
                    "event_id": "upd",
                    "session": {"type": "realtime", "tools": [fine, _tool(parameters)]},
                }
            )
            error = await client.error()
            assert error["code"] == "invalid_function_parameters"
            assert error["param"] == f"session.tools[1].parameters.{path}"
            assert "'get_weather'" in error["message"] and says in error["message"]
            assert error["event_id"] == "upd"
            # Refused as a whole: the session still has no tools.
            await client.send({"type": "session.update", "session": {"type": "realtime"}})
            updated = (await client.until("session.updated"))[-1]["session"]
            assert updated["tools"] == []


async def test_response_tools_are_checked_too() -> None:
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES))
    with trio.fail_after(10):
        async with memory_session(engine) as (client, _):
            bad = _tool({"type": "object", "properties": {"city": {"type": 5}}})
            await client.send({"type": "response.create", "response": {"tools": [bad]}})
            error = await client.error()
            assert error["param"] == "response.tools[0].parameters.properties.city.type"
            await client.nothing_for(0.2)  # and no response was started


async def test_rich_valid_schemas_are_accepted() -> None:
    schema = {
        "type": "object",
        "$defs": {"money": {"type": "number", "minimum": 0}},
        "properties": {
            "amount": {"$ref": "#/$defs/money"},
            "currency": {"type": "string", "enum": ["EUR", "USD"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        },
        "required": ["amount"],
        "additionalProperties": False,
    }
    engine = Engine(rules=Rules.from_toml(WEATHER_RULES))
    with trio.fail_after(10):
        async with memory_session(engine) as (client, _):
            await client.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "tools": [_tool(schema)]},
                }
            )
            updated = (await client.until("session.updated"))[-1]["session"]
            assert updated["tools"][0]["parameters"] == schema
