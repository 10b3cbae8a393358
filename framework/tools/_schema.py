"""JSON schemas from type hints: what a tool declares its parameters to be.

A hint that has no schema fails at decoration time, naming the parameter, so an
unsupported annotation shows where the tool is defined and not in a live call.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Final, Literal

import attrs
import orjson

from framework.protocol import UNSET
from framework.tools._convert import converter
from framework.tools._hints import JSON_TYPES, is_optional, optional_inner, type_name

__all__ = ["json_default", "object_schema", "schema_of"]

_SUPPORTED: Final = (
    "str, int, float, bool, Literal[...], Enum subclasses, X | None, list[X], "
    "dict[str, X] and attrs classes"
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


def schema_of(hint: Any, where: str, seen: tuple[type, ...] = ()) -> dict[str, Any]:
    """The JSON schema of ``hint``.

    Args:
        hint: A parameter's type hint.
        where: Names the spot for error messages (``Tool f: parameter 'x'``).
        seen: The classes being described around this hint, to refuse recursion.

    Raises:
        TypeError: The hint has no schema.
    """

    def unsupported(why: str = "") -> TypeError:
        return TypeError(
            f"{where} has unsupported type {type_name(hint)}{why}. Supported: {_SUPPORTED}."
        )

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in JSON_TYPES:
        return {"type": JSON_TYPES[hint]}
    if origin is Literal:
        if not all(type(a) in (str, int, bool) for a in args):
            raise unsupported(" (Literal values must be str, int or bool)")
        return _enum_schema(list(args))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
        if not values or not all(type(v) in (str, int) for v in values):
            raise unsupported(" (Enum values must be str or int)")
        return _enum_schema(values)
    if origin in (typing.Union, types.UnionType):
        if not is_optional(hint):
            raise unsupported(" (the only union supported is X | None)")
        return {"anyOf": [schema_of(optional_inner(hint), where, seen), {"type": "null"}]}
    if origin is list or hint is list:
        if len(args) != 1:
            raise unsupported(" (give the item type, e.g. list[str])")
        return {"type": "array", "items": schema_of(args[0], where, seen)}
    if origin is dict or hint is dict:
        if len(args) != 2 or args[0] is not str:
            raise unsupported(" (keys must be str, e.g. dict[str, int])")
        return {"type": "object", "additionalProperties": schema_of(args[1], where, seen)}
    if isinstance(hint, type) and attrs.has(hint):
        return _attrs_schema(hint, where, seen)
    raise unsupported()


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds = {JSON_TYPES[type(v)] for v in values}
    if len(kinds) == 1:
        return {"type": kinds.pop(), "enum": values}
    return {"enum": values}


def _attrs_schema(cls: type, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    if cls in seen:
        raise TypeError(f"{where} has recursive type {cls.__qualname__}, which is not supported.")
    try:
        attrs.resolve_types(cls)
    except NameError as e:
        raise TypeError(f"{where}: cannot resolve the type hints of {cls.__qualname__}: {e}") from e
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        spot = f"{where} (field {cls.__qualname__}.{field.name})"
        if field.type is None:
            raise TypeError(f"{spot} has no type annotation.")
        schema = schema_of(field.type, spot, (*seen, cls))
        if "description" in field.metadata:
            schema["description"] = str(field.metadata["description"])
        if field.default is attrs.NOTHING:
            required.append(field.name)
        elif not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            default = json_default(field.default)
            if default is not UNSET:
                schema["default"] = default
        properties[field.name] = schema
    return object_schema(properties, required)
