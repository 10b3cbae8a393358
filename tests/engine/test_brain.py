"""The scripted brain: typed arguments, reported mistakes, several messages per reply.

Most tests ask the brain directly, with the context a response would give it;
the last ones go over a real WebSocket to show what a client receives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from framework.engine import (
    ArgumentError,
    BrainError,
    BrainOutput,
    CallFunction,
    CallMcp,
    Engine,
    Rules,
    RulesError,
    Say,
    ScriptedBrain,
    coerce,
    open_engine,
)
from framework.engine._brain import BrainRequest
from framework.engine._rules import DEFAULT_FALLBACK
from framework.protocol import (
    ConversationItem,
    McpListedTool,
    McpTool,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    RealtimeFunctionTool,
    RealtimeToolsConfigUnion,
    from_dict,
)

from .helpers import connect, types, user_item


def user(text: str) -> RealtimeConversationItemUserMessage:
    return from_dict(user_item(text), RealtimeConversationItemUserMessage)


def function(name: str, **properties: Any) -> RealtimeFunctionTool:
    return RealtimeFunctionTool(
        type="function",
        name=name,
        parameters={"type": "object", "properties": properties},
    )


async def ask(
    rules: str,
    items: Sequence[ConversationItem],
    tools: Sequence[RealtimeToolsConfigUnion] = (),
    *,
    memory: dict[str, Any] | None = None,
    mcp: dict[str, list[McpListedTool]] | None = None,
    tool_choice: Any = "auto",
) -> Sequence[BrainOutput]:
    brain = ScriptedBrain(Rules.from_toml(rules, source="test.toml"))
    request = BrainRequest(
        instructions="",
        items=items,
        tools=tools,
        tool_choice=tool_choice,
        memory={} if memory is None else memory,
        mcp_tools=mcp or {},
    )
    return await brain.respond(request)


def arguments(outputs: Sequence[BrainOutput]) -> Any:
    (call,) = [o for o in outputs if isinstance(o, (CallFunction, CallMcp))]
    return json.loads(call.arguments)


# --- arguments fit the tool's schema ---------------------------------------------------

PRICE_RULES = r"""
[[rule]]
when = "pay (?P<amount>\\S+) (?P<currency>\\w+)(?: urgent (?P<urgent>\\w+))?"
call = "pay"
args = { amount = "{amount}", currency = "{currency}", urgent = "{urgent}" }
"""


async def test_a_captured_number_reaches_a_number_parameter_as_a_number() -> None:
    tool = function(
        "pay",
        amount={"type": "number"},
        currency={"type": "string", "enum": ["EUR", "USD"]},
        urgent={"type": "boolean"},
    )
    outputs = await ask(PRICE_RULES, [user("pay 12.5 eur urgent yes")], [tool])
    assert arguments(outputs) == {"amount": 12.5, "currency": "EUR", "urgent": True}
    # An optional group that took no part in the match is empty, which is no
    # boolean: the rule's author hears of it, the tool never gets a guess.
    with pytest.raises(BrainError) as caught:
        await ask(PRICE_RULES, [user("pay 12 usd")], [tool])
    assert str(caught.value) == (
        "test.toml: rule 1: cannot call pay: argument 'urgent' must be true or false, "
        "got ''; fix the rule's regex or args"
    )


@pytest.mark.parametrize(
    ("schema", "text", "expected"),
    [
        ({"type": "number"}, "12.5", 12.5),
        ({"type": "number"}, "12", 12),
        ({"type": "number"}, " -3e2 ", -300.0),
        ({"type": "integer"}, "42", 42),
        ({"type": "integer"}, "42.0", 42),
        ({"type": "boolean"}, "Yes", True),
        ({"type": "boolean"}, "false", False),
        ({"type": ["integer", "null"]}, "", None),
        ({"type": ["integer", "null"]}, "7", 7),
        ({"type": "string"}, "12", "12"),
        ({}, "anything", "anything"),
        ({"type": "array", "items": {"type": "integer"}}, "1, 2,3", [1, 2, 3]),
        ({"type": "array", "items": {"type": "number"}}, "[1.5, 2]", [1.5, 2]),
        ({"type": "array", "items": {"type": "string"}}, "apples, pears", ["apples", "pears"]),
        (
            {"type": "object", "properties": {"n": {"type": "integer"}}},
            '{"n": "3"}',
            {"n": 3},
        ),
        ({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, "true", True),
        ({"type": "string", "enum": ["celsius", "fahrenheit"]}, "Celsius", "celsius"),
        ({"const": "metric"}, "METRIC", "metric"),
    ],
)
def test_coercion_of_one_string(schema: dict[str, Any], text: str, expected: Any) -> None:
    value = coerce(text, schema)
    assert value == expected
    assert type(value) is type(expected)


def test_coercion_goes_down_nested_objects_arrays_and_refs() -> None:
    schema = {
        "type": "object",
        "properties": {
            "order": {"$ref": "#/$defs/Order"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "$defs": {
            "Order": {
                "type": "object",
                "properties": {
                    "quantity": {"type": "integer"},
                    "lines": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "price": {"type": "number"},
                                "gift": {"type": "boolean"},
                            },
                        },
                    },
                },
                "required": ["quantity"],
            }
        },
    }
    value = {
        "order": {"quantity": "2", "lines": [{"price": "9.99", "gift": "no"}, "{}"]},
        "tags": "red, blue",
    }
    assert coerce(value, schema) == {
        "order": {"quantity": 2, "lines": [{"price": 9.99, "gift": False}, {}]},
        "tags": ["red", "blue"],
    }


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        ({"type": "number"}, "twelve", "argument 'value' must be a number, got 'twelve'"),
        ({"type": "number"}, "nan", "argument 'value' must be a number, got 'nan'"),
        ({"type": "integer"}, "12.5", "argument 'value' must be an integer, got '12.5'"),
        (
            {"type": ["integer", "null"]},
            "x",
            "argument 'value' must be an integer or null, got 'x'",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "number"}}}},
            {"a": "1, two"},
            "argument 'a[1]' must be a number, got 'two'",
        ),
        (
            {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
            {"b": "1"},
            "there is no argument 'b'",
        ),
        (
            {"type": "object", "properties": {"a": {}}, "required": ["a"]},
            {},
            "the required argument 'a' is missing",
        ),
        (
            {"enum": ["low", "high"]},
            "medium",
            "argument 'value' must be one of \"low\", \"high\", got 'medium'",
        ),
    ],
)
def test_coercion_errors_name_the_argument(schema: Any, value: Any, message: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        coerce(value, schema)
    assert str(caught.value) == message


def test_values_the_rules_file_typed_are_sent_as_written() -> None:
    # A TOML integer for a string parameter stays an integer: a rules file can
    # still send wrong arguments on purpose, to test a client's error handling.
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert coerce({"city": 42}, schema) == {"city": 42}


async def test_mcp_arguments_fit_the_listed_input_schema() -> None:
    rules = r"""
[[rule]]
when = "top (?P<n>\\d+) about (?P<topic>\\w+)"
call = "docs.search"
args = { query = { topic = "{topic}", limit = "{n}" } }
"""
    schema = {
        "type": "object",
        "properties": {
            "query": {
                "type": "object",
                "properties": {"topic": {"type": "string"}, "limit": {"type": "integer"}},
            }
        },
    }
    tools = [McpTool(type="mcp", server_label="docs", server_url="http://127.0.0.1:9/mcp")]
    listed = {"docs": [McpListedTool(name="search", input_schema=schema)]}
    outputs = await ask(rules, [user("top 3 about trio")], tools, mcp=listed)
    assert arguments(outputs) == {"query": {"topic": "trio", "limit": 3}}


# --- mistakes are reported, at load when the file alone tells ------------------------------


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            '[[rule]]\nwhen = "weather in (?P<city>\\\\w+)"\nsay = "In {town} it rains."',
            "test.toml: rule 1: unknown placeholder {town} in 'In {town} it rains.'; "
            "the placeholders here are: {city}",
        ),
        (
            '[[rule]]\nwhen = "pay"\ncall = "pay"\nargs = { amount = "{amount}" }',
            "test.toml: rule 1: unknown placeholder {amount} in '{amount}'; "
            "the placeholders here are: none",
        ),
        (
            '[[rule]]\nwhen = "(?P<a>x)"\ncalls = [{ name = "f", args = { l = ["{b}"] } }]',
            "test.toml: rule 1: unknown placeholder {b} in '{b}'; the placeholders here are: {a}",
        ),
        (
            '[[rule]]\nwhen = "x"\nsay = ["One moment.", "Done {"]',
            "test.toml: rule 1: Single '{' encountered in format string in 'Done {'; "
            "write {{ and }} for literal braces",
        ),
        (
            '[[rule]]\nafter = "f"\nsay = "{output.__class__}"',
            "test.toml: rule 1: {output.__class__} in '{output.__class__}' is not a "
            "placeholder; use {name} or {output[key]}",
        ),
        (
            '[[rule]]\nafter = "f"\nsay = "{city[0]}"',
            "test.toml: rule 1: {city[0]} in '{city[0]}': only {output[key]} reads fields",
        ),
        (
            'fallback = "Sorry {name}."',
            "test.toml: fallback: unknown placeholder {name} in 'Sorry {name}.'; "
            "the placeholders here are: none",
        ),
        (
            'denied = "No {tool}."',
            "test.toml: denied: unknown placeholder {tool} in 'No {tool}.'; "
            "the placeholders here are: {name}, {reason}, {server_label}",
        ),
        (
            '[[rule]]\nwhen = "x"\nsay = ["fine", 3]',
            "test.toml: rule 1: 'say' must be a string or a list of strings",
        ),
        (
            '[[rule]]\nwhen = "x"\nsay = []',
            "test.toml: rule 1: needs 'say' or 'call'",
        ),
        (
            '[[rule]]\nwhen = "x"\ncalls = [{ name = "f", arg = {} }]',
            "test.toml: rule 1: unknown keys ['arg'] in a call",
        ),
        ('phrases = "hello"', "test.toml: phrases must be a list of strings"),
        ("phrases = [1]", "test.toml: phrases must be a list of strings"),
    ],
)
def test_mistakes_the_file_alone_shows_fail_the_load(rules: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        Rules.from_toml(rules, source="test.toml")
    assert str(caught.value) == message


def test_phrases_are_kept_for_the_transcriber() -> None:
    rules = Rules.from_toml('phrases = ["Hello there", "Good bye."]\n')
    assert rules.phrases == ("Hello there", "Good bye.")
    assert Rules.from_toml("").phrases == ()


def test_a_non_utf8_rules_file_says_so(tmp_path: Any) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b'fallback = "caf\xe9"\n')
    with pytest.raises(RulesError) as caught:
        Rules.from_file(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 15); save it as UTF-8"


WEATHER = r"""
[[rule]]
when = "weather in (?P<city>\\w+)"
call = "get_weather"
args = { city = "{city}" }

[[rule]]
after = "get_weather"
say = "In {city} it is {output[sky]} and {town}."
"""


async def test_calling_a_tool_the_session_does_not_declare_is_an_error() -> None:
    with pytest.raises(BrainError) as caught:
        await ask(WEATHER, [user("weather in Oslo")], [function("lookup")])
    assert str(caught.value) == (
        "test.toml: rule 1 calls get_weather, which this session does not offer "
        "(it offers: lookup); declare the tool in the session or change the rule"
    )
    with pytest.raises(BrainError) as caught:
        mcp_rules = WEATHER.replace('call = "get_weather"', 'call = "docs.weather"')
        await ask(mcp_rules, [user("weather in Oslo")])
    assert str(caught.value) == (
        "test.toml: rule 1 calls docs.weather, which this session does not offer "
        "(it offers: none); declare the tool in the session or change the rule"
    )


async def test_with_tool_choice_none_a_calling_rule_is_passed_over() -> None:
    # The client forbade calls: the model answers without them (here, the fallback).
    outputs = await ask(WEATHER, [user("weather in Oslo")], [], tool_choice="none")
    assert outputs == [Say(DEFAULT_FALLBACK)]


async def test_an_unknown_placeholder_in_a_reply_is_an_error_when_answered() -> None:
    call = RealtimeConversationItemFunctionCall(
        name="get_weather", arguments='{"city": "Oslo"}', call_id="call_1"
    )
    output = RealtimeConversationItemFunctionCallOutput(call_id="call_1", output='{"sky": "grey"}')
    with pytest.raises(BrainError) as caught:
        await ask(WEATHER, [user("weather in Oslo"), call, output])
    assert str(caught.value) == (
        "test.toml: rule 2: unknown placeholder {town}; the placeholders here are: "
        "{city}, {output}; fix the rule"
    )
    rules = WEATHER.replace(" and {town}", "")
    outputs = await ask(rules, [user("weather in Oslo"), call, output])
    assert outputs == [Say("In Oslo it is grey.")]
    plain = RealtimeConversationItemFunctionCallOutput(call_id="call_1", output="grey")
    with pytest.raises(BrainError) as caught:
        await ask(rules, [user("weather in Oslo"), call, plain])
    assert str(caught.value) == (
        "test.toml: rule 2: {output[sky]}: the output is not JSON: 'grey'; fix the rule"
    )


async def test_typed_arguments_read_back_in_the_reply() -> None:
    rules = r"""
[[rule]]
after = "pay"
say = "Paid {amount} ({urgent}, {tags})."
"""
    call = RealtimeConversationItemFunctionCall(
        name="pay", arguments='{"amount": 12.5, "urgent": true, "tags": ["a"]}', call_id="c"
    )
    output = RealtimeConversationItemFunctionCallOutput(call_id="c", output="ok")
    outputs = await ask(rules, [user("pay"), call, output])
    assert outputs == [Say('Paid 12.5 (true, ["a"]).')]


# --- several messages in one response --------------------------------------------------------

PREAMBLE = r"""
[[rule]]
when = "weather in (?P<city>\\w+)"
say = "One moment, I'll look at {city}."
call = "get_weather"
args = { city = "{city}" }

[[rule]]
after = "get_weather"
say = ["Here it is.", "In {city} it is {output}."]

[[rule]]
when = "story"
say = ["Once upon a time.", "The end."]
"""


async def test_a_rule_says_several_messages() -> None:
    assert await ask(PREAMBLE, [user("a story please")]) == [
        Say("Once upon a time."),
        Say("The end."),
    ]
    tool = function("get_weather", city={"type": "string"})
    outputs = await ask(PREAMBLE, [user("weather in Oslo")], [tool])
    assert outputs == [
        Say("One moment, I'll look at Oslo."),
        CallFunction("get_weather", '{"city": "Oslo"}', {"city": "Oslo"}),
    ]


async def test_several_answers_keep_their_messages() -> None:
    calls = [
        RealtimeConversationItemFunctionCall(
            name="get_weather", arguments=json.dumps({"city": city}), call_id=city
        )
        for city in ("Oslo", "Rome")
    ]
    outputs = [
        RealtimeConversationItemFunctionCallOutput(call_id=city, output=sky)
        for city, sky in (("Oslo", "cold"), ("Rome", "warm"))
    ]
    items = [user("weather in Oslo and Rome"), calls[0], calls[1], outputs[0], outputs[1]]
    assert await ask(PREAMBLE, items) == [
        Say("Here it is."),
        Say("In Oslo it is cold."),
        Say("Here it is."),
        Say("In Rome it is warm."),
    ]
    # One message per answer: the answers share one message, as before.
    single = PREAMBLE.replace('["Here it is.", "In {city} it is {output}."]', '"{city}: {output}."')
    assert await ask(single, items) == [Say("Oslo: cold. Rome: warm.")]


# --- over the wire ------------------------------------------------------------------------------


@pytest.fixture
async def url() -> AsyncIterator[str]:
    rules = PREAMBLE + PRICE_RULES
    async with open_engine(Engine(rules=Rules.from_toml(rules))) as running:
        yield running.url


async def test_a_client_gets_typed_arguments_and_a_preamble(url: str) -> None:
    pay = {
        "type": "function",
        "name": "pay",
        "parameters": {
            "type": "object",
            "properties": {
                "amount": {"type": "number"},
                "currency": {"type": "string"},
                "urgent": {"type": "boolean"},
            },
        },
    }
    with trio.fail_after(10):
        async with connect(url) as client:
            await client.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "output_modalities": ["text"], "tools": [pay]},
                }
            )
            await client.until("session.updated")
            events = await client.turn("pay 12.5 EUR urgent yes")
            done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            assert json.loads(done["arguments"]) == {
                "amount": 12.5,
                "currency": "EUR",
                "urgent": True,
            }

            events = await client.turn("tell me a story")
            output = events[-1]["response"]["output"]
            assert [item["content"][0]["text"] for item in output] == [
                "Once upon a time.",
                "The end.",
            ]
            assert types(events).count("response.output_item.done") == 2


README = Path(__file__).resolve().parents[2] / "README.md"


async def test_the_readme_rules_load_and_pay_in_two_messages() -> None:
    readme = README.read_text()
    section = readme.split("Its rules file is TOML:", 1)[1]
    rules = section.split("```toml\n", 1)[1].split("```", 1)[0]
    pay = function("pay", amount={"type": "number"}, to={"type": "string"})
    outputs = await ask(rules, [user("please pay 12.5 to Ada")], [pay])
    assert outputs == [
        Say("One moment."),
        CallFunction("pay", '{"amount": 12.5, "to": "Ada"}', {"amount": "12.5", "to": "Ada"}),
    ]
    call = RealtimeConversationItemFunctionCall(
        name="pay", arguments='{"amount": 12.5, "to": "Ada"}', call_id="c"
    )
    output = RealtimeConversationItemFunctionCallOutput(call_id="c", output="receipt 7")
    memory = {"calls": {"c": {"amount": "12.5", "to": "Ada"}}}
    outputs = await ask(rules, [user("pay"), call, output], memory=memory)
    assert outputs == [Say("Done."), Say("I paid 12.5 to Ada: receipt 7.")]


async def test_a_brain_error_fails_the_response_and_names_the_cause(url: str) -> None:
    """A rule that calls a tool the session does not offer: the client gets an
    ``error`` event with the brain's message, a failed response, and a session
    that goes on."""
    with trio.fail_after(10):
        async with connect(url) as client:
            session = {"type": "realtime", "output_modalities": ["text"]}
            await client.send({"type": "session.update", "session": session})
            await client.until("session.updated")
            events = await client.turn("weather in Oslo")
            (error,) = [e["error"] for e in events if e["type"] == "error"]
            assert error["message"] == (
                "rules: rule 1 calls get_weather, which this session does not offer "
                "(it offers: none); declare the tool in the session or change the rule"
            )
            assert events[-1]["response"]["status"] == "failed"
            events = await client.turn("tell me a story")
            assert events[-1]["response"]["status"] == "completed"


async def test_a_greeting_answers_before_the_user_has_said_anything() -> None:
    rules = 'greeting = "Thanks for calling."\n' + WEATHER
    assert await ask(rules, []) == [Say("Thanks for calling.")]
    # Once the user has spoken the rules and the fallback answer as before.
    assert await ask(rules, [user("hmm")]) == [Say(DEFAULT_FALLBACK)]
    # Without a greeting, an opening response is the fallback.
    assert await ask(WEATHER, []) == [Say(DEFAULT_FALLBACK)]
