"""Rendering: a tool's return value as the text the model reads."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import attrs
import orjson

from framework.tools._convert import converter
from framework.tools._hints import is_pydantic_model

__all__ = ["describe_exception", "render"]


def render(value: Any) -> str:
    """The model-visible text of a return value.

    A str is sent as is; an Enum member as its value; None, bool, int, float, list,
    tuple, dict, attrs and dataclass instances and pydantic models as JSON (None is
    ``null``); anything else as ``str(value)``.

    Raises:
        TypeError: A container holds something JSON cannot encode.
    """
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return str.__str__(value)
    if (
        value is None
        or isinstance(value, (bool, int, float, list, tuple, dict))
        or attrs.has(type(value))
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
        or is_pydantic_model(type(value))
    ):
        return orjson.dumps(converter.unstructure(value), option=orjson.OPT_NON_STR_KEYS).decode()
    return str(value)


def describe_exception(exc: BaseException) -> str:
    """An exception as one line: its type, and its message when it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
