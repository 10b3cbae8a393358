"""The building blocks every wire type shares.

This module owns the "not set" sentinel, the base class of all wire objects
(which carries the fields a peer sent that we do not model yet), the fallback
classes for tagged unions whose tag we do not know, and the two exceptions of
the protocol layer.

Three states of an optional field are kept apart on purpose: ``UNSET`` (never
set, omitted on the wire), ``None`` (sent as JSON ``null``, which the protocol
gives a meaning, e.g. ``turn_detection: null`` turns VAD off) and a value.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs

from framework.errors import CantataError

__all__ = [
    "EMPTY",
    "UNSET",
    "ProtocolError",
    "UnknownClientEvent",
    "UnknownItem",
    "UnknownServerEvent",
    "UnknownVariant",
    "Unset",
    "ValidationError",
    "WireObject",
]


class _UnsetType(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _UnsetType.UNSET
"""The value of an optional field that was never set; it is omitted on the wire."""

Unset: TypeAlias = Literal[_UnsetType.UNSET]
"""The type of :data:`UNSET`, for annotations (``int | None | Unset``)."""

EMPTY: Final[Mapping[str, Any]] = types.MappingProxyType({})
"""The shared, read-only mapping of a wire object without unknown fields."""

# Fields whose values are credentials: shown as "***" in reprs so that a logged
# session config never leaks a token.
_SECRET_FIELDS: Final = frozenset({"authorization"})


@attrs.frozen(kw_only=True, repr=False)
class WireObject:
    """Base of every Realtime wire type.

    ``extra`` holds the JSON fields a peer sent that this version does not
    model. They never make parsing fail and are written back by ``to_dict``,
    so a parse/serialize round trip loses nothing.
    """

    extra: Mapping[str, Any] = attrs.field(default=EMPTY, eq=True)

    def __repr__(self) -> str:
        parts = []
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if value is UNSET or field.name == "extra":
                continue
            shown = "'***'" if field.name in _SECRET_FIELDS and value else repr(value)
            parts.append(f"{field.name}={shown}")
        if self.extra:
            parts.append(f"extra={dict(self.extra)!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class ProtocolError(CantataError, ValueError):
    """A frame that does not follow the protocol.

    Raised by ``parse_server_event`` and ``parse_client_event`` for bad JSON,
    a non-object frame, a frame without a ``type``, and a known type with a
    missing or mistyped field.

    Attributes:
        raw: the frame as received (text, bytes or a dict).
        path: the dotted path of the offending field, or ``""``.
        reason: what was wrong, without the path.
    """

    def __init__(self, reason: str, *, raw: object, path: str = "") -> None:
        self.raw = raw
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class ValidationError(CantataError, ValueError):
    """A wire object built with a value the protocol does not allow.

    Raised by ``to_dict``/``to_json`` so the mistake surfaces before anything
    reaches the socket; the message names the path, for example
    ``session.audio.input.turn_detection.silence_duration_ms: expected int, got str``.
    """

    def __init__(self, reason: str, *, path: str = "") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


@attrs.frozen
class _RawWrapper:
    """Shared shape of the fallbacks: the raw JSON object, kept verbatim."""

    raw: Mapping[str, Any]

    @property
    def type(self) -> str:
        """The ``type`` tag the peer sent (``""`` when there was none)."""
        tag = self.raw.get("type")
        return tag if isinstance(tag, str) else ""


@attrs.frozen
class UnknownServerEvent(_RawWrapper):
    """A server event whose ``type`` this version does not know, kept whole."""


@attrs.frozen
class UnknownClientEvent(_RawWrapper):
    """A client event whose ``type`` this version does not know, kept whole."""


@attrs.frozen
class UnknownItem(_RawWrapper):
    """A conversation item of an unknown ``type`` (or message ``role``), kept whole."""

    @property
    def id(self) -> str | None:
        """The item's ``id``, when it has a string one."""
        value = self.raw.get("id")
        return value if isinstance(value, str) else None


@attrs.frozen
class UnknownVariant(_RawWrapper):
    """A member of any other tagged union (tools, formats, VAD...) with an unknown tag."""
