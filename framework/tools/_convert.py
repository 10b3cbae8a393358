"""Argument conversion: the model's JSON values structured into a tool's parameter types.

One cattrs converter serves every tool. What does not fit is refused with a
message for the model that names the bad value and its path
(``expected integer, got string "2.5" @ $.route.stops[1].days``), so the model
can correct its call.

Models write numbers as strings now and then (``"12.5"`` for a number, ``"3"``
for an integer). A value is accepted when its meaning is certain and nothing is
lost on the way; anything that would need a guess is refused:

==========  =========================================  ==========================================
parameter   accepted besides its own JSON type         refused
==========  =========================================  ==========================================
integer     a number with no fraction (``3.0``), if    a fraction (``3.5``, ``"3.5"``); an
            exact in a double (below 2**53); a string  integral float from 2**53 on (the digits
            that is exactly a JSON number with no      written may not be the ones received);
            fraction (``"3"``, ``"-3"``, ``"3.0"``,     ``true``; strings that are not exactly a
            ``"1e3"``)                                 JSON number (``" 3"``, ``"+3"``,
                                                       ``"007"``, ``"1_000"``, ``"0x10"``)
number      an integer; a string that is exactly a     ``true``; ``"NaN"``, ``"inf"``, ``"1e400"``
            JSON number (``"12.5"``, ``"-1e3"``)       (no such JSON number); other strings
boolean     the strings ``"true"`` and ``"false"``,    numbers (``1``, ``0``) and other words
            in any case                                (``"yes"``, ``"on"``, ``"1"``)
string      nothing                                    numbers, booleans and ``null``: a string
                                                       can say anything, so ``42`` for a city
                                                       is more likely a mix-up than a name
==========  =========================================  ==========================================

A ``Literal`` or Enum choice takes a value the same way: an exact match first,
else a value that converts to the choice's type by the rules above (``"2"`` for
``Literal[1, 2]``). A string choice also takes an integer written without
quotes (``1`` for ``Literal["1", "2"]``): there the choices show the digits are
meant. ``null`` is never a string or a number, and arrays and objects are never
built from strings.

This is stricter than pydantic's lax mode, which the Agents SDK applies to
tool arguments: pydantic also takes ``true`` for a number, ``"yes"``, ``"on"``,
``"1"``, ``1`` and ``0`` for a boolean, padded, ``+``-signed and ``_``-grouped
digit strings, ``"nan"`` for a number, and rounds an integral float from 2**53
on into an integer. It takes fewer choices: no string for a ``Literal`` of
integers, no integer for a string choice, and no exponent in an integer string
(``"1e3"``). The tests hold the two side by side, difference by difference.

Records (attrs classes, dataclasses, TypedDicts and pydantic models) are
objects with the fields they declare and no others; a pydantic model's own
validators and constraints run after its fields are converted.
"""

from __future__ import annotations

import functools
import math
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import cattrs
import cattrs.cols
import cattrs.gen
import cattrs.gen.typeddicts
import orjson
from cattrs.errors import AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError

from framework.tools._hints import (
    JSON_TYPES,
    is_dataclass,
    is_dict,
    is_enum,
    is_list,
    is_literal,
    is_optional,
    is_pydantic_model,
    is_typeddict,
    optional_inner,
)
from framework.tools._records import fields_of

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


# --- scalars: each rule of the table in the module docstring --------------------------------

_REFUSED: Final = object()
_JSON_INTEGER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_JSON_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# Every integer below this is exact in a double, so a float below it that has no
# fraction is the integer that was written.
_EXACT_INTEGERS: Final = 2**53


def _number_in(text: str) -> int | float | None:
    """The number a string holds when it is exactly a JSON number, else ``None``."""
    try:
        if _JSON_INTEGER.fullmatch(text):
            return int(text)
        if _JSON_NUMBER.fullmatch(text):
            return float(text)
    except ValueError:  # more digits than Python converts
        return None
    return None


def _to_int(value: Any) -> Any:
    if type(value) is str:
        value = _number_in(value)
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return int(value)
    return _REFUSED


def _to_float(value: Any) -> Any:
    if type(value) is str:
        value = _number_in(value)
    if type(value) not in (int, float):
        return _REFUSED
    try:
        number = float(value)
    except OverflowError:
        return _REFUSED
    return number if math.isfinite(number) else _REFUSED


def _to_bool(value: Any) -> Any:
    if type(value) is bool:
        return value
    if type(value) is str and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return _REFUSED


def _to_str(value: Any) -> Any:
    return value if type(value) is str else _REFUSED


def _to_str_choice(value: Any) -> Any:
    return str(value) if type(value) is int else _to_str(value)


_SCALARS: Final[Mapping[type, Callable[[Any], Any]]] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
}
_CHOICES: Final[Mapping[type, Callable[[Any], Any]]] = {**_SCALARS, str: _to_str_choice}


def _scalar_hook(kind: type) -> Callable[[Any, Any], Any]:
    convert = _SCALARS[kind]

    def hook(value: Any, hint: Any) -> Any:
        # cattrs dispatches str and int subclasses here: StrEnum and IntEnum.
        if hint is not kind:
            return _structure_enum(hint)(value, hint)
        converted = convert(value)
        if converted is _REFUSED:
            raise _Invalid(f"expected {JSON_TYPES[kind]}, got {describe(value)}")
        return converted

    return hook


def _match(value: Any, choices: list[Any]) -> int | None:
    """The index of the choice ``value`` stands for: an exact match, else a converted one."""
    for i, choice in enumerate(choices):
        # Compare types too: True == 1, but true is not a valid value for Literal[1].
        if type(value) is type(choice) and value == choice:
            return i
    for i, choice in enumerate(choices):
        if _CHOICES[type(choice)](value) == choice:
            return i
    return None


def _choice_hook(values: list[Any], results: list[Any]) -> Callable[[Any, Any], Any]:
    """A hook that takes one of ``values`` (by :func:`_match`) and returns its result."""

    def hook(value: Any, _: Any) -> Any:
        i = _match(value, values)
        if i is None:
            raise _Invalid(f"expected {_choices(values)}, got {describe(value)}")
        return results[i]

    return hook


def _structure_literal(hint: Any) -> Callable[[Any, Any], Any]:
    allowed = list(typing.get_args(hint))
    return _choice_hook(allowed, allowed)


@functools.cache
def _structure_enum(hint: Any) -> Callable[[Any, Any], Any]:
    members = list(hint)
    return _choice_hook([m.value for m in members], members)


# --- containers and records -----------------------------------------------------------------


def _expecting(
    kind: type, name: str, inner: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    """``inner``, behind a check that the JSON value is a ``kind`` (named ``name``)."""

    def hook(value: Any, t: Any) -> Any:
        if not isinstance(value, kind):
            raise _Invalid(f"expected {name}, got {describe(value)}")
        return inner(value, t)

    return hook


def _pydantic_hook(cls: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """Structures each field with ``conv`` (its rules, its paths), then validates the model."""
    fields = {f.key: (f.hint, f.required, conv.get_structure_hook(f.hint)) for f in fields_of(cls)}

    def hook(value: Any, _: Any) -> Any:
        from pydantic import ValidationError

        errors: list[Exception] = []
        values: dict[str, Any] = {}
        for key, (hint, required, structure) in fields.items():
            try:
                if key in value:
                    values[key] = structure(value[key], hint)
                elif required:
                    raise KeyError(key)
            except Exception as e:
                # The note is how cattrs.transform_error learns the field's name for the path.
                e.add_note(AttributeValidationNote(f"Structuring field {key}", key, hint))
                errors.append(e)
        extra = set(value) - set(fields)
        if extra:
            errors.append(ForbiddenExtraKeysError("", cls, extra))
        if errors:
            raise ClassValidationError(f"While structuring {cls.__qualname__}", errors, cls)
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            # The model's own validators and constraints refused what the fields held.
            details = "; ".join(
                ".".join(str(part) for part in error["loc"]) + f": {error['msg']}"
                if error["loc"]
                else error["msg"]
                for error in e.errors()
            )
            raise _Invalid(f"invalid value ({details})") from None

    return hook


def _make_converter() -> cattrs.Converter:
    """The converter of tool arguments: the rules above, unknown fields refused."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in _SCALARS:
        conv.register_structure_hook(kind, _scalar_hook(kind))
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

    def checked(kind: type, name: str, make: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
        return lambda hint: _expecting(kind, name, make(hint, conv))

    conv.register_structure_hook_factory(is_optional, optional_factory)
    # cattrs turns any iterable into a list ("abc" -> ["a", "b", "c"]); JSON needs an array.
    conv.register_structure_hook_factory(
        is_list, checked(list, "array", cattrs.cols.list_structure_factory)
    )
    objects: tuple[tuple[Callable[[Any], bool], Callable[[Any, Any], Any]], ...] = (
        (is_dict, cattrs.gen.make_mapping_structure_fn),
        (attrs.has, cattrs.gen.make_dict_structure_fn),
        (is_dataclass, cattrs.gen.make_dict_structure_fn),
        (is_typeddict, cattrs.gen.typeddicts.make_dict_structure_fn),
        (is_pydantic_model, _pydantic_hook),
    )
    for applies, make in objects:
        conv.register_structure_hook_factory(applies, checked(dict, "object", make))
    # Return values and defaults that are pydantic models become their JSON form.
    conv.register_unstructure_hook_func(
        is_pydantic_model, lambda model: model.model_dump(mode="json", by_alias=True)
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
