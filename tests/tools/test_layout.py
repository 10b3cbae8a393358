"""The tools package depends on the protocol, the error family and the standard stack only."""

import ast
import subprocess
import sys
from pathlib import Path

import framework.tools

ALLOWED = ("framework.errors", "framework.protocol", "framework.tools")


def test_tools_imports_nothing_above_the_protocol() -> None:
    package = Path(framework.tools.__file__).parent
    found: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module}
            elif isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            else:
                continue
            found.setdefault(path.name, set()).update(names)
    assert "_function.py" in found  # the walk saw the package
    upward = {
        module: sorted(
            n for n in names if n.split(".")[0] == "framework" and not n.startswith(ALLOWED)
        )
        for module, names in found.items()
    }
    assert {m: names for m, names in upward.items() if names} == {}


LAZY = """
import sys
import attrs
from framework.tools import tool

@attrs.frozen
class Point:
    lat: float

@tool
def f(p: Point, n: int = 1) -> None: ...

f.parse_arguments('{"p": {"lat": 1}}')
print(sorted(m for m in ("pydantic", "mcp") if m in sys.modules))
"""


def test_tools_without_pydantic_hints_do_not_import_pydantic() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
