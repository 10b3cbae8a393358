"""Tool names: the protocol's rule, and one policy for fitting any text into it.

The Realtime API takes the name rule of OpenAI function calling: letters, digits,
``_`` and ``-``, at most 64 characters (the ``name`` field of a function
definition in OpenAI's API reference). Names made up by the framework (a
plugin's prefix on a clashing tool, a handoff's ``transfer_to_<agent>``) go
through :func:`fit_name`, so they all fit the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = ["MAX_NAME_LENGTH", "check_name", "fit_name", "qualified_name", "resolve_names"]

MAX_NAME_LENGTH: Final = 64
"""The longest tool name the protocol takes."""

_NAME: Final = re.compile(rf"[a-zA-Z0-9_-]{{1,{MAX_NAME_LENGTH}}}")
_NOT_NAME: Final = re.compile(r"[^a-zA-Z0-9_-]+")
_DIGEST: Final = 8


def check_name(name: str, *, advice: str = "") -> None:
    """Refuses a name the protocol does not take.

    Args:
        name: The tool name.
        advice: Appended to the message, e.g. how to pass another name.

    Raises:
        ValueError: The name does not match ``^[a-zA-Z0-9_-]{1,64}$``.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"Tool name {name!r} is invalid: it must match "
            f"^[a-zA-Z0-9_-]{{1,{MAX_NAME_LENGTH}}}${advice}."
        )


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:_DIGEST]


def fit_name(name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """``name`` made a valid tool name of at most ``limit`` characters.

    Each run of characters the protocol refuses becomes one ``_`` (and leading or
    trailing ones are dropped), so ``"Billing Agent"`` becomes ``"Billing_Agent"``.
    A name still too long is cut and ends in ``_`` and a short hash of the whole
    name, so two long names that share their start stay apart. A name with no
    usable character at all becomes ``tool_`` and that hash. A valid name within
    the limit comes back unchanged.

    Args:
        name: Any text.
        limit: The longest result; at least 16, at most 64.

    Raises:
        ValueError: ``limit`` is out of range.
    """
    if not 2 * _DIGEST <= limit <= MAX_NAME_LENGTH:
        raise ValueError(f"limit must be between {2 * _DIGEST} and {MAX_NAME_LENGTH}, got {limit}")
    if len(name) <= limit and _NAME.fullmatch(name):
        return name
    fitted = _NOT_NAME.sub("_", name).strip("_")
    if not fitted:
        return f"tool_{_digest(name)}"
    if len(fitted) <= limit:
        return fitted
    return f"{fitted[: limit - _DIGEST - 1]}_{_digest(name)}"


def qualified_name(owner: str, name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """The name a tool of ``owner`` (a plugin) takes when its own name is shared.

    Args:
        owner: Whose tool it is, e.g. a plugin's name.
        name: The tool's own name.
        limit: As for :func:`fit_name`.
    """
    return fit_name(f"{owner}_{name}", limit)


def resolve_names(reserved: Iterable[str], offered: Sequence[tuple[str, str]]) -> list[str | None]:
    """The names offered tools take beside reserved ones, so no tool hides another.

    A reserved name (an agent's own tool) is kept by its owner. An offered tool
    (``(owner, name)``, e.g. a plugin's) keeps its name when nobody else has it,
    and takes :func:`qualified_name` when the name is reserved or offered more
    than once, whatever order the tools came in. A tool whose qualified name is
    taken too gets ``None``: it is left out.

    Args:
        reserved: Names that are already taken.
        offered: The owner and name of each offered tool, in order.

    Returns:
        One name or ``None`` per offered tool, in the same order.
    """
    taken = set(reserved)
    counts: dict[str, int] = {}
    for _, name in offered:
        counts[name] = counts.get(name, 0) + 1
    names: list[str | None] = []
    for owner, name in offered:
        if name in taken or counts[name] > 1:
            name = qualified_name(owner, name)
        if name in taken:
            names.append(None)
            continue
        taken.add(name)
        names.append(name)
    return names
