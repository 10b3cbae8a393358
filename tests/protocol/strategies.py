"""Hypothesis strategies for every wire class, derived from its annotations.

``sdk_valid=True`` keeps to what the official SDK accepts (enum-like strings
take their known literal values, no unknown fields, no ``Unknown*`` variants),
so the output can be checked by the oracle; otherwise anything our model
allows is drawn, including unknown fields and unknown union members.
"""

from __future__ import annotations

import collections.abc
import functools
import types
import typing
from typing import Any, Literal, get_args, get_origin

import attrs
from hypothesis import strategies as st

from framework.protocol import (
    UNSET,
    UnknownItem,
    UnknownVariant,
)
from framework.protocol._base import _RawWrapper, _UnsetType

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _members(tp: Any) -> list[Any]:
    if get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in get_args(tp) for m in _members(a)]
    return [tp]


def _value(tp: Any, sdk_valid: bool, depth: int) -> st.SearchStrategy[Any]:
    members = _members(tp)
    literal_strs = [
        v for m in members if get_origin(m) is Literal for v in get_args(m) if isinstance(v, str)
    ]
    literal_ints = [
        v
        for m in members
        if get_origin(m) is Literal
        for v in get_args(m)
        if isinstance(v, int) and not isinstance(v, bool | _UnsetType)
    ]
    options: list[st.SearchStrategy[Any]] = []
    for member in members:
        origin = get_origin(member)
        if member is type(None):
            options.append(st.none())
        elif member is str:
            if not (sdk_valid and literal_strs):
                options.append(_text)
        elif member is int:
            if not (sdk_valid and literal_ints):
                options.append(st.integers(-(2**40), 2**40))
        elif member is float:
            options.append(_floats)
        elif member is bool:
            options.append(st.booleans())
        elif member is Any:
            options.append(_json)
        elif origin is Literal:
            values = [v for v in get_args(member) if not isinstance(v, _UnsetType)]
            if values:
                options.append(st.sampled_from(values))
        elif origin in (collections.abc.Sequence, list):
            elem = _value(get_args(member)[0], sdk_valid, depth + 1)
            options.append(st.lists(elem, max_size=0 if depth > 4 else 2))
        elif origin in (collections.abc.Mapping, dict) and sdk_valid and get_args(member)[1] is Any:
            # Free-form objects inside a map are typed Responses-API inputs to the
            # SDK (prompt variables); the other members (strings) are drawn instead.
            pass
        elif origin in (collections.abc.Mapping, dict):
            val = _value(get_args(member)[1], sdk_valid, depth + 1)
            options.append(st.dictionaries(_text, val, max_size=2))
        elif member in (UnknownItem, UnknownVariant):
            if not sdk_valid:
                options.append(
                    st.builds(lambda t, cls=member: cls(raw={"type": "zz_" + t, "x": 1}), _text)
                )
        elif attrs.has(member) and not issubclass(member, _RawWrapper):
            options.append(instances(member, sdk_valid=sdk_valid, depth=depth + 1))
    return st.one_of(options)


@functools.cache
def instances(cls: type, *, sdk_valid: bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """Instances of a wire class with every optional field unset, null or set."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):
        if field.name == "extra":
            continue
        hint = hints[field.name]
        if field.name in ("type", "role") and get_origin(hint) is Literal:
            continue  # the class's own tag, left at its default
        optional = any(isinstance(v, _UnsetType) for m in _members(hint) for v in get_args(m))
        strategy = _value(hint, sdk_valid, depth)
        fields[field.name] = (st.just(UNSET) | strategy) if optional else strategy
    if not sdk_valid:
        names = {f.name for f in attrs.fields(cls)}
        fields["extra"] = st.dictionaries(_text.filter(lambda k: k not in names), _json, max_size=2)
    return st.builds(cls, **fields)
