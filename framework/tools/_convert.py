"""Argument conversion: the model's JSON values structured into a tool's parameter types.

One cattrs converter serves every tool. It refuses what does not fit with a
message for the model that names the bad value and its path (``@ $.route.stops[1]``),
so the model can correct its call.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Any, Final

import attrs
import cattrs
import cattrs.cols
import cattrs.gen
import orjson
from cattrs.errors import ForbiddenExtraKeysError

from framework.tools._hints import (
    JSON_TYPES,
    is_dict,
    is_enum,
    is_list,
    is_literal,
    is_optional,
    optional_inner,
)

__all__ = ["converter", "describe", "problems_of"]


class _Invalid(Exception):
    """A JSON value of the wrong shape; its message is shown to the model."""


def describe(value: Any) -> str:
    """Names a JSON value's type, and shows it when it is a scalar."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    kind = JSON_TYPES.get(type(value), type(value).__name__)
    shown = orjson.dumps(value).decode()
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}"


def _choices(values: list[Any]) -> str:
    return "one of " + ", ".join(orjson.dumps(v).decode() for v in values)


def _structure_str(value: Any, hint: Any) -> Any:
    if hint is not str:
        return _structure_enum(hint)(value, hint)
    if not isinstance(value, str):
        raise _Invalid(f"expected string, got {describe(value)}")
    return value


def _structure_int(value: Any, hint: Any) -> Any:
    if hint is not int:
        return _structure_enum(hint)(value, hint)
    # bool is an int subclass in Python, but not in JSON.
    if type(value) is not int:
        raise _Invalid(f"expected integer, got {describe(value)}")
    return value


def _structure_float(value: Any, _: Any) -> float:
    # JSON has one number type: 3 is a fine value for a float parameter.
    if type(value) not in (int, float):
        raise _Invalid(f"expected number, got {describe(value)}")
    return float(value)


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected boolean, got {describe(value)}")
    return value


def _structure_literal(hint: Any) -> Callable[[Any, Any], Any]:
    allowed = list(typing.get_args(hint))

    def hook(value: Any, _: Any) -> Any:
        # Compare types too: True == 1, but true is not a valid value for Literal[1].
        for choice in allowed:
            if type(value) is type(choice) and value == choice:
                return choice
        raise _Invalid(f"expected {_choices(allowed)}, got {describe(value)}")

    return hook


# cattrs looks classes up by singledispatch first, so an Enum with a str or int mixin
# (StrEnum, IntEnum) reaches the str or int hook, which hands it over to this one.
@functools.cache
def _structure_enum(hint: Any) -> Callable[[Any, Any], Any]:
    members = list(hint)

    def hook(value: Any, _: Any) -> Any:
        for member in members:
            if type(value) is type(member.value) and value == member.value:
                return member
        raise _Invalid(f"expected {_choices([m.value for m in members])}, got {describe(value)}")

    return hook


def _expecting(
    kind: type, name: str, inner: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    """``inner``, behind a check that the JSON value is a ``kind`` (named ``name``)."""

    def hook(value: Any, t: Any) -> Any:
        if not isinstance(value, kind):
            raise _Invalid(f"expected {name}, got {describe(value)}")
        return inner(value, t)

    return hook


def _make_converter() -> cattrs.Converter:
    """The converter of tool arguments: exact JSON types, unknown fields refused."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_factory(is_literal, _structure_literal)
    conv.register_structure_hook_factory(is_enum, _structure_enum)

    def optional_factory(hint: Any) -> Callable[[Any, Any], Any]:
        inner_type = optional_inner(hint)
        inner = conv.get_structure_hook(inner_type)

        def hook(value: Any, _: Any) -> Any:
            if value is None:
                return None
            try:
                return inner(value, inner_type)
            except _Invalid as e:
                raise _Invalid(f"{e.args[0].replace(', got', ' or null, got', 1)}") from None

        return hook

    conv.register_structure_hook_factory(is_optional, optional_factory)
    # cattrs turns any iterable into a list ("abc" -> ["a", "b", "c"]); JSON needs an array.
    conv.register_structure_hook_factory(
        is_list,
        lambda hint: _expecting(list, "array", cattrs.cols.list_structure_factory(hint, conv)),
    )
    conv.register_structure_hook_factory(
        is_dict,
        lambda hint: _expecting(dict, "object", cattrs.gen.make_mapping_structure_fn(hint, conv)),
    )
    conv.register_structure_hook_factory(
        attrs.has,
        lambda hint: _expecting(dict, "object", cattrs.gen.make_dict_structure_fn(hint, conv)),
    )
    return conv


converter: Final = _make_converter()
"""Structures JSON values into parameter types (and unstructures return values)."""


def _format_problem(exc: BaseException, _: type | None) -> str:
    """Words for one structuring failure (cattrs adds the `` @ path``)."""
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        return "missing required field"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    # For example a validator of an attrs class refusing the value.
    return f"invalid value ({type(exc).__name__}: {exc})"


def problems_of(exc: Exception, path: str) -> list[str]:
    """One message per problem in a failed :data:`converter` call, each ending in ``@ path``."""
    return cattrs.transform_error(exc, path, _format_problem)
