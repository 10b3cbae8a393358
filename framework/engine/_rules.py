"""The rules file of the scripted brain: TOML, checked whole when it loads.

The language::

    fallback = "Sorry, I can only talk about the weather."    # no rule matched

    [[rule]]
    when = "weather in (?P<city>[A-Za-z ]+)"   # a regex on the latest user text
    say = "One moment."                        # optional: said before the calls
    call = "get_weather"                       # a function, or "label.tool" (hosted MCP)
    args = { city = "{city}" }                 # strings are templates over the groups

    [[rule]]
    after = "get_weather"                      # answers that tool's output
    say = ["Here it is.", "In {city} it is {output}."]   # several messages

``say`` is one message or a list of them, each its own output item, as a
realtime model says a short preamble and then the answer. ``calls = [{ name =
..., args = ... }, ...]`` makes several calls at once. Templates use
``{name}`` (a named group; in an ``after`` rule also the call's arguments and
``{output}``), ``{output[key]}`` for a field of a JSON output, and ``{{``/``}}``
for literal braces. ``greeting`` (a response asked for before the user has
said anything: a phone call's first words), ``unreadable`` (user audio with
no transcript), ``denied``
(``{server_label}``, ``{name}``, ``{reason}``) and ``failed`` (``{server_label}``,
``{name}``, ``{error}``) override the built-in replies.

``phrases = ["What is the weather in Paris", ...]`` lists what users are
expected to say. The brain does not read it; a command that starts the local
engine gives it to a transcriber that can be limited to a grammar (the speech
plugin's pocketsphinx), which then hears only those phrases, exactly, and says
so in the engine's banner. It helps where the users' words are known (a demo,
a test, a menu); open-vocabulary recognition is the default.

Everything the file alone can tell is checked here, so that a mistake is a
:class:`RulesError` naming the rule, not a surprise in the middle of a call:
the TOML, the keys, the regexes, the tool names and every ``{placeholder}``
that can only mean a named group of the rule's own regex. What depends on the
session (its tools, a tool's output, the arguments of a call the client made)
is checked when a response is made, by the brain.
"""

from __future__ import annotations

import json
import re
import string
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import attrs

from framework.errors import CantataError


class RulesError(CantataError, ValueError):
    """A rules file that cannot be used; the message says where and why."""


class TemplateError(LookupError):
    """A placeholder with no value when a template is rendered; the message names it."""


_FIELD = re.compile(r"([A-Za-z_]\w*)((?:\[[^\[\]]+\])*)")
_KEY = re.compile(r"\[([^\[\]]+)\]")


@attrs.frozen
class Template:
    """A text with ``{name}`` placeholders (``{output[key]}`` reads a JSON output).

    ``{{`` and ``}}`` are literal braces. Built by :meth:`parse`, which checks
    the placeholders' syntax, and their names when they are known.
    """

    text: str
    names: frozenset[str]
    """The placeholders' names (``output`` for ``{output[key]}``)."""

    @classmethod
    def parse(cls, text: str, where: str, known: Collection[str] | None) -> Template:
        """Checks ``text``; ``known`` is every name it may use, or None when unknown yet.

        Raises:
            RulesError: bad braces, a placeholder that is not a name, or one
                not in ``known``.
        """
        names = set()
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as e:
            raise RulesError(
                f"{where}: {e} in {text!r}; write {{{{ and }}}} for literal braces"
            ) from None
        for field in fields:
            match = _FIELD.fullmatch(field)
            if match is None:
                raise RulesError(
                    f"{where}: {{{field}}} in {text!r} is not a placeholder; "
                    "use {name} or {output[key]}"
                )
            name, keys = match.groups()
            if keys and name != "output":
                raise RulesError(
                    f"{where}: {{{field}}} in {text!r}: only {{output[key]}} reads fields"
                )
            if known is not None and name not in known:
                offered = ", ".join(f"{{{n}}}" for n in sorted(known)) or "none"
                raise RulesError(
                    f"{where}: unknown placeholder {{{name}}} in {text!r}; "
                    f"the placeholders here are: {offered}"
                )
            names.add(name)
        return cls(text, frozenset(names))

    def render(self, values: Mapping[str, Any]) -> str:
        """The text with its placeholders filled in.

        Raises:
            TemplateError: a name with no value, or an output field that is not there.
        """
        out = []
        for literal, field, spec, conversion in string.Formatter().parse(self.text):
            out.append(literal)
            if field is None:
                continue
            match = _FIELD.fullmatch(field)
            assert match is not None  # checked by parse()
            name, keys = match.groups()
            if name not in values:
                offered = ", ".join(f"{{{n}}}" for n in sorted(values)) or "none"
                raise TemplateError(
                    f"unknown placeholder {{{name}}}; the placeholders here are: {offered}"
                )
            value = values[name]
            if keys:
                value = _field(value, _KEY.findall(keys), field)
            if conversion or spec:
                value = format(string.Formatter().convert_field(value, conversion), spec or "")
            out.append(value if isinstance(value, str) else _text(value))
        return "".join(out)


def _field(output: Any, keys: list[str], field: str) -> Any:
    """``{output[a][b]}``: a field of a tool output that is a JSON object."""
    try:
        value = json.loads(output) if isinstance(output, str) else output
    except ValueError:
        raise TemplateError(f"{{{field}}}: the output is not JSON: {output!r}") from None
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise TemplateError(f"{{{field}}}: the output has no field {key!r}: {output!r}")
    return value


def _text(value: Any) -> str:
    """A typed value as a reply says it: numbers as written, the rest as JSON."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


# --- rules -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ToolCallSpec:
    """A tool call a rule makes: its name, and arguments with template strings."""

    name: str
    args: Mapping[str, Any] = attrs.Factory(dict)
    """The arguments as written; each string is a :class:`Template`."""

    def render(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments with every template filled in."""
        rendered = _render_tree(dict(self.args), values)
        assert isinstance(rendered, dict)
        return rendered


def _render_tree(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.render(values)
    if isinstance(value, dict):
        return {k: _render_tree(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, values) for v in value]
    return value


def _parse_tree(value: Any, where: str, known: Collection[str]) -> Any:
    if isinstance(value, str):
        return Template.parse(value, where, known)
    if isinstance(value, dict):
        return {k: _parse_tree(v, where, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_tree(v, where, known) for v in value]
    return value


@attrs.frozen(kw_only=True)
class Rule:
    """One rule: a trigger (``when`` regex or ``after`` tool) and what to do."""

    where: str = "rule"
    """Where the rule was written ("weather.toml: rule 2"), for error messages."""
    when: re.Pattern[str] | None = None
    after: str | None = None
    say: tuple[Template, ...] = ()
    """The messages of the reply, in order (several make a preamble and an answer)."""
    calls: tuple[ToolCallSpec, ...] = ()


_RULE_KEYS = {"when", "after", "say", "call", "args", "calls"}
# The top-level reply templates, and the placeholders each may use.
_TEMPLATES: dict[str, frozenset[str]] = {
    "fallback": frozenset(),
    "greeting": frozenset(),
    "unreadable": frozenset(),
    "denied": frozenset({"server_label", "name", "reason"}),
    "failed": frozenset({"server_label", "name", "error"}),
}

DEFAULT_FALLBACK = "Sorry, I can only answer greetings here. Give the engine a rules file."
_DEFAULT_TEXTS = {
    "fallback": DEFAULT_FALLBACK,
    "unreadable": (
        "I heard you, but I can't make out audio: this engine has no transcriber installed."
    ),
    "denied": "I did not run {name}: the call was not approved.",
    "failed": "The {name} tool failed: {error}",
}


def _default(key: str) -> Template:
    return Template.parse(_DEFAULT_TEXTS[key], "built-in", _TEMPLATES[key])


@attrs.frozen(kw_only=True)
class Rules:
    """A parsed rules file."""

    rules: tuple[Rule, ...]
    fallback: Template = attrs.field(factory=lambda: _default("fallback"))
    """The reply when no rule matches."""
    greeting: Template | None = None
    """The reply before the user has said anything (``None``: the fallback)."""
    unreadable: Template = attrs.field(factory=lambda: _default("unreadable"))
    """The reply to user audio with no transcript."""
    denied: Template = attrs.field(factory=lambda: _default("denied"))
    """The reply to a declined MCP approval (``{server_label}``, ``{name}``, ``{reason}``)."""
    failed: Template = attrs.field(factory=lambda: _default("failed"))
    """The reply to a failed MCP call (``{server_label}``, ``{name}``, ``{error}``)."""
    phrases: tuple[str, ...] = ()
    """What users are expected to say: a grammar for a transcriber that takes one."""

    @classmethod
    def from_toml(cls, text: str, *, source: str = "rules") -> Rules:
        """Parses the TOML rules format; raises :class:`RulesError` on any mistake."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise RulesError(f"{source}: not valid TOML: {e}") from None
        unknown = set(data) - {"rule", "phrases", *_TEMPLATES}
        if unknown:
            raise RulesError(f"{source}: unknown top-level keys {sorted(unknown)}")
        raw_rules = data.get("rule", [])
        if not isinstance(raw_rules, list):
            raise RulesError(f"{source}: [[rule]] must be an array of tables")
        rules = [_parse_rule(raw, f"{source}: rule {n}") for n, raw in enumerate(raw_rules, 1)]
        templates = {}
        for key, names in _TEMPLATES.items():
            if key in data:
                if not isinstance(data[key], str):
                    raise RulesError(f"{source}: {key} must be a string")
                templates[key] = Template.parse(data[key], f"{source}: {key}", names)
        phrases = data.get("phrases", [])
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise RulesError(f"{source}: phrases must be a list of strings")
        return cls(rules=tuple(rules), phrases=tuple(phrases), **templates)

    @classmethod
    def from_file(cls, path: str | Path) -> Rules:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise RulesError(f"{path}: cannot read rules: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise RulesError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
        return cls.from_toml(text, source=str(path))

    @classmethod
    def load(cls, rules: str | Path | Rules) -> Rules:
        """Rules from a file path, TOML text (anything containing a newline), or as given.

        Raises:
            RulesError: they cannot be read or parsed.
        """
        if isinstance(rules, Rules):
            return rules
        if isinstance(rules, Path) or "\n" not in rules:
            return cls.from_file(rules)
        return cls.from_toml(rules)


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a table")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}")
    when, after = raw.get("when"), raw.get("after")
    if (when is None) == (after is None):
        raise RulesError(f"{where}: needs exactly one of 'when' (a regex) or 'after' (a tool)")
    pattern = None
    if when is not None:
        if not isinstance(when, str):
            raise RulesError(f"{where}: 'when' must be a string")
        try:
            pattern = re.compile(when, re.IGNORECASE)
        except re.error as e:
            raise RulesError(f"{where}: bad regex {when!r}: {e}") from None
    if after is not None and not isinstance(after, str):
        raise RulesError(f"{where}: 'after' must be a tool name")
    # A when rule's templates see exactly its named groups; an after rule's see
    # the call's arguments and output, known only when the call is answered.
    known = list(pattern.groupindex) if pattern is not None else None
    say = raw.get("say", [])
    if isinstance(say, str):
        say = [say]
    if not isinstance(say, list) or not all(isinstance(s, str) for s in say):
        raise RulesError(f"{where}: 'say' must be a string or a list of strings")
    messages = tuple(Template.parse(s, where, known) for s in say)
    calls = [_parse_call(spec, where, known or []) for spec in _call_specs(raw, where)]
    for name in [*(c.name for c in calls), *([after] if after is not None else [])]:
        label, dot, tool = name.partition(".")
        if dot and not (label and tool):
            raise RulesError(f"{where}: {name!r} is not a tool name (nor 'label.tool' for MCP)")
    if not messages and not calls:
        raise RulesError(f"{where}: needs 'say' or 'call'")
    if after is not None and calls:
        raise RulesError(f"{where}: an 'after' rule can only 'say'")
    return Rule(where=where, when=pattern, after=after, say=messages, calls=tuple(calls))


def _call_specs(raw: dict[str, Any], where: str) -> list[Any]:
    """The rule's calls as written: ``call`` with ``args``, then each of ``calls``."""
    specs: list[Any] = []
    if "call" in raw:
        specs.append({"name": raw["call"], "args": raw.get("args", {})})
    elif "args" in raw:
        raise RulesError(f"{where}: 'args' needs 'call'")
    calls = raw.get("calls", [])
    if not isinstance(calls, list):
        raise RulesError(f"{where}: 'calls' must be an array of tables")
    return specs + calls


def _parse_call(spec: Any, where: str, known: Collection[str]) -> ToolCallSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RulesError(f"{where}: each call needs a tool name ('call', or 'name' in 'calls')")
    unknown = set(spec) - {"name", "args"}
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)} in a call")
    args = spec.get("args", {})
    if not isinstance(args, dict):
        raise RulesError(f"{where}: 'args' must be a table")
    return ToolCallSpec(name=spec["name"], args=_parse_tree(args, where, known))


DEFAULT_RULES = Rules.from_toml(
    r"""
fallback = "Sorry, I can only answer greetings here. Give the engine a rules file."

[[rule]]
when = "^\\s*(hi|hello|hey|good (morning|afternoon|evening))\\b"
say = "Hello! I'm the local Cantata engine, a scripted model. How can I help?"

[[rule]]
when = "\\b(bye|goodbye|see you)\\b"
say = "Goodbye!"
""",
    source="built-in rules",
)
