"""The brain: what decides each response of the local engine.

A brain gets the response's context (instructions, items, tools, tool choice)
and returns what the assistant does: say something, call tools, or both. The
engine turns that into the protocol's event stream; a brain never sees events.

The default brain, :class:`ScriptedBrain`, is a deterministic scripted model
driven by rules (a TOML file): a regex over the latest user text picks a reply
or a tool call (``call = "get_weather"`` for a function, ``call = "docs.lookup"``
for the ``lookup`` tool of the hosted MCP server labelled ``docs``), and
``after`` rules turn a tool's output into a reply.
"""

from __future__ import annotations

import json
import re
import string
import tomllib
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from framework.protocol import (
    UNSET,
    ConversationItem,
    McpListedTool,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    RealtimeFunctionTool,
    RealtimeMcpApprovalRequest,
    RealtimeMcpApprovalResponse,
    RealtimeMcpListTools,
    RealtimeMcpToolCall,
    RealtimeToolChoiceConfig,
    RealtimeToolsConfigUnion,
    ToolChoiceFunction,
    ToolChoiceMcp,
)


@attrs.frozen(kw_only=True)
class BrainRequest:
    """Everything a brain may look at to decide one response."""

    instructions: str
    items: Sequence[ConversationItem]
    tools: Sequence[RealtimeToolsConfigUnion]
    tool_choice: RealtimeToolChoiceConfig
    memory: MutableMapping[str, Any]
    """Per-session scratch space the brain may keep state in."""
    mcp_tools: Mapping[str, Sequence[McpListedTool]] = attrs.Factory(dict)
    """The hosted MCP tools the model may call, by server label (listed and allowed)."""

    @property
    def function_names(self) -> list[str]:
        return [
            t.name
            for t in self.tools
            if isinstance(t, RealtimeFunctionTool) and isinstance(t.name, str)
        ]

    @property
    def mcp_names(self) -> list[str]:
        """The hosted MCP tools as ``label.tool`` names."""
        return [f"{label}.{t.name}" for label, tools in self.mcp_tools.items() for t in tools]


@attrs.frozen
class Say:
    """The assistant says ``text`` (spoken or written, per the response's modality)."""

    text: str


@attrs.frozen
class CallFunction:
    """The assistant calls a function tool with JSON-encoded ``arguments``.

    ``context`` is remembered with the call's id in the session's brain memory
    (``memory["calls"][call_id]``), for the reply that follows the output.
    """

    name: str
    arguments: str
    context: Mapping[str, Any] = attrs.Factory(dict)


@attrs.frozen
class CallMcp:
    """The assistant calls the tool ``name`` of the hosted MCP server ``server_label``.

    The engine runs the call itself (after asking the client's approval when
    the server's ``require_approval`` says so) and asks the brain again with
    the ``mcp_call`` item, output or error, at the end of the context.
    ``context`` is kept as for :class:`CallFunction`, under the item's id.
    """

    server_label: str
    name: str
    arguments: str
    context: Mapping[str, Any] = attrs.Factory(dict)


BrainOutput = Say | CallFunction | CallMcp


@runtime_checkable
class Brain(Protocol):
    """Decides responses. Implementations must be safe to share between sessions."""

    name: str
    description: str
    """One line for the engine's banner: what this brain is."""

    async def respond(self, request: BrainRequest) -> Sequence[BrainOutput]:
        """The outputs of one response, in order (text first, then calls)."""
        ...


# --- reading the context ------------------------------------------------------------


class Unreadable:
    """Marks a user turn given as audio with no transcript."""


UNREADABLE = Unreadable()


def latest_user_text(items: Sequence[ConversationItem]) -> str | Unreadable | None:
    """The text of the last user message (its typed text or audio transcript)."""
    for item in reversed(items):
        if isinstance(item, RealtimeConversationItemUserMessage):
            texts = []
            heard_audio = False
            for part in item.content:
                if part.type == "input_text" and isinstance(part.text, str):
                    texts.append(part.text)
                elif part.type == "input_audio":
                    if isinstance(part.transcript, str) and part.transcript:
                        texts.append(part.transcript)
                    else:
                        heard_audio = True
            if texts:
                return " ".join(texts)
            return UNREADABLE if heard_audio else None
    return None


@attrs.frozen
class Denied:
    """An ``mcp_approval_request`` the client declined."""

    request: RealtimeMcpApprovalRequest
    response: RealtimeMcpApprovalResponse


Answered = (
    tuple[RealtimeConversationItemFunctionCallOutput, RealtimeConversationItemFunctionCall | None]
    | RealtimeMcpToolCall
    | Denied
)
"""A tool result the model answers: a function output, a finished MCP call, a denial."""

_TOOL_ITEMS = (
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeMcpToolCall,
    RealtimeMcpApprovalRequest,
    RealtimeMcpApprovalResponse,
    RealtimeMcpListTools,
)


def trailing_results(items: Sequence[ConversationItem]) -> list[Answered]:
    """The tool results at the end of the context, in order, that call for a reply.

    Function outputs (with the call they answer), finished MCP calls and
    declined approvals; an approved request is answered by the call it starts.
    """
    start = len(items)
    while start > 0 and isinstance(items[start - 1], _TOOL_ITEMS):
        start -= 1
    calls = {i.call_id: i for i in items if isinstance(i, RealtimeConversationItemFunctionCall)}
    requests = {i.id: i for i in items if isinstance(i, RealtimeMcpApprovalRequest)}
    out: list[Answered] = []
    for item in items[start:]:
        if isinstance(item, RealtimeConversationItemFunctionCallOutput):
            out.append((item, calls.get(item.call_id)))
        elif isinstance(item, RealtimeMcpToolCall):
            if item.output not in (UNSET, None) or item.error not in (UNSET, None):
                out.append(item)  # finished; one still running is not answered yet
        elif isinstance(item, RealtimeMcpApprovalResponse) and not item.approve:
            request = requests.get(item.approval_request_id)
            if request is not None:
                out.append(Denied(request, item))
    return out


# --- rules ------------------------------------------------------------------------------


class RulesError(ValueError):
    """A rules file that cannot be used; the message says where and why."""


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _render(template: str, values: Mapping[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Defaulting(values))


def _render_args(args: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _render(v, values) if isinstance(v, str) else v for k, v in args.items()}


@attrs.frozen(kw_only=True)
class ToolCallSpec:
    """A tool call a rule makes, with templated arguments."""

    name: str
    args: Mapping[str, Any] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class Rule:
    """One rule: a trigger (``when`` regex or ``after`` tool) and what to do."""

    when: re.Pattern[str] | None = None
    after: str | None = None
    say: str | None = None
    calls: tuple[ToolCallSpec, ...] = ()


_RULE_KEYS = {"when", "after", "say", "call", "args", "calls"}
_TEMPLATES = ("unreadable", "denied", "failed")


@attrs.frozen(kw_only=True)
class Rules:
    """A parsed rules file."""

    fallback: str
    rules: tuple[Rule, ...]
    unreadable: str = (
        "I heard you, but I can't make out audio: this engine has no transcriber installed."
    )
    denied: str = "I did not run {name}: the call was not approved."
    """The reply to a declined MCP approval (``{server_label}``, ``{name}``, ``{reason}``)."""
    failed: str = "The {name} tool failed: {error}"
    """The reply to a failed MCP call (``{server_label}``, ``{name}``, ``{error}``)."""

    @classmethod
    def from_toml(cls, text: str, *, source: str = "rules") -> Rules:
        """Parses the TOML rules format; raises :class:`RulesError` on any mistake."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise RulesError(f"{source}: not valid TOML: {e}") from None
        unknown = set(data) - {"fallback", "rule", *_TEMPLATES}
        if unknown:
            raise RulesError(f"{source}: unknown top-level keys {sorted(unknown)}")
        fallback = data.get("fallback", DEFAULT_FALLBACK)
        if not isinstance(fallback, str):
            raise RulesError(f"{source}: fallback must be a string")
        rules = []
        raw_rules = data.get("rule", [])
        if not isinstance(raw_rules, list):
            raise RulesError(f"{source}: [[rule]] must be an array of tables")
        for index, raw in enumerate(raw_rules):
            rules.append(_parse_rule(raw, f"{source}: rule {index + 1}"))
        extra = {}
        for key in _TEMPLATES:
            if key in data:
                if not isinstance(data[key], str):
                    raise RulesError(f"{source}: {key} must be a string")
                extra[key] = data[key]
        return cls(fallback=fallback, rules=tuple(rules), **extra)

    @classmethod
    def from_file(cls, path: str | Path) -> Rules:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise RulesError(f"{path}: cannot read rules: {e.strerror}") from None
        return cls.from_toml(text, source=str(path))


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a table")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}")
    when = raw.get("when")
    after = raw.get("after")
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
    say = raw.get("say")
    if say is not None and not isinstance(say, str):
        raise RulesError(f"{where}: 'say' must be a string")
    calls: list[ToolCallSpec] = []
    if "call" in raw:
        if not isinstance(raw["call"], str):
            raise RulesError(f"{where}: 'call' must be a tool name")
        args = raw.get("args", {})
        if not isinstance(args, dict):
            raise RulesError(f"{where}: 'args' must be a table")
        calls.append(ToolCallSpec(name=raw["call"], args=args))
    elif "args" in raw:
        raise RulesError(f"{where}: 'args' needs 'call'")
    for entry in raw.get("calls", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise RulesError(f"{where}: each of 'calls' needs a 'name'")
        calls.append(ToolCallSpec(name=entry["name"], args=entry.get("args", {})))
    for name in [*(c.name for c in calls), *([after] if after is not None else [])]:
        label, dot, tool = name.partition(".")
        if dot and not (label and tool):
            raise RulesError(f"{where}: {name!r} is not a tool name (nor 'label.tool' for MCP)")
    if say is None and not calls:
        raise RulesError(f"{where}: needs 'say' or 'call'")
    if after is not None and calls:
        raise RulesError(f"{where}: an 'after' rule can only 'say'")
    return Rule(when=pattern, after=after, say=say, calls=tuple(calls))


DEFAULT_FALLBACK = "Sorry, I can only answer greetings here. Give the engine a rules file."

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


class ScriptedBrain:
    """A deterministic scripted model driven by :class:`Rules`.

    * After tool results, each is answered by the ``after`` rule of its tool
      (``{output}`` and the named groups of the rule that made the call are
      available), or read back as is; a failed MCP call and a declined MCP
      approval by the ``failed`` and ``denied`` templates.
    * Otherwise the first ``when`` rule whose regex is found in the latest user
      text answers: it says something and/or calls tools (only tools the
      response offers, and none when ``tool_choice`` is ``none``).
    * Nothing matches: the fallback. ``tool_choice`` ``required`` or a forced
      function or MCP server make it call a tool anyway, with empty arguments.
    """

    name = "scripted"

    def __init__(self, rules: Rules = DEFAULT_RULES) -> None:
        self.rules = rules
        self.description = (
            f"deterministic scripted model ({len(rules.rules)} rules); not a language model"
        )

    async def respond(self, request: BrainRequest) -> Sequence[BrainOutput]:
        answered = trailing_results(request.items)
        if answered:
            return [Say(" ".join(self._answer(a, request.memory) for a in answered))]
        text = latest_user_text(request.items)
        if isinstance(text, Unreadable):
            return [Say(self.rules.unreadable)]
        choice = request.tool_choice
        may_call = choice != "none"
        available = {*request.function_names, *request.mcp_names}
        if text is not None:
            for rule in self.rules.rules:
                if rule.when is None:
                    continue
                match = rule.when.search(text)
                if match is None:
                    continue
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                calls = [c for c in rule.calls if c.name in available] if may_call else []
                if rule.calls and not calls and rule.say is None:
                    continue  # the tools this rule needs are not offered here
                outputs: list[BrainOutput] = []
                if rule.say is not None:
                    outputs.append(Say(_render(rule.say, groups)))
                for spec in calls:
                    arguments = json.dumps(_render_args(spec.args, groups))
                    label, dot, tool = spec.name.partition(".")
                    if dot:
                        outputs.append(CallMcp(label, tool, arguments, groups))
                    else:
                        outputs.append(CallFunction(spec.name, arguments, groups))
                return self._enforce(outputs, request)
        return self._enforce([Say(self.rules.fallback)], request)

    def _enforce(self, outputs: list[BrainOutput], request: BrainRequest) -> list[BrainOutput]:
        """Applies ``required`` and forced-function (or forced-MCP) tool choices."""
        choice = request.tool_choice
        names = request.function_names
        forced = choice.name if isinstance(choice, ToolChoiceFunction) else None
        has_call = any(isinstance(o, (CallFunction, CallMcp)) for o in outputs)
        if forced is not None:
            calls: list[BrainOutput] = [
                o for o in outputs if isinstance(o, CallFunction) and o.name == forced
            ]
            return calls or [CallFunction(forced, "{}")]
        if isinstance(choice, ToolChoiceMcp):
            label = choice.server_label
            tool = choice.name if isinstance(choice.name, str) else None
            calls = [
                o
                for o in outputs
                if isinstance(o, CallMcp) and o.server_label == label and tool in (None, o.name)
            ]
            listed = [t.name for t in request.mcp_tools.get(label, ())]
            tool = tool or (listed[0] if listed else None)
            if calls or tool is None:
                return calls or outputs
            return [CallMcp(label, tool, "{}")]
        if choice == "required" and not has_call:
            if names:
                return [CallFunction(names[0], "{}")]
            for label, tools in request.mcp_tools.items():
                if tools:
                    return [CallMcp(label, tools[0].name, "{}")]
        return outputs

    def _answer(self, answered: Answered, memory: MutableMapping[str, Any]) -> str:
        if isinstance(answered, Denied):
            request, response = answered.request, answered.response
            reason = response.reason if isinstance(response.reason, str) else ""
            values = {"server_label": request.server_label, "name": request.name}
            return _render(self.rules.denied, {**values, "reason": reason})
        if isinstance(answered, RealtimeMcpToolCall):
            values = {"server_label": answered.server_label, "name": answered.name}
            if answered.error not in (UNSET, None):
                error = getattr(answered.error, "message", "")
                return _render(self.rules.failed, {**values, "error": error})
            values.update(_arguments(answered.arguments))
            for key in (answered.id, answered.approval_request_id):
                if isinstance(key, str):
                    values.update(memory.get("calls", {}).get(key, {}))
            output = answered.output if isinstance(answered.output, str) else ""
            return self._after(f"{answered.server_label}.{answered.name}", output, values)
        output_item, call = answered
        values = {}
        if call is not None:
            # The call's own arguments, then the groups of the rule that made it.
            values.update(_arguments(call.arguments))
            if isinstance(call.call_id, str):
                values.update(memory.get("calls", {}).get(call.call_id, {}))
        return self._after(call.name if call is not None else "", output_item.output, values)

    def _after(self, tool: str, output: str, values: Mapping[str, Any]) -> str:
        for rule in self.rules.rules:
            if rule.after == tool and rule.say is not None:
                return _render(rule.say, {**values, "output": _Output(output)})
        return output


def _arguments(text: str) -> dict[str, Any]:
    try:
        args = json.loads(text)
    except ValueError:
        return {}
    return args if isinstance(args, dict) else {}


class _Output(str):
    """A tool output as templates see it: the text, and ``{output[key]}`` for
    the fields of an output that is a JSON object."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                data = json.loads(self)
            except ValueError:
                data = None
            if isinstance(data, dict) and key in data:
                return data[key]
            return f"{{output[{key}]}}"  # left as written, like any unknown name
        return str.__getitem__(self, key)
