"""Dependencies point one way: every import of framework/ and plugins/, parsed.

protocol <- transport <- tools <- runtime <- agent/plugin <- telephony <- fleet <- apps; the engine
depends on the protocol and audio only; ``framework.errors`` on nothing;
nothing imports apps; plugins use public exports only. Every import counts:
at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASE = ("framework.errors",)
WIRE = (*BASE, "framework.protocol")
RUNTIME_DEPS = (*WIRE, "framework.audio", "framework.transport", "framework.tools")
ABOVE_RUNTIME = (*RUNTIME_DEPS, "framework.runtime")

ALLOWED: dict[str, tuple[str, ...]] = {
    "framework.errors": (),
    "framework.protocol": WIRE,
    "framework.audio": WIRE,
    "framework.transport": WIRE,
    "framework.tools": WIRE,
    "framework.engine": (*WIRE, "framework.audio"),
    "framework.runtime": RUNTIME_DEPS,
    "framework.plugin": ABOVE_RUNTIME,
    "framework.agent": (*ABOVE_RUNTIME, "framework.plugin"),
    "framework.testing": (*ABOVE_RUNTIME, "framework.engine", "framework.plugin"),
    # The engine's guarded accept loop serves the phone endpoints (its public exports).
    "framework.telephony": (
        *ABOVE_RUNTIME,
        "framework.plugin",
        "framework.agent",
        "framework.engine",
    ),
    # Workers answer calls as telephony does, and the ingress verifies its webhooks.
    "framework.fleet": (
        *ABOVE_RUNTIME,
        "framework.plugin",
        "framework.agent",
        "framework.engine",
        "framework.telephony",
    ),
    "framework.apps": ("framework",),
    # The playground is an app: the whole framework below it, the runner beside it.
    "framework.apps.playground": ("framework",),
}
"""What each part of the framework may import (besides itself), longest prefix first."""

PENDING: dict[tuple[str, str], str] = {}
"""Known breaches, each with why; an entry that no longer happens fails the test."""


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("framework", "plugins"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            # "from framework import tools" imports a module too.
            names.update(f"{base}.{alias.name}" for alias in node.names if base == "framework")
    return {n for n in names if n.split(".")[0] in ("framework", "plugins")}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _rule(module: str) -> tuple[str, tuple[str, ...]] | None:
    for prefix in sorted(ALLOWED, key=len, reverse=True):
        if _within(module, prefix):
            return prefix, ALLOWED[prefix]
    return None


def _breaches() -> dict[tuple[str, str], str]:
    breaches = {}
    for module, path in _modules().items():
        for name in _imports(module, path):
            if module.startswith("plugins"):
                private = any(p.startswith("_") for p in name.split(".")[1:])
                if name.startswith("framework") and (private or _within(name, "framework.apps")):
                    breaches[(module, name)] = "plugins use public exports only"
                continue
            if module == "framework":
                if _within(name, "framework.apps"):
                    breaches[(module, name)] = "nothing imports apps"
                continue
            rule = _rule(module)
            if rule is None:
                breaches[(module, name)] = "a module no rule covers"
                continue
            own, allowed = rule
            if _within(name, own) or any(_within(name, a) for a in allowed):
                continue
            if name == "framework" and own == "framework.apps":
                continue
            breaches[(module, name)] = f"{own} may import only {', '.join(allowed) or 'nothing'}"
    return breaches


def test_imports_point_one_way() -> None:
    breaches = _breaches()
    assert len(_modules()) > 60  # the walk saw the tree
    unexpected = {k: v for k, v in breaches.items() if k not in PENDING}
    assert unexpected == {}
    gone = [k for k in PENDING if k not in breaches]
    assert gone == [], f"no longer true, delete from PENDING: {gone}"


def test_the_checker_sees_a_breach() -> None:
    # The rule the real tree follows, applied to imports it must refuse.
    assert _rule("framework.runtime._edge") == ("framework.runtime", RUNTIME_DEPS)
    for module, name in (
        ("framework.runtime._edge", "framework.agent"),
        ("framework.runtime._edge", "framework.plugin"),
        ("framework.engine._session", "framework.runtime"),
        ("framework.tools._function", "framework.transport"),
        ("framework.agent", "framework.apps.cli"),
    ):
        own, allowed = _rule(module)  # type: ignore[misc]
        assert not any(_within(name, a) for a in (own, *allowed)), (module, name)


LAZY = """
import sys
import framework.engine
import framework.protocol
import framework.transport
print(sorted(m for m in sys.modules if m.startswith(("framework.runtime", "framework.agent"))))
"""


def test_the_engine_and_the_protocol_do_not_load_the_runtime() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
