"""The brain: what decides each response of the local engine.

A brain gets the response's context (instructions, items, tools, tool choice)
and returns what the assistant does: say something, call tools, or both. The
engine turns that into the protocol's event stream; a brain never sees events.

The default brain, :class:`ScriptedBrain`, is a deterministic scripted model
driven by rules (a TOML file, see :mod:`._rules`): a regex over the latest user
text picks a reply of one or more messages and/or tool calls (``call =
"get_weather"`` for a function, ``call = "docs.lookup"`` for the ``lookup`` tool
of the hosted MCP server labelled ``docs``), with arguments fitted to each
tool's schema, and ``after`` rules turn a tool's output into a reply. What it
cannot do (a tool the session does not offer, a capture that is no number) is
a :class:`BrainError`, never a spoken guess or a silent skip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from framework.errors import CantataError
from framework.protocol import (
    UNSET,
    ConversationItem,
    McpListedTool,
    McpTool,
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

from ._coerce import ArgumentError, coerce
from ._rules import DEFAULT_RULES, Rule, Template, TemplateError, ToolCallSpec
from ._rules import Rules as Rules  # the server builds its brain from these


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
    def function_schemas(self) -> dict[str, Any]:
        """The parameters schema of each function tool, by name."""
        return {
            t.name: t.parameters if t.parameters is not UNSET else {}
            for t in self.tools
            if isinstance(t, RealtimeFunctionTool) and isinstance(t.name, str)
        }

    @property
    def mcp_labels(self) -> list[str]:
        """The labels of the hosted MCP servers among the tools (listed or not)."""
        return [t.server_label for t in self.tools if isinstance(t, McpTool)]

    @property
    def mcp_names(self) -> list[str]:
        """The hosted MCP tools as ``label.tool`` names."""
        return [f"{label}.{t.name}" for label, tools in self.mcp_tools.items() for t in tools]


class BrainError(CantataError):
    """A brain cannot make this response; the message says why and what to fix.

    The engine fails the response and reports the message in an ``error`` event.
    """


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


class ScriptedBrain:
    """A deterministic scripted model driven by :class:`Rules`.

    * After tool results, each is answered by the ``after`` rule of its tool
      (``{output}``, the call's arguments and the named groups of the rule that
      made the call are available), or read back as is; a failed MCP call and
      a declined MCP approval by the ``failed`` and ``denied`` templates.
    * Otherwise the first ``when`` rule whose regex is found in the latest user
      text answers: it says its messages and/or calls tools, with arguments
      made to fit each tool's schema (:func:`coerce`). With ``tool_choice``
      ``none`` a rule that only calls is passed over.
    * No user message yet (a phone call's opening): the ``greeting``, if the
      rules have one.
    * Nothing matches: the fallback. ``tool_choice`` ``required`` or a forced
      function or MCP server make it call a tool anyway, with empty arguments.

    A rule that calls a tool the response does not offer, arguments that do not
    fit their schema, or a placeholder with no value raise :class:`BrainError`.
    A hosted MCP server whose listing failed offers nothing (its error was
    reported then), so its calls are passed over like the model would.
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
            return self._answer_all(answered, request.memory)
        text = latest_user_text(request.items)
        if isinstance(text, Unreadable):
            return [Say(_fill(self.rules.unreadable, {}, "unreadable"))]
        if text is not None:
            for rule in self.rules.rules:
                match = rule.when.search(text) if rule.when is not None else None
                if match is None:
                    continue
                # A group that took no part in the match is empty, not unknown.
                groups = {k: v or "" for k, v in match.groupdict().items()}
                outputs = self._fire(rule, groups, request)
                if outputs:
                    return self._enforce(outputs, request)
        if text is None and self.rules.greeting is not None:
            return self._enforce([Say(_fill(self.rules.greeting, {}, "greeting"))], request)
        return self._enforce([Say(_fill(self.rules.fallback, {}, "fallback"))], request)

    def _fire(
        self, rule: Rule, groups: Mapping[str, str], request: BrainRequest
    ) -> list[BrainOutput]:
        """What a matching rule does here; empty when it has nothing to do."""
        outputs: list[BrainOutput] = [Say(_fill(t, groups, rule.where)) for t in rule.say]
        if request.tool_choice == "none":
            return outputs if rule.say else []
        for spec in rule.calls:
            call = self._call(rule, spec, groups, request)
            if call is not None:
                outputs.append(call)
        return outputs

    def _call(
        self, rule: Rule, spec: ToolCallSpec, groups: Mapping[str, str], request: BrainRequest
    ) -> BrainOutput | None:
        """The call a rule makes, its arguments fitted to the tool's schema."""
        label, dot, tool = spec.name.partition(".")
        if dot:
            if label not in request.mcp_labels:
                raise BrainError(_undeclared(rule, spec.name, request))
            listed = request.mcp_tools.get(label)
            if listed is None:
                return None  # the server's listing failed: the model sees none of its tools
            schemas = {t.name: t.input_schema for t in listed}
            if tool not in schemas:
                raise BrainError(_undeclared(rule, spec.name, request))
        else:
            schemas = request.function_schemas
            if spec.name not in schemas:
                raise BrainError(_undeclared(rule, spec.name, request))
        try:
            arguments = coerce(spec.render(groups), schemas[tool if dot else spec.name])
        except TemplateError as e:
            raise BrainError(f"{rule.where}: {e}; fix the rule") from None
        except ArgumentError as e:
            raise BrainError(
                f"{rule.where}: cannot call {spec.name}: {e}; fix the rule's regex or args"
            ) from None
        text = json.dumps(arguments)
        if dot:
            return CallMcp(label, tool, text, groups)
        return CallFunction(spec.name, text, groups)

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

    def _answer_all(
        self, answered: list[Answered], memory: MutableMapping[str, Any]
    ) -> list[BrainOutput]:
        """The reply to the results: one message when each answer is one, as parallel
        calls are usually summed up; otherwise every answer's messages in order."""
        answers = [self._answer(a, memory) for a in answered]
        if all(len(messages) == 1 for messages in answers):
            return [Say(" ".join(messages[0] for messages in answers))]
        return [Say(text) for messages in answers for text in messages]

    def _answer(self, answered: Answered, memory: MutableMapping[str, Any]) -> list[str]:
        if isinstance(answered, Denied):
            request, response = answered.request, answered.response
            reason = response.reason if isinstance(response.reason, str) else ""
            values = {"server_label": request.server_label, "name": request.name}
            return [_fill(self.rules.denied, {**values, "reason": reason}, "denied")]
        if isinstance(answered, RealtimeMcpToolCall):
            values = {"server_label": answered.server_label, "name": answered.name}
            if answered.error not in (UNSET, None):
                error = getattr(answered.error, "message", "")
                return [_fill(self.rules.failed, {**values, "error": error}, "failed")]
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

    def _after(self, tool: str, output: str, values: Mapping[str, Any]) -> list[str]:
        for rule in self.rules.rules:
            if rule.after == tool and rule.say:
                return [_fill(t, {**values, "output": output}, rule.where) for t in rule.say]
        return [output]


def _fill(template: Template, values: Mapping[str, Any], where: str) -> str:
    try:
        return template.render(values)
    except TemplateError as e:
        raise BrainError(f"{where}: {e}; fix the rule") from None


def _undeclared(rule: Rule, name: str, request: BrainRequest) -> str:
    offered = ", ".join([*request.function_names, *request.mcp_names]) or "none"
    return (
        f"{rule.where} calls {name}, which this session does not offer (it offers: {offered}); "
        "declare the tool in the session or change the rule"
    )


def _arguments(text: str) -> dict[str, Any]:
    try:
        args = json.loads(text)
    except ValueError:
        return {}
    return args if isinstance(args, dict) else {}
