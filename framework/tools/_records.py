"""Records: the classes a tool parameter may be, read as one list of fields.

attrs classes, dataclasses, TypedDicts and pydantic models each keep their
fields their own way; :func:`fields_of` reads any of them into
:class:`RecordField` values, so the schema is built one way for all four.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from framework.protocol import UNSET
from framework.tools._hints import is_dataclass, is_pydantic_model, is_typeddict

__all__ = ["RecordField", "fields_of", "is_record"]


@attrs.frozen(kw_only=True)
class RecordField:
    """One field of a record, as a tool sees it.

    Attributes:
        name: The Python name of the field.
        key: The JSON key the model writes (a pydantic alias, else ``name``).
        hint: The field's type hint, resolved.
        required: Whether the model must give it.
        default: The default the schema may show, or ``UNSET`` (none, or made by a factory).
        description: What the field is, for the model ("" if nothing says).
    """

    name: str
    key: str
    hint: Any
    required: bool
    default: Any = UNSET
    description: str = ""


def _hints_of(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except NameError as e:
        raise TypeError(f"cannot resolve the type hints of {cls.__qualname__}: {e}") from e


def _attrs_fields(cls: Any) -> list[RecordField]:
    try:
        attrs.resolve_types(cls)
    except NameError as e:
        raise TypeError(f"cannot resolve the type hints of {cls.__qualname__}: {e}") from e
    found = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        if field.type is None:
            raise TypeError(f"field {cls.__qualname__}.{field.name} has no type annotation")
        factory = isinstance(field.default, attrs.Factory)  # type: ignore[arg-type]
        found.append(
            RecordField(
                name=field.name,
                key=field.name,
                hint=field.type,
                required=field.default is attrs.NOTHING,
                default=UNSET if field.default is attrs.NOTHING or factory else field.default,
                description=str(field.metadata.get("description", "")),
            )
        )
    return found


def _dataclass_fields(cls: Any) -> list[RecordField]:
    hints = _hints_of(cls)
    missing = dataclasses.MISSING
    return [
        RecordField(
            name=field.name,
            key=field.name,
            hint=hints[field.name],
            required=field.default is missing and field.default_factory is missing,
            default=UNSET if field.default is missing else field.default,
            description=str(field.metadata.get("description", "")),
        )
        for field in dataclasses.fields(cls)
        if field.init
    ]


def _typeddict_fields(cls: Any) -> list[RecordField]:
    # get_type_hints drops the Required[] and NotRequired[] wrappers; the class
    # has already sorted its keys by them (and by total=).
    required: frozenset[str] = cls.__required_keys__
    return [
        RecordField(name=name, key=name, hint=hint, required=name in required)
        for name, hint in _hints_of(cls).items()
    ]


def _pydantic_fields(cls: Any) -> list[RecordField]:
    from pydantic_core import PydanticUndefined

    found = []
    for name, field in cls.model_fields.items():
        if field.annotation is None:
            raise TypeError(f"field {cls.__qualname__}.{name} has no type annotation")
        found.append(
            RecordField(
                name=name,
                # The key the model writes is the one pydantic validates by.
                key=field.validation_alias
                if isinstance(field.validation_alias, str)
                else field.alias or name,
                hint=field.annotation,
                required=field.is_required(),
                default=UNSET if field.default is PydanticUndefined else field.default,
                description=field.description or "",
            )
        )
    return found


_KINDS: Final[Mapping[Callable[[Any], bool], Callable[[Any], list[RecordField]]]] = {
    attrs.has: _attrs_fields,
    is_dataclass: _dataclass_fields,
    is_typeddict: _typeddict_fields,
    is_pydantic_model: _pydantic_fields,
}


def is_record(hint: Any) -> bool:
    """Whether ``hint`` is a class :func:`fields_of` can read."""
    return isinstance(hint, type) and any(kind(hint) for kind in _KINDS)


def fields_of(cls: type) -> list[RecordField]:
    """The fields of a record class, in declaration order.

    Raises:
        TypeError: Its hints cannot be resolved, a field has none, or ``cls``
            is not a record.
    """
    for kind, read in _KINDS.items():
        if kind(cls):
            return read(cls)
    raise TypeError(f"{cls.__qualname__} is not an attrs class, dataclass, TypedDict or model")
