"""Records as parameters: attrs classes, dataclasses, TypedDicts and pydantic models.

Each kind gets its schema (valid JSON Schema, and one that the values it
accepts validate against), its conversion, nested in the others, and the same
named-path messages when the model's value does not fit.
"""

import dataclasses
from typing import Any, NotRequired, Required, TypedDict

import attrs
import jsonschema
import orjson
import pydantic
import pytest
import typing_extensions

from framework.tools import ToolArgumentsError, tool

from .kinds import Color, checked_schema, obj, one_argument


@dataclasses.dataclass
class Reading:
    value: float
    unit: Color = Color.RED
    notes: list[str] = dataclasses.field(default_factory=list)
    label: str = dataclasses.field(default="", metadata={"description": "Shown to people."})
    seq: int = dataclasses.field(default=0, init=False)


class Total(TypedDict):
    city: str
    days: NotRequired[int]


class Partial(TypedDict, total=False):
    city: Required[str]
    days: int


class Legacy(typing_extensions.TypedDict, total=False):
    """A TypedDict as the Agents SDK writes them (typing_extensions)."""

    city: typing_extensions.Required[str]
    reading: Reading


class Area(typing_extensions.TypedDict):
    """What pydantic takes for a TypedDict before Python 3.12."""

    city: str
    days: typing_extensions.NotRequired[int]


class Station(pydantic.BaseModel):
    name: str = pydantic.Field(description="The station's name.")
    height: int = pydantic.Field(default=0, alias="heightMeters", ge=0)
    readings: list[Reading] = pydantic.Field(default_factory=list)
    where: Area | None = None

    @pydantic.field_validator("name")
    @classmethod
    def no_blank_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name is blank")
        return value


@attrs.frozen
class Network:
    stations: list[Station]
    main: Station | None = None


READING = obj(
    {
        "value": {"type": "number"},
        "unit": {"type": "string", "enum": ["red", "blue"], "default": "red"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "label": {"type": "string", "description": "Shown to people.", "default": ""},
    },
    ["value"],
)
TOTAL = obj({"city": {"type": "string"}, "days": {"type": "integer"}}, ["city"])
STATION = obj(
    {
        "name": {"type": "string", "description": "The station's name."},
        "heightMeters": {"type": "integer", "default": 0},
        "readings": {"type": "array", "items": READING},
        "where": {"anyOf": [TOTAL, {"type": "null"}], "default": None},
    },
    ["name"],
)


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (Reading, READING),
        (Total, TOTAL),
        (Partial, TOTAL),
        (Legacy, obj({"city": {"type": "string"}, "reading": READING}, ["city"])),
        (Station, STATION),
        (
            Network,
            obj(
                {
                    "stations": {"type": "array", "items": STATION},
                    "main": {"anyOf": [STATION, {"type": "null"}], "default": None},
                },
                ["stations"],
            ),
        ),
    ],
)
def test_schema_of_each_kind(hint: Any, schema: dict[str, Any]) -> None:
    assert checked_schema(one_argument(hint))["properties"]["x"] == schema


# (kind, the JSON written, the value received, whether the JSON is as declared):
# JSON as declared also validates against the tool's schema; the rest is tolerated.
CONVERTED: list[tuple[Any, str, Any, bool]] = [
    (Reading, '{"value": 21.5}', Reading(21.5), True),
    (
        Reading,
        '{"value": "3", "unit": "blue", "notes": ["a"], "label": "x"}',
        Reading(3.0, Color.BLUE, ["a"], "x"),
        False,
    ),
    (Total, '{"city": "Oslo"}', {"city": "Oslo"}, True),
    (Total, '{"city": "Oslo", "days": "2"}', {"city": "Oslo", "days": 2}, False),
    (Partial, '{"city": "Oslo", "days": 2}', {"city": "Oslo", "days": 2}, True),
    (
        Legacy,
        '{"city": "Oslo", "reading": {"value": 1}}',
        {"city": "Oslo", "reading": Reading(1.0)},
        True,
    ),
    (Station, '{"name": "A"}', Station(name="A"), True),
    (
        Station,
        '{"name": "A", "heightMeters": 12, "readings": [{"value": 1}], "where": {"city": "B"}}',
        Station(name="A", heightMeters=12, readings=[Reading(1.0)], where={"city": "B"}),
        True,
    ),
    (
        Network,
        '{"stations": [{"name": "A"}], "main": {"name": "B", "heightMeters": "7"}}',
        Network([Station(name="A")], Station(name="B", heightMeters=7)),
        False,
    ),
]


@pytest.mark.parametrize(("hint", "written", "received", "declared"), CONVERTED)
def test_conversion_of_each_kind(hint: Any, written: str, received: Any, declared: bool) -> None:
    t = one_argument(hint)
    arguments = f'{{"x": {written}}}'
    value = t.parse_arguments(arguments)["x"]
    assert value == received
    assert type(value) is type(received)
    valid = jsonschema.Draft202012Validator(t.parameters).is_valid(orjson.loads(arguments))
    assert valid is declared


P = "$.x"
REFUSED: list[tuple[Any, str, list[str]]] = [
    (Reading, "{}", [f"missing required field @ {P}.value"]),
    (
        Reading,
        '{"value": "warm", "unit": "k", "seq": 1}',
        [
            f'expected number, got string "warm" @ {P}.value',
            f'expected one of "red", "blue", got string "k" @ {P}.unit',
            f"unknown field(s) seq @ {P}",
        ],
    ),
    (Reading, "[1]", [f"expected object, got array @ {P}"]),
    (Total, '{"days": 1}', [f"missing required field @ {P}.city"]),
    (Total, '{"city": "A", "days": 1.5}', [f"expected integer, got number 1.5 @ {P}.days"]),
    (Total, '{"city": "A", "weeks": 1}', [f"unknown field(s) weeks @ {P}"]),
    (Partial, "{}", [f"missing required field @ {P}.city"]),
    (
        Legacy,
        '{"city": "A", "reading": {"value": null}}',
        [f"expected number, got null @ {P}.reading.value"],
    ),
    (Station, "{}", [f"missing required field @ {P}.name"]),
    (
        Station,
        '{"name": 1.5, "height": 3, "readings": [{"value": 1}, {}]}',
        [
            f"expected string, got number 1.5 @ {P}.name",
            f"missing required field @ {P}.readings[1].value",
            f"unknown field(s) height @ {P}",
        ],
    ),
    (Station, '"A"', [f'expected object, got string "A" @ {P}']),
    # The model's own validators and constraints run on the converted fields.
    (Station, '{"name": " "}', [f"invalid value (name: Value error, name is blank) @ {P}"]),
    (
        Station,
        '{"name": "A", "heightMeters": -1}',
        [f"invalid value (heightMeters: Input should be greater than or equal to 0) @ {P}"],
    ),
    (
        Network,
        '{"stations": [{"name": "A", "where": {"city": 1.5}}]}',
        [f"expected string, got number 1.5 @ {P}.stations[0].where.city"],
    ),
]


@pytest.mark.parametrize(("hint", "written", "problems"), REFUSED)
def test_each_kind_refuses_with_the_named_path(
    hint: Any, written: str, problems: list[str]
) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        one_argument(hint).parse_arguments(f'{{"x": {written}}}')
    assert list(info.value.problems) == problems


async def test_models_and_dataclasses_are_returned_as_json() -> None:
    @tool
    async def measure(station: Station) -> list[Any]:
        return [station, Reading(1.5)]

    outcome = await measure.invoke('{"station": {"name": "A", "heightMeters": 3}}')
    assert outcome.output == (
        '[{"name":"A","heightMeters":3,"readings":[],"where":null},'
        '{"value":1.5,"unit":"red","notes":[],"label":""}]'
    )
    assert outcome.value == [Station(name="A", heightMeters=3), Reading(1.5)]


def test_a_model_default_is_shown_in_its_json_form() -> None:
    def f(station: Station = Station(name="home")) -> None: ...  # noqa: B008

    assert checked_schema(tool(f))["properties"]["station"]["default"] == {
        "name": "home",
        "heightMeters": 0,
        "readings": [],
        "where": None,
    }


@dataclasses.dataclass
class Loop:
    next: "Loop | None" = None


class LoopDict(TypedDict):
    children: list["LoopDict"]


class LoopModel(pydantic.BaseModel):
    child: "LoopModel | None" = None


class Dated(pydantic.BaseModel):
    when: object


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        (Loop, "recursive type Loop"),
        (LoopDict, "recursive type LoopDict"),
        (LoopModel, "recursive type LoopModel"),
        (Dated, r"parameter 'x' \(field Dated\.when\) has unsupported type object"),
    ],
)
def test_kinds_that_cannot_be_described_are_refused_at_definition(hint: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        one_argument(hint)
