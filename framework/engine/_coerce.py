"""Tool arguments made to fit the tool's JSON Schema, as strict function calling does.

A model with strict function calling only ever emits arguments that match the
tool's schema: ``12.5`` for a ``number``, ``true`` for a ``boolean``, an array
for an ``array``. The scripted brain's arguments come from regex captures, which
are strings; :func:`coerce` converts each string to the type its schema
declares, all the way down nested objects and arrays.

Only strings are converted. A value the rules file typed itself (a TOML
number, boolean, table or array) is sent as written, so a rules file can still
send deliberately wrong arguments to exercise a client's error handling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULL = {"", "null", "none"}


class ArgumentError(ValueError):
    """An argument that cannot take its declared type; the message names it."""


def coerce(value: Any, schema: Any) -> Any:
    """``value`` with every string converted to the type ``schema`` declares there.

    Understands ``type`` (one or a list), ``properties``, ``additionalProperties``,
    ``required``, ``items``, ``enum``, ``const``, ``anyOf``/``oneOf`` and local
    ``$ref`` (``#/$defs/...``); any other keyword leaves the value as it is.

    Raises:
        ArgumentError: a string that is none of the declared types, an
            unknown property where ``additionalProperties`` is false, or a
            required property missing.
    """
    return _Coercer(schema).value(value, schema, "")


class _Coercer:
    def __init__(self, root: Any) -> None:
        self.root = root

    def resolve(self, schema: Any) -> Any:
        """The schema a local ``$ref`` points to (followed a bounded number of times)."""
        for _ in range(32):
            if not isinstance(schema, Mapping) or not isinstance(schema.get("$ref"), str):
                return schema
            ref: str = schema["$ref"]
            if not ref.startswith("#"):
                return {}  # a remote schema is not fetched: anything goes
            target: Any = self.root
            for part in filter(None, ref[1:].split("/")):
                part = part.replace("~1", "/").replace("~0", "~")  # JSON Pointer escapes
                if not isinstance(target, Mapping) or part not in target:
                    return {}
                target = target[part]
            schema = target
        return {}

    def value(self, value: Any, schema: Any, path: str) -> Any:
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping):
            return value
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(alternatives, list) and alternatives:
            problems = []
            for alternative in alternatives:
                try:
                    return self.value(value, alternative, path)
                except ArgumentError as e:
                    problems.append(str(e))
            raise ArgumentError(problems[0])
        if isinstance(value, dict):
            return self.object(value, schema, path)
        if isinstance(value, list):
            items = schema.get("items")
            return [self.value(v, items, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str):
            value = self.string(value, schema, path)
        return _member(value, schema, path)

    def object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str) -> Any:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        extra = schema.get("additionalProperties", True)
        out = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in properties:
                out[key] = self.value(item, properties[key], where)
            elif extra is False:
                raise ArgumentError(f"there is no argument {where!r}")
            else:
                out[key] = self.value(item, extra if isinstance(extra, Mapping) else {}, where)
        required = schema.get("required")
        for key in required if isinstance(required, list) else []:
            if key not in out:
                where = f"{path}.{key}" if path else key
                raise ArgumentError(f"the required argument {where!r} is missing")
        return out

    def string(self, text: str, schema: Mapping[str, Any], path: str) -> Any:
        declared = schema.get("type")
        kinds = [declared] if isinstance(declared, str) else declared
        if not isinstance(kinds, list) or not kinds:
            return text  # no type: the string is as good as anything
        for kind in kinds:
            convert = _CONVERTERS.get(kind) if isinstance(kind, str) else None
            if convert is None:
                continue
            try:
                converted = convert(text)
            except ValueError:
                continue
            if kind in ("object", "array"):
                return self.value(converted, schema, path)
            return converted
        expected = " or ".join(_NAMES.get(k, str(k)) for k in kinds)
        raise ArgumentError(f"argument {path or 'value'!r} must be {expected}, got {text!r}")


def _member(value: Any, schema: Mapping[str, Any], path: str) -> Any:
    """Checks ``enum`` and ``const``; a string matching a member but for case becomes it."""
    allowed = schema.get("enum")
    if "const" in schema:
        allowed = [schema["const"]]
    if not isinstance(allowed, list) or value in allowed:
        return value
    if isinstance(value, str):
        for member in allowed:
            if isinstance(member, str) and member.casefold() == value.strip().casefold():
                return member
    choices = ", ".join(json.dumps(m) for m in allowed)
    raise ArgumentError(f"argument {path or 'value'!r} must be one of {choices}, got {value!r}")


def _number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)  # JSON has no NaN or infinity
    return number


def _integer(text: str) -> int:
    number = _number(text)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    return number


def _boolean(text: str) -> bool:
    word = text.strip().casefold()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(text)


def _null(text: str) -> None:
    if text.strip().casefold() not in _NULL:
        raise ValueError(text)


def _object(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(text)
    return data


def _array(text: str) -> list[Any]:
    """A JSON array, or else a comma-separated list ("apples, pears")."""
    stripped = text.strip()
    if stripped.startswith("["):
        data = json.loads(stripped)
        if isinstance(data, list):
            return data
    return [part.strip() for part in stripped.split(",") if part.strip()]


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "null": _null,
    "object": _object,
    "array": _array,
}

_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
    "object": "a JSON object",
    "array": "a list",
}
