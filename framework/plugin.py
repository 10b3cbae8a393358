"""Plugins: tools, MCP servers, approval policies and engine parts, in one system.

A plugin is a :class:`Plugin` subclass. It says what it contributes
(:meth:`Plugin.describe`, for ``cantata plugins``) and, for a session, opens
an async lifetime with :meth:`Plugin.open`: an async context manager that the
session holds open in a task of its own (so it may keep a nursery across its
``yield``) until the session ends, with teardown bounded by
:data:`TEARDOWN_TIMEOUT_S`. It yields a :class:`Contribution` (defined by the
runtime, which only knows plugins by that protocol): the function tools it
offers now (a callable, because an MCP server's list can change), hosted tool
definitions for the server to run, an approval policy, instructions to add,
and a service for the application. The session opens it through
:meth:`Plugin.open_in`, with a :class:`PluginContext`: how to say the tools
changed, and how to ask the user a question.

Plugins reach a session two ways: in code (``MyAgent(plugins=[...])`` or a
``plugins`` class attribute), or installed, through the ``cantata.plugins``
entry-point group, and then named by their entry-point name
(``plugins=["time"]``). The built-in plugins in ``plugins/`` register
through the same entry points as third-party ones. A plugin that fails to
load is reported with its error and breaks no other.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs

from framework.errors import PluginError
from framework.runtime import PLUGIN_TEARDOWN_S, Contribution, PluginContext
from framework.tools import FunctionTool

__all__ = [
    "DEFAULT_PARTS_PLUGIN",
    "ENTRY_POINT_GROUP",
    "TEARDOWN_TIMEOUT_S",
    "ChosenPart",
    "Contribution",
    "InstalledPlugin",
    "Plugin",
    "PluginContext",
    "PluginError",
    "ToolsPlugin",
    "choose_engine_parts",
    "default_engine_parts",
    "engine_part",
    "installed_plugin",
    "installed_plugins",
    "load_plugin",
    "resolve_plugins",
]

ENTRY_POINT_GROUP = "cantata.plugins"
TEARDOWN_TIMEOUT_S = PLUGIN_TEARDOWN_S
"""How long a plugin may take to close when its session ends."""


class Plugin:
    """The base class of plugins; override what you contribute.

    Attributes:
        name: how the plugin is listed and named (default: the class name).
    """

    name: str = ""

    def __init__(self) -> None:
        if not self.name:
            self.name = type(self).__name__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuses, when the class is defined, a plugin that would silently do nothing.

        Raises:
            PluginError: a class attribute named after a :class:`Contribution`
                field (``tools = [...]`` is never read), a hook that is not a
                method, or an ``open`` / ``open_in`` that is a bare async
                generator rather than an async context manager.
        """
        super().__init_subclass__(**kwargs)
        where = f"plugin {cls.__qualname__}"
        for field in attrs.fields(Contribution):
            if field.name in vars(cls):
                hint = " (or subclass ToolsPlugin)" if field.name == "tools" else ""
                raise PluginError(
                    f"{where}: a {field.name!r} attribute is never read; give it from "
                    f"open(), as Contribution({field.name}=...){hint}"
                )
        for hook in _HOOKS:
            method = vars(cls).get(hook)
            if method is None:
                continue
            if not callable(method):
                raise PluginError(f"{where}: {hook} must be a method, not {type(method).__name__}")
            if hook in ("open", "open_in") and inspect.isasyncgenfunction(method):
                raise PluginError(
                    f"{where}: {hook}() is an async generator; decorate it with "
                    "@contextlib.asynccontextmanager"
                )

    def describe(self) -> dict[str, list[str]]:
        """What this plugin contributes, by kind (``tools``, ``mcp servers``, ...)."""
        return {}

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        """The plugin's lifetime in one session; ``changed`` signals a new tool list.

        Raises:
            Exception: whatever keeps the plugin from serving the session; the
                session does not start and ``open_session`` raises it.
        """
        yield Contribution()

    def open_in(self, context: PluginContext) -> AbstractAsyncContextManager[Contribution]:
        """The plugin's lifetime in one session, with what the session offers it.

        The session calls this; by default it is :meth:`open` with
        ``context.changed``. Override it instead of :meth:`open` to use the
        rest of the context (asking the user questions, for instance).
        """
        return self.open(context.changed)

    # Parts of the local engine a plugin may provide (by name):
    def engine_parts(self) -> dict[str, Any]:
        """Engine plug-ins: ``{"brain:NAME": Brain, "transcriber:NAME": ..., ...}``."""
        return {}

    def default_engine_parts(self) -> Sequence[str]:
        """Keys of :meth:`engine_parts` that stand in when a command names no part of
        their kind; only parts that can run here (their packages installed)."""
        return ()


_HOOKS = ("describe", "open", "open_in", "engine_parts", "default_engine_parts")
"""The methods a plugin overrides."""


class ToolsPlugin(Plugin):
    """A plugin that offers a fixed set of function tools."""

    def __init__(self, tools: Sequence[FunctionTool | Callable[..., Any]], name: str = "") -> None:
        self.name = name
        super().__init__()
        self._tools = [
            t if isinstance(t, FunctionTool) else FunctionTool.from_function(t) for t in tools
        ]

    def describe(self) -> dict[str, list[str]]:
        return {"tools": [t.name for t in self._tools]}

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        tools = tuple(self._tools)
        yield Contribution(tools=lambda: tools)


@attrs.frozen(kw_only=True)
class InstalledPlugin:
    """One entry point of the ``cantata.plugins`` group, loaded or not.

    Attributes:
        name: the entry point's name.
        source: ``module:attribute`` it points at, and its distribution.
        plugin: the plugin, when it loaded.
        error: why it did not load (``"ImportError: ..."``), when it did not.
    """

    name: str
    source: str
    plugin: Plugin | None = None
    error: str | None = None


def _instantiate(obj: Any) -> Plugin:
    plugin = (
        obj() if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Plugin)) else obj
    )
    if not isinstance(plugin, Plugin):
        raise TypeError(f"expected a Plugin, got {type(plugin).__name__}")
    return plugin


def installed_plugins() -> list[InstalledPlugin]:
    """Every plugin installed through entry points; failures are reported, not raised."""
    entries = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [_load_entry(entry) for entry in sorted(entries, key=lambda e: e.name)]


def installed_plugin(name: str) -> InstalledPlugin | None:
    """The installed plugin ``name``, loading no other (``None``: not installed)."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
        return _load_entry(entry)
    return None


def _load_entry(entry: importlib.metadata.EntryPoint) -> InstalledPlugin:
    dist = entry.dist.name if entry.dist is not None else "?"
    source = f"{entry.value} ({dist})"
    try:
        plugin = _instantiate(entry.load())
    except Exception as e:
        return InstalledPlugin(name=entry.name, source=source, error=f"{type(e).__name__}: {e}")
    return InstalledPlugin(name=entry.name, source=source, plugin=plugin)


def resolve_plugins(specs: Sequence[Plugin | str]) -> list[Plugin]:
    """Plugins from a mix of instances and installed plugins' names.

    Raises:
        PluginError: a name that no installed plugin has, or one that failed
            to load (with its error).
    """
    installed: dict[str, InstalledPlugin] | None = None
    out: list[Plugin] = []
    for spec in specs:
        if isinstance(spec, Plugin):
            out.append(spec)
            continue
        if installed is None:
            installed = {p.name: p for p in installed_plugins()}
        entry = installed.get(spec)
        if entry is None:
            known = ", ".join(sorted(installed)) or "none"
            raise PluginError(f"no installed plugin is named {spec!r} (installed: {known})")
        if entry.plugin is None:
            raise PluginError(f"plugin {spec!r} failed to load: {entry.error}")
        out.append(entry.plugin)
    return out


def load_plugin(name: str, **options: Any) -> Plugin:
    """The installed plugin ``name``, built with ``options`` (``load_plugin("recorder",
    directory="calls")``): its entry point's class is called with them.

    Raises:
        PluginError: no installed plugin has that name, or it failed to load or
            does not take those options.
    """
    found = [e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == name]
    if not found:
        known = ", ".join(sorted(p.name for p in installed_plugins())) or "none"
        raise PluginError(f"no installed plugin is named {name!r} (installed: {known})")
    try:
        made = found[0].load()
        plugin = made(**options) if isinstance(made, type) else _instantiate(made)
    except Exception as e:
        raise PluginError(f"plugin {name!r} failed to load: {type(e).__name__}: {e}") from e
    if not isinstance(plugin, Plugin):
        raise PluginError(f"plugin {name!r} is not a Plugin ({type(plugin).__name__})")
    return plugin


def engine_part(kind: str, name: str) -> Any:
    """The local-engine part ``kind:name`` (``transcriber:pocketsphinx``, ...)
    that an installed plugin provides.

    Raises:
        PluginError: no installed plugin provides it; the message lists the
            ones of that kind that are available.
    """
    return _find_part(installed_plugins(), kind, name)


def _find_part(installed: Sequence[InstalledPlugin], kind: str, name: str) -> Any:
    offered = []
    for entry in installed:
        if entry.plugin is None:
            continue
        for key, part in entry.plugin.engine_parts().items():
            if key == f"{kind}:{name}":
                return part
            if key.startswith(f"{kind}:"):
                offered.append(key.split(":", 1)[1])
    known = ", ".join(sorted(offered)) or "none installed"
    raise PluginError(f"no installed plugin provides the {kind} {name!r} (available: {known})")


@attrs.frozen(kw_only=True)
class ChosenPart:
    """An engine part a command uses, and why.

    Attributes:
        kind: ``transcriber``, ``synthesizer``, ``vad`` or ``brain``.
        name: its name among the plugin's parts (``pocketsphinx``).
        part: the part itself, for ``Engine(**{kind: part})``.
        default: chosen because the command named none of its kind.
    """

    kind: str
    name: str
    part: Any
    default: bool


DEFAULT_PARTS_PLUGIN = "speech"
"""The installed plugin whose engine parts stand in when a command names none."""

BUILTIN_PART = "builtin"
"""The name that asks for the engine's own part of a kind (energy VAD, tone voice, no
transcriber) even when a plugin would stand in: ``cantata serve --vad builtin``."""


def choose_engine_parts(
    named: Mapping[str, str | None], *, phrases: Sequence[str] = ()
) -> list[ChosenPart]:
    """The engine parts of each kind in ``named``: the one named, else an installed default.

    ``phrases`` (a rules file's ``phrases``) limit a transcriber that can be
    limited: one with a ``with_phrases(phrases)`` method, which returns the
    transcriber that hears only those.

    Defaults come from the :data:`DEFAULT_PARTS_PLUGIN` plugin's
    :meth:`~Plugin.default_engine_parts`, and only that plugin is loaded for
    them (a command's start-up does not pay for every plugin's imports). A
    kind with no name and no default, or named :data:`BUILTIN_PART`, is left
    out: the engine's own default serves.

    Raises:
        PluginError: a named part that no installed plugin provides.
    """
    chosen: list[ChosenPart] = []
    installed: list[InstalledPlugin] | None = None
    for kind, name in named.items():
        if name == BUILTIN_PART:
            continue  # left out: the engine's own default serves
        if name is not None:
            installed = installed if installed is not None else installed_plugins()
            part = _find_part(installed, kind, name)
            chosen.append(ChosenPart(kind=kind, name=name, part=part, default=False))
    unnamed = [kind for kind, name in named.items() if name is None]
    entry = installed_plugin(DEFAULT_PARTS_PLUGIN) if unnamed else None
    if entry is not None and entry.plugin is not None:
        offered = entry.plugin.default_engine_parts()
        parts = entry.plugin.engine_parts() if offered else {}
        for kind in unnamed:
            key = next((k for k in offered if k.startswith(f"{kind}:")), None)
            if key is not None:
                chosen.append(
                    ChosenPart(kind=kind, name=key.split(":", 1)[1], part=parts[key], default=True)
                )
    if phrases:
        chosen = [_with_phrases(c, phrases) for c in chosen]
    return chosen


def _with_phrases(chosen: ChosenPart, phrases: Sequence[str]) -> ChosenPart:
    limit = getattr(chosen.part, "with_phrases", None)
    if chosen.kind != "transcriber" or limit is None:
        return chosen
    return attrs.evolve(chosen, part=limit(phrases))


def default_engine_parts() -> dict[str, Any]:
    """The installed default transcriber, synthesizer and VAD, as ``Engine`` keywords.

    What ``cantata serve`` and ``cantata run`` use when no part is named:
    ``run_engine(**default_engine_parts())`` gives a test the same voice (the
    testing helpers themselves never look parts up, so a test's audio does not
    change with what is installed).
    """
    named = dict.fromkeys(("transcriber", "synthesizer", "vad"))
    return {c.kind: c.part for c in choose_engine_parts(named)}
