"""JSON schemas from type hints: what a tool declares its parameters to be.

A hint that has no schema fails at decoration time, naming the parameter (and
the field, inside a record), so an unsupported annotation shows where the tool
is defined and not in a live call. Every schema made here is valid JSON Schema
(draft 2020-12, the draft of OpenAI's structured outputs and of pydantic, whose
schemas the Agents SDK sends) and closed: objects list their properties, which
are all required unless they have a default, and no others.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, Final

import orjson

from framework.protocol import UNSET
from framework.tools._convert import converter
from framework.tools._hints import (
    JSON_TYPES,
    is_dict,
    is_enum,
    is_literal,
    is_optional,
    optional_inner,
    type_name,
)
from framework.tools._records import fields_of, is_record

__all__ = ["json_default", "object_schema", "schema_of"]

_SUPPORTED: Final = (
    "str, int, float, bool, Literal[...], Enum subclasses, X | None, list[X], "
    "dict[str, X], attrs classes, dataclasses, TypedDicts and pydantic models"
)


def json_default(value: Any) -> Any:
    """The JSON form of a default value, or ``UNSET`` when it has none."""
    try:
        return orjson.loads(orjson.dumps(converter.unstructure(value)))
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return UNSET


def object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A closed object schema: these properties, these required, no others."""
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _unsupported(hint: Any, where: str, why: str = "") -> TypeError:
    return TypeError(
        f"{where} has unsupported type {type_name(hint)}{why}. Supported: {_SUPPORTED}."
    )


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds = {JSON_TYPES[type(v)] for v in values}
    if len(kinds) == 1:
        return {"type": kinds.pop(), "enum": values}
    return {"enum": values}


def _scalar(hint: Any, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    return {"type": JSON_TYPES[hint]}


def _literal(hint: Any, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    values = list(typing.get_args(hint))
    if not all(type(v) in (str, int, bool) for v in values):
        raise _unsupported(hint, where, " (Literal values must be str, int or bool)")
    return _enum_schema(values)


def _enum(hint: Any, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    values = [m.value for m in hint]
    if not values or not all(type(v) in (str, int) for v in values):
        raise _unsupported(hint, where, " (Enum values must be str or int)")
    return _enum_schema(values)


def _union(hint: Any, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    if not is_optional(hint):
        raise _unsupported(hint, where, " (the only union supported is X | None)")
    return {"anyOf": [schema_of(optional_inner(hint), where, seen), {"type": "null"}]}


def _list(hint: Any, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    args = typing.get_args(hint)
    if len(args) != 1:
        raise _unsupported(hint, where, " (give the item type, e.g. list[str])")
    return {"type": "array", "items": schema_of(args[0], where, seen)}


def _dict(hint: Any, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    args = typing.get_args(hint)
    if len(args) != 2 or args[0] is not str:
        raise _unsupported(hint, where, " (keys must be str, e.g. dict[str, int])")
    return {"type": "object", "additionalProperties": schema_of(args[1], where, seen)}


def _record(cls: type, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    if cls in seen:
        raise TypeError(f"{where} has recursive type {cls.__qualname__}, which is not supported.")
    try:
        fields = fields_of(cls)
    except TypeError as e:
        raise TypeError(f"{where}: {e}.") from e
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in fields:
        schema = schema_of(
            field.hint, f"{where} (field {cls.__qualname__}.{field.name})", (*seen, cls)
        )
        if field.description:
            schema["description"] = field.description
        if field.required:
            required.append(field.key)
        elif field.default is not UNSET:
            default = json_default(field.default)
            if default is not UNSET:
                schema["default"] = default
        properties[field.key] = schema
    return object_schema(properties, required)


_Build = Callable[[Any, str, tuple[type, ...]], dict[str, Any]]

# Asked in order; the first kind that applies builds the schema.
_KINDS: Final[tuple[tuple[Callable[[Any], bool], _Build], ...]] = (
    (lambda hint: isinstance(hint, type) and hint in JSON_TYPES, _scalar),
    (is_literal, _literal),
    (is_enum, _enum),
    (lambda hint: typing.get_origin(hint) in (typing.Union, types.UnionType), _union),
    (lambda hint: hint is list or typing.get_origin(hint) is list, _list),
    (lambda hint: hint is dict or is_dict(hint), _dict),
    (is_record, _record),
)


def schema_of(hint: Any, where: str, seen: tuple[type, ...] = ()) -> dict[str, Any]:
    """The JSON schema of ``hint``.

    Args:
        hint: A parameter's type hint.
        where: Names the spot for error messages (``Tool f: parameter 'x'``).
        seen: The records being described around this hint, to refuse recursion.

    Raises:
        TypeError: The hint has no schema.
    """
    for applies, build in _KINDS:
        if applies(hint):
            return build(hint, where, seen)
    raise _unsupported(hint, where)
