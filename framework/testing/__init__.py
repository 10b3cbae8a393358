"""Helpers for testing agents (and Cantata itself) without a network or a key.

``run_engine`` starts the local Realtime engine in-process on a free loopback
port, with a rules file (or rules text) for its scripted brain::

    async with run_engine(rules="examples/weather.toml") as url:
        ...  # connect a session to url
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from framework.engine import Engine, Rules, open_engine


@asynccontextmanager
async def run_engine(
    rules: str | Path | Rules | None = None, **engine_options: Any
) -> AsyncIterator[str]:
    """Runs a local engine for the block; yields its ``ws://.../v1/realtime`` URL.

    Args:
        rules: a rules file path, rules TOML text (anything containing a newline),
            parsed :class:`~framework.engine.Rules`, or None for the built-in rules.
        **engine_options: further :class:`~framework.engine.Engine` options
            (``api_key``, ``latency_ms``, ``drop_after_events``, ...).
    """
    if isinstance(rules, Path) or (isinstance(rules, str) and "\n" not in rules):
        rules = Rules.from_file(rules)
    elif isinstance(rules, str):
        rules = Rules.from_toml(rules)
    async with open_engine(Engine(rules=rules, **engine_options)) as running:
        yield running.url
