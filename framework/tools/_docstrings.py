"""Google-style docstrings read for a tool: its summary and its parameters' descriptions."""

from __future__ import annotations

import inspect
import re
from typing import Final

__all__ = ["parse_docstring"]

_SECTIONS: Final = re.compile(
    r"(args|arguments|parameters|params|keyword args|keyword arguments|returns?|raises|"
    r"yields?|examples?|notes?|attributes|warnings?|see also|todo|references)\s*:",
    re.IGNORECASE,
)
_ARGS_SECTION: Final = re.compile(
    r"(args|arguments|parameters|params|keyword args|keyword arguments)\s*:", re.IGNORECASE
)
_ARG_ENTRY: Final = re.compile(r"\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Splits a Google-style docstring into its first paragraph and its ``Args:`` entries."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTIONS.fullmatch(line.strip()):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    for i, header in enumerate(lines):
        if not _ARGS_SECTION.fullmatch(header.strip()):
            continue
        entry_indent: int | None = None
        current: str | None = None
        for line in lines[i + 1 :]:
            if not line.strip():
                continue
            if _indent(line) <= _indent(header):
                break
            if entry_indent is None:
                entry_indent = _indent(line)
            if _indent(line) <= entry_indent:
                match = _ARG_ENTRY.fullmatch(line.strip())
                current = match["name"] if match else None
                if match:
                    params[match["name"]] = match["text"].strip()
            elif current is not None:
                params[current] = f"{params[current]} {line.strip()}".strip()
    return " ".join(summary), params
