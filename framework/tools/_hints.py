"""What kind of type hint a parameter has: the questions schema and conversion both ask."""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = [
    "JSON_TYPES",
    "is_dataclass",
    "is_dict",
    "is_enum",
    "is_list",
    "is_literal",
    "is_optional",
    "is_pydantic_model",
    "is_typeddict",
    "optional_inner",
    "type_name",
]

JSON_TYPES: Final[Mapping[type, str]] = types.MappingProxyType(
    {str: "string", int: "integer", float: "number", bool: "boolean"}
)
"""The JSON type of each Python scalar type."""


def is_optional(hint: Any) -> bool:
    """Whether ``hint`` is ``X | None``."""
    args = typing.get_args(hint)
    return (
        typing.get_origin(hint) in (typing.Union, types.UnionType)
        and len(args) == 2
        and type(None) in args
    )


def optional_inner(hint: Any) -> Any:
    """The ``X`` of ``X | None``."""
    return next(a for a in typing.get_args(hint) if a is not type(None))


def is_literal(hint: Any) -> bool:
    """Whether ``hint`` is ``Literal[...]``."""
    return typing.get_origin(hint) is Literal


def is_enum(hint: Any) -> bool:
    """Whether ``hint`` is an Enum class."""
    return isinstance(hint, type) and issubclass(hint, enum.Enum)


def is_list(hint: Any) -> bool:
    """Whether ``hint`` is ``list[X]``."""
    return typing.get_origin(hint) is list


def is_dict(hint: Any) -> bool:
    """Whether ``hint`` is ``dict[K, V]``."""
    return typing.get_origin(hint) is dict


def is_dataclass(hint: Any) -> bool:
    """Whether ``hint`` is a dataclass (the class, not an instance)."""
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def is_typeddict(hint: Any) -> bool:
    """Whether ``hint`` is a TypedDict class.

    Asked of the class's shape because ``typing.is_typeddict`` does not know the
    ``typing_extensions`` TypedDicts (which the Agents SDK and its users write)
    before Python 3.13.
    """
    return (
        isinstance(hint, type)
        and issubclass(hint, dict)
        and hasattr(hint, "__required_keys__")
        and hasattr(hint, "__optional_keys__")
    )


def is_pydantic_model(hint: Any) -> bool:
    """Whether ``hint`` is a pydantic model class, without importing pydantic.

    A class cannot be a pydantic model unless pydantic is already imported, so
    the many tools that never meet one do not pay for importing it.
    """
    pydantic = sys.modules.get("pydantic")
    return (
        pydantic is not None
        and isinstance(hint, type)
        and issubclass(hint, pydantic.BaseModel)
        and hint is not pydantic.BaseModel
    )


def type_name(hint: Any) -> str:
    """The hint as a person would write it, for error messages."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    return repr(hint)
