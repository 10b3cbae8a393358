"""The tolerance rules of argument conversion, each tested both ways.

Each row is a parameter type and the JSON a model wrote for it; a row is either
accepted (with the value the tool receives, type included) or refused (with the
message the model reads). The rows are also run through pydantic's lax mode,
which the Agents SDK applies to tool arguments, and every place where the two
disagree is listed on purpose.
"""

import dataclasses
import enum
from typing import Any, Literal

import orjson
import pydantic
import pytest

from framework.tools import ToolArgumentsError

from .kinds import Level, one_argument


@dataclasses.dataclass
class Place:
    lat: float
    tags: list[str] = dataclasses.field(default_factory=list)


class Digit(enum.Enum):
    ONE = "1"
    TWO = "2"


BIG = "1" + "0" * 400

# (hint, the JSON written, the value received)
ACCEPTED: list[tuple[Any, str, Any]] = [
    # integer
    (int, "3", 3),
    (int, "3.0", 3),
    (int, "-0.0", 0),
    (int, "9007199254740991.0", 2**53 - 1),
    (int, '"3"', 3),
    (int, '"-3"', -3),
    (int, '"3.0"', 3),
    (int, '"1e3"', 1000),
    (int, '"123456789012345678901234567890"', 123456789012345678901234567890),
    # number
    (float, "12.5", 12.5),
    (float, "3", 3.0),
    (float, '"12.5"', 12.5),
    (float, '"-1e3"', -1000.0),
    (float, '"3"', 3.0),
    # boolean
    (bool, "true", True),
    (bool, '"true"', True),
    (bool, '"false"', False),
    (bool, '"True"', True),
    (bool, '"FALSE"', False),
    # string
    (str, '"x"', "x"),
    # choices take a value the way their type does
    (Literal[1, 2], '"2"', 2),
    (Literal[1, 2], "2.0", 2),
    (Literal["1", "2"], "1", "1"),
    (Literal["a", 1], '"a"', "a"),
    (Literal[True], '"true"', True),
    (Level, '"2"', Level.HIGH),
    (Level, "2.0", Level.HIGH),
    (Digit, "2", Digit.TWO),
    # inside other types
    (int | None, '"3"', 3),
    (int | None, "null", None),
    (list[int], '["1", 2, 3.0]', [1, 2, 3]),
    (dict[str, float], '{"a": "1.5"}', {"a": 1.5}),
    (Place, '{"lat": "1.5", "tags": ["7"]}', Place(1.5, tags=["7"])),
]

# (hint, the JSON written, what the model is told)
REFUSED: list[tuple[Any, str, str]] = [
    # integer
    (int, "3.5", "expected integer, got number 3.5"),
    (int, '"3.5"', 'expected integer, got string "3.5"'),
    (int, "9007199254740992.0", "expected integer, got number 9007199254740992.0"),
    (int, "1e20", "expected integer, got number 1e+20"),
    (int, '"1e400"', 'expected integer, got string "1e400"'),
    (int, "true", "expected integer, got boolean true"),
    (int, '"abc"', 'expected integer, got string "abc"'),
    (int, '" 3"', 'expected integer, got string " 3"'),
    (int, '"+3"', 'expected integer, got string "+3"'),
    (int, '"007"', 'expected integer, got string "007"'),
    (int, '"1_000"', 'expected integer, got string "1_000"'),
    (int, '"0x10"', 'expected integer, got string "0x10"'),
    (int, '"3."', 'expected integer, got string "3."'),
    (int, '""', 'expected integer, got string ""'),
    (int, "null", "expected integer, got null"),
    (int, "[3]", "expected integer, got array"),
    # number
    (float, "true", "expected number, got boolean true"),
    (float, '"abc"', 'expected number, got string "abc"'),
    (float, '"NaN"', 'expected number, got string "NaN"'),
    (float, '"inf"', 'expected number, got string "inf"'),
    (float, '"Infinity"', 'expected number, got string "Infinity"'),
    (float, '"1e400"', 'expected number, got string "1e400"'),
    (float, f'"{BIG}"', f'expected number, got string "{BIG[:36]}...'),
    (float, '" 1.5"', 'expected number, got string " 1.5"'),
    (float, '"1,5"', 'expected number, got string "1,5"'),
    (float, "null", "expected number, got null"),
    # boolean
    (bool, "1", "expected boolean, got integer 1"),
    (bool, "0", "expected boolean, got integer 0"),
    (bool, "1.0", "expected boolean, got number 1.0"),
    (bool, '"yes"', 'expected boolean, got string "yes"'),
    (bool, '"on"', 'expected boolean, got string "on"'),
    (bool, '"1"', 'expected boolean, got string "1"'),
    (bool, '"t"', 'expected boolean, got string "t"'),
    (bool, '""', 'expected boolean, got string ""'),
    (bool, "null", "expected boolean, got null"),
    # string
    (str, "12345", "expected string, got integer 12345"),
    (str, "1.5", "expected string, got number 1.5"),
    (str, "1.10", "expected string, got number 1.1"),
    (str, "true", "expected string, got boolean true"),
    (str, "null", "expected string, got null"),
    (str, "[]", "expected string, got array"),
    (str, "{}", "expected string, got object"),
    # choices
    (Literal[1, 2], '"3"', 'expected one of 1, 2, got string "3"'),
    (Literal[1, 2], "true", "expected one of 1, 2, got boolean true"),
    (Literal[1, 2], '"1.5"', 'expected one of 1, 2, got string "1.5"'),
    (Literal["1", "2"], "1.5", 'expected one of "1", "2", got number 1.5'),
    (Literal["1", "2"], "true", 'expected one of "1", "2", got boolean true'),
    (Digit, "3", 'expected one of "1", "2", got integer 3'),
    (Literal[True], "1", "expected one of true, got integer 1"),
    (Level, "true", "expected one of 1, 2, got boolean true"),
    (Level, '"HIGH"', 'expected one of 1, 2, got string "HIGH"'),
    # inside other types: null and containers are never made from strings
    (int | None, '"null"', 'expected integer or null, got string "null"'),
    (list[int], '"[1]"', 'expected array, got string "[1]"'),
    (dict[str, int], '"{}"', 'expected object, got string "{}"'),
    (Place, '"lat=1"', 'expected object, got string "lat=1"'),
]


def _id(row: tuple[Any, str, Any]) -> str:
    return f"{row[0]}<-{row[1][:20]}"


@pytest.mark.parametrize(("hint", "written", "received"), ACCEPTED, ids=map(_id, ACCEPTED))
def test_accepted(hint: Any, written: str, received: Any) -> None:
    value = one_argument(hint).parse_arguments(f'{{"x": {written}}}')["x"]
    assert value == received
    assert type(value) is type(received)


@pytest.mark.parametrize(("hint", "written", "told"), REFUSED, ids=map(_id, REFUSED))
def test_refused(hint: Any, written: str, told: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        one_argument(hint).parse_arguments(f'{{"x": {written}}}')
    assert info.value.problems == (f"{told} @ $.x",)


# Where pydantic's lax mode decides otherwise, by (hint, written): each on purpose.
MORE_TOLERANT_THAN_PYDANTIC = {
    # An integer for a string choice: the choices show the digits are meant.
    (Literal["1", "2"], "1"),
    (Digit, "2"),
    # Any exact JSON number in a string, exponents too (pydantic's int parser has none).
    (int, '"1e3"'),
    # Choices follow their type's rules (pydantic does for Enums, not for Literals).
    (Literal[1, 2], '"2"'),
    (Literal[True], '"true"'),
}
STRICTER_THAN_PYDANTIC = {
    # A float from 2**53 on may not hold the integer written: pydantic rounds it.
    (int, "9007199254740992.0"),
    # A boolean is not a number.
    (int, "true"),
    (float, "true"),
    (Literal[1, 2], "true"),
    # No padding, signs or digit grouping: the string must be exactly a JSON number.
    (int, '" 3"'),
    (int, '"+3"'),
    (int, '"007"'),
    (int, '"1_000"'),
    (float, '" 1.5"'),
    # JSON has no NaN or infinity.
    (float, '"NaN"'),
    (float, '"inf"'),
    (float, '"Infinity"'),
    (float, '"1e400"'),
    (float, f'"{BIG}"'),
    # Only "true" and "false" are booleans.
    (bool, "1"),
    (bool, "0"),
    (bool, "1.0"),
    (bool, '"yes"'),
    (bool, '"on"'),
    (bool, '"1"'),
    (bool, '"t"'),
    (Literal[True], "1"),
    (Level, "true"),
}


def _pydantic_value(hint: Any, written: str) -> Any:
    try:
        return pydantic.TypeAdapter(hint).validate_python(orjson.loads(written))
    except pydantic.ValidationError:
        return pydantic.ValidationError


@pytest.mark.parametrize(("hint", "written", "received"), ACCEPTED, ids=map(_id, ACCEPTED))
def test_accepted_as_pydantic_does(hint: Any, written: str, received: Any) -> None:
    theirs = _pydantic_value(hint, written)
    if (hint, written) in MORE_TOLERANT_THAN_PYDANTIC:
        assert theirs is pydantic.ValidationError
    else:
        assert theirs == received


@pytest.mark.parametrize(("hint", "written", "told"), REFUSED, ids=map(_id, REFUSED))
def test_refused_as_pydantic_does(hint: Any, written: str, told: str) -> None:
    theirs = _pydantic_value(hint, written)
    if (hint, written) in STRICTER_THAN_PYDANTIC:
        assert theirs is not pydantic.ValidationError
    else:
        assert theirs is pydantic.ValidationError
