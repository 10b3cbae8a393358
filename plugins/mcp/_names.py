"""Default server names: readable, from the package, command or URL, and told apart.

A server's name prefixes its tools when their names clash with another
plugin's, and names it in every message, so it should say which server it
is: ``mcp-server-git`` for ``uvx mcp-server-git``, ``server-everything`` for
``node .../server-everything/dist/index.js``, ``localhost-8000`` for
``http://localhost:8000/mcp``. Two instances of one server usually differ in
a path they are given (``--repository /srv/alpha``), so the last path among
the arguments is added (``mcp-server-git-alpha``); two that differ in nothing
visible get the same name, and the session refuses the clash at start.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePath
from typing import Final
from urllib.parse import urlsplit

from ._targets import HttpTarget, InProcessTarget, StdioTarget, Target

MAX_SERVER_NAME: Final = 32
"""The longest server name; it leaves room for the tool's own name in a prefixed one."""
SERVER_NAME: Final = re.compile(rf"[a-zA-Z0-9_-]{{1,{MAX_SERVER_NAME}}}")

_NOT_NAME: Final = re.compile(r"[^a-zA-Z0-9_-]+")
_LAUNCHERS: Final = frozenset(
    {"uvx", "uv", "npx", "pnpx", "bunx", "pipx", "node", "deno", "docker", "bun", "podman"}
)
"""Programs that run a server named by their first argument, not servers themselves."""
_LAUNCHER_WORDS: Final = frozenset({"run", "tool", "exec", "dlx", "--", "x"})
"""Sub-commands of launchers (``uv tool run``, ``pnpm dlx``) that are not the server."""
_SCRIPTS: Final = (".js", ".mjs", ".cjs", ".ts", ".py")
_GENERIC_SCRIPTS: Final = frozenset({"index", "main", "server", "cli", "__main__", "app", "run"})
_GENERIC_PATHS: Final = frozenset({"mcp", "sse", "api", "v1", "v2", ""})
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def default_name(target: Target) -> str:
    """A readable server name for ``target`` (see the module docstring)."""
    if isinstance(target, InProcessTarget):
        return _clean(target.server.name)
    if isinstance(target, HttpTarget):
        return _from_url(target.url)
    return _from_command(target)


def _clean(raw: str, qualifier: str = "") -> str:
    base = _NOT_NAME.sub("_", raw).strip("_-") or "mcp"
    tail = _NOT_NAME.sub("_", qualifier).strip("_-")
    if not tail or tail == base:
        return base[:MAX_SERVER_NAME]
    tail = tail[: MAX_SERVER_NAME // 2]
    return f"{base[: MAX_SERVER_NAME - len(tail) - 1]}-{tail}"


def _from_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "http"
    name = "localhost" if host in _LOOPBACK else host.removeprefix("www.").removeprefix("mcp.")
    if parts.port is not None:
        name = f"{name}-{parts.port}"
    segments = [s for s in parts.path.split("/") if s.lower() not in _GENERIC_PATHS]
    return _clean(name, segments[-1] if segments else "")


def _from_command(target: StdioTarget) -> str:
    program = PurePath(target.command).name.lower().removesuffix(".exe")
    args = list(target.args)
    if "-m" in args[:-1]:
        module = args[args.index("-m") + 1]
        return _clean(module, _qualifier(args[args.index("-m") + 2 :]))
    words = [a for a in args if not a.startswith("-")]
    while words and words[0] in _LAUNCHER_WORDS:
        words.pop(0)
    launched = program in _LAUNCHERS or program.startswith("python")
    if not launched or not words:
        return _clean(program, _qualifier(args))
    first = words[0]
    rest = args[args.index(first) + 1 :]
    script = Path(first)
    if not script.is_absolute() and target.cwd is not None:
        script = Path(target.cwd) / script
    if first.endswith(_SCRIPTS) or script.is_file():
        return _clean(_script_name(script), _qualifier(rest))
    # A package spec: "@scope/server-x@1.2", "mcp-server-git==2025.1", "ghcr.io/org/image:tag".
    package = first.split("@")[1] if first.startswith("@") else first.split("@")[0]
    package = re.split(r"[=<>~:]", package, maxsplit=1)[0].rsplit("/", 1)[-1]
    return _clean(package or program, _qualifier(rest))


def _script_name(script: Path) -> str:
    """A script's package name (from the nearest ``package.json``), else a telling file name."""
    for folder in list(script.parents)[:6]:
        manifest = folder / "package.json"
        try:
            name = json.loads(manifest.read_text()).get("name")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(name, str) and name:
            return name.rsplit("/", 1)[-1]
    if script.stem.lower() not in _GENERIC_SCRIPTS:
        return script.stem
    telling = [p.name for p in script.parents if p.name and p.name not in ("dist", "build", "src")]
    return telling[0] if telling else script.stem


def _qualifier(args: list[str]) -> str:
    """What tells two instances apart: the last path among the arguments, by its last part."""
    for value in reversed(args):
        candidate = value.split("=", 1)[1] if value.startswith("-") and "=" in value else value
        if candidate.startswith("-"):
            continue
        if "/" in candidate or candidate.startswith(("~", ".")):
            return PurePath(candidate.rstrip("/")).name or candidate
    return ""
