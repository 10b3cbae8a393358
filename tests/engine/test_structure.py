"""The engine's shape: what it imports, what plugins import of it, its handlers.

The engine depends on ``framework.protocol`` and ``framework.audio`` only; its
parts are injected, never looked up among plugins. Plugins use the engine's
public names only. Every client event has one handler, with a docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import framework.engine
from framework.engine import Engine, EngineSession
from framework.protocol import CLIENT_EVENT_TYPES

from .helpers import MemoryConnection

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_engine_imports_only_protocol_and_audio() -> None:
    for path in sorted((ROOT / "framework" / "engine").glob("*.py")):
        ours = {m for m in _imports(path) if m.split(".")[0] in ("framework", "plugins")}
        # framework.errors imports nothing, so every package may use it (tests/test_layout.py).
        allowed = {"framework.errors", "framework.protocol", "framework.audio"}
        assert ours <= allowed, f"{path.name} imports {sorted(ours - allowed)}"


def test_plugins_use_only_public_engine_names() -> None:
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "framework.engine"
            ):
                assert node.module == "framework.engine", f"{path}: {node.module}"
                for alias in node.names:
                    assert hasattr(framework.engine, alias.name), f"{path}: {alias.name}"


def test_every_client_event_has_one_documented_handler() -> None:
    session = EngineSession(Engine().options, MemoryConnection())
    table = session._handler_table()
    missing = [t for t, cls in CLIENT_EVENT_TYPES.items() if cls not in table]
    assert missing == [], missing
    for cls, handler in table.items():
        assert handler.__doc__, f"the handler of {cls.__name__} has no docstring"
