"""Function tools: the ``@tool`` decorator, the :class:`FunctionTool` and its calls.

* :func:`tool` turns a function or a method into a :class:`FunctionTool`. The
  parameters' JSON schema is built from the type hints at decoration time.
* :meth:`FunctionTool.from_schema` wraps a tool defined elsewhere (an MCP server's):
  a JSON schema and an async callable, with only a shallow check of the arguments.
* :meth:`FunctionTool.definition` is the wire object sent in ``session.update``.
* A call is parsed once and run on what was parsed: :meth:`FunctionTool.parse_arguments`
  checks the model's JSON, :meth:`FunctionTool.needs_approval_for` and
  :meth:`FunctionTool.run` see the same values. :meth:`FunctionTool.invoke` does both.
  Tool failures (bad arguments, exceptions, timeouts) are values, never exceptions;
  only cancellation by the caller propagates (``trio.Cancelled``).

It starts no tasks of its own; a sync tool borrows a worker thread for the call.
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeAlias, overload

import attrs
import orjson
import trio

from framework.protocol import UNSET, RealtimeFunctionTool
from framework.tools._call import ProgressReport, ToolCall, ToolResult, enter_call, leave_call
from framework.tools._convert import converter, describe, problems_of
from framework.tools._docstrings import parse_docstring
from framework.tools._names import check_name
from framework.tools._outcome import ToolArgumentsError, ToolOutcome
from framework.tools._render import describe_exception, render
from framework.tools._schema import json_default, object_schema, schema_of

__all__ = ["ApprovalPolicy", "FunctionTool", "OnInterrupt", "tool", "tools_of"]

OnInterrupt: TypeAlias = Literal["cancel", "finish_silently", "finish_and_speak"]
"""What happens to a running tool when the user barges in or the session moves on.

``"cancel"`` cancels it; ``"finish_silently"`` lets it finish and delivers its
output without a new response; ``"finish_and_speak"`` lets it finish and speaks.
"""

ApprovalPolicy: TypeAlias = bool | Callable[[Mapping[str, Any]], bool | Awaitable[bool]]
"""Whether a call needs approval: a constant, or a predicate over the parsed arguments."""

_ON_INTERRUPT: Final = frozenset(typing.get_args(OnInterrupt))


def _check_options(
    name: str, timeout: float | None, needs_approval: ApprovalPolicy, on_interrupt: str
) -> None:
    """Refuses a tool's options that cannot work, at definition time."""
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"Tool {name}: timeout must be a number of seconds or None.")
        if not timeout > 0:
            raise ValueError(f"Tool {name}: timeout must be positive, got {timeout!r}.")
    if not isinstance(needs_approval, bool) and not callable(needs_approval):
        raise TypeError(f"Tool {name}: needs_approval must be a bool or a callable.")
    if on_interrupt not in _ON_INTERRUPT:
        raise ValueError(
            f"Tool {name}: on_interrupt must be one of {sorted(_ON_INTERRUPT)}, "
            f"got {on_interrupt!r}."
        )


def _load_object(tool_name: str, arguments_json: str) -> dict[str, Any]:
    """The arguments as a JSON object; an empty string counts as ``{}``.

    Raises:
        ToolArgumentsError: Not JSON, or not an object.
    """
    try:
        raw = orjson.loads(arguments_json) if arguments_json.strip() else {}
    except orjson.JSONDecodeError as e:
        raise ToolArgumentsError(tool_name, [f"not valid JSON ({e.msg} at char {e.pos})"]) from None
    if not isinstance(raw, dict):
        raise ToolArgumentsError(tool_name, [f"expected a JSON object, got {describe(raw)}"])
    return raw


def _unknown_keys(raw: Mapping[str, Any], known: list[str]) -> list[str]:
    hint = f"expected one of: {', '.join(known)}" if known else "it takes none"
    return [f"unknown argument ({hint}) @ $.{key}" for key in raw if key not in known]


@attrs.frozen
class _Param:
    name: str
    hint: Any
    positional_only: bool
    default: Any  # inspect.Parameter.empty when the parameter is required

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def _defined_in_class_body(fn: Callable[..., Any]) -> bool:
    # At decoration time the class does not exist yet; its name is in the qualname
    # ("Bot.get_weather"), unlike a function nested in a function ("f.<locals>.g").
    parts = getattr(fn, "__qualname__", "").split(".")
    return len(parts) >= 2 and parts[-2] != "<locals>"


def _is_async(fn: Callable[..., Any]) -> bool:
    # A plain wrapper around an async function (functools.wraps) still returns a coroutine.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(inspect.unwrap(fn))


@attrs.frozen(kw_only=True, eq=False, repr=False)
class FunctionTool:
    """A Python function the model can call. Build one with :func:`tool`.

    A tool made from a method is a descriptor: read through an instance
    (``bot.get_weather``), it is a new ``FunctionTool`` bound to that instance.

    Attributes:
        name: The name the model calls the tool by.
        description: What the tool does, for the model ("" if none).
        parameters: The JSON schema of the arguments (treat it as read-only).
        fn: The decorated function.
        timeout: Seconds a call may take, or ``None`` for the session default.
        needs_approval: Whether a call needs approval, or a predicate deciding it.
        on_interrupt: What a barge-in does to a running call.
        is_method: Whether ``fn`` is a method, whose first parameter is ``self``.
        instance: The object a method tool is bound to, else ``None``.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    timeout: float | None
    needs_approval: ApprovalPolicy
    on_interrupt: OnInterrupt
    is_method: bool
    instance: object | None = None
    _params: tuple[_Param, ...] = attrs.field(alias="_params")
    _is_async: bool = attrs.field(alias="_is_async")

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        needs_approval: ApprovalPolicy = False,
        on_interrupt: OnInterrupt = "cancel",
    ) -> FunctionTool:
        """Builds a tool from ``fn``; :func:`tool` is the decorator form of this.

        Args:
            fn: The function or method.
            name: See :func:`tool`, like the other options.
            description: The tool's description.
            timeout: Seconds a call may take.
            needs_approval: The approval policy.
            on_interrupt: What a barge-in does to a running call.

        Raises:
            TypeError: ``fn`` or one of its parameters cannot be a tool's.
            ValueError: A bad name, timeout or ``on_interrupt``.
        """
        if isinstance(fn, FunctionTool):
            raise TypeError(f"{fn.name} is already a tool; apply @tool once.")
        if isinstance(fn, (staticmethod, classmethod)) or not callable(fn):
            raise TypeError(f"@tool applies to a function or a method, not {fn!r}.")
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            raise TypeError(f"@tool cannot wrap the generator function {fn.__qualname__}.")
        name = name if name is not None else getattr(fn, "__name__", "")
        check_name(name, advice=" (pass name=... to @tool)")
        _check_options(name, timeout, needs_approval, on_interrupt)

        is_method = _defined_in_class_body(fn)
        try:
            hints = typing.get_type_hints(fn)
        except (NameError, TypeError) as e:
            raise TypeError(f"Tool {name}: cannot resolve its type hints: {e}") from e
        summary, arg_docs = parse_docstring(fn.__doc__)
        signature = list(inspect.signature(fn).parameters.values())
        if is_method:
            if not signature or signature[0].kind not in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ):
                raise TypeError(f"Tool {name} is a method but takes no self parameter.")
            signature = signature[1:]

        params: list[_Param] = []
        properties: dict[str, Any] = {}
        required: list[str] = []
        for p in signature:
            where = f"Tool {name}: parameter {p.name!r}"
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(f"{where}: *args and **kwargs cannot be tool parameters.")
            if p.name not in hints:
                raise TypeError(f"{where} has no type annotation.")
            schema = schema_of(hints[p.name], where)
            if p.name in arg_docs:
                schema["description"] = arg_docs[p.name]
            if p.default is inspect.Parameter.empty:
                required.append(p.name)
            else:
                default = json_default(p.default)
                if default is not UNSET:
                    schema["default"] = default
            properties[p.name] = schema
            params.append(_Param(p.name, hints[p.name], p.kind is p.POSITIONAL_ONLY, p.default))

        return cls(
            name=name,
            description=description if description is not None else summary,
            parameters=object_schema(properties, required),
            fn=fn,
            timeout=timeout,
            needs_approval=needs_approval,
            on_interrupt=on_interrupt,
            is_method=is_method,
            _params=tuple(params),
            _is_async=_is_async(fn),
        )

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        call: Callable[[dict[str, Any]], Awaitable[Any]],
        *,
        timeout: float | None = None,
        needs_approval: ApprovalPolicy = False,
        on_interrupt: OnInterrupt = "cancel",
    ) -> FunctionTool:
        """Builds a tool from a JSON schema and an async callable (an MCP server's tool).

        The arguments are checked shallowly: a JSON object, with the schema's
        ``required`` keys, and no others when ``additionalProperties`` is false.
        Deeper validation is the callee's. The return value becomes the output
        as in :meth:`run`; an exception becomes an ``"error"`` outcome.

        Args:
            name: The name the model calls the tool by.
            description: What the tool does, for the model.
            parameters: The JSON schema of the arguments (an object schema; copied).
            call: Awaited with the arguments as a dict.
            timeout: Seconds a call may take; ``None`` uses the session default.
            needs_approval: The approval policy, as for :func:`tool`.
            on_interrupt: What a barge-in does to a running call.

        Raises:
            TypeError: ``parameters`` is not a JSON object schema, or a bad option type.
            ValueError: A bad name, timeout or ``on_interrupt``.
        """
        check_name(name)
        _check_options(name, timeout, needs_approval, on_interrupt)
        try:
            # A deep copy that also proves the schema is JSON.
            schema = orjson.loads(orjson.dumps(dict(parameters)))
        except (TypeError, orjson.JSONEncodeError) as e:
            raise TypeError(f"Tool {name}: parameters must be a JSON object schema: {e}") from e
        if schema.get("type", "object") != "object":
            raise TypeError(
                f"Tool {name}: parameters must describe an object, not {schema['type']!r}."
            )

        async def fn(**arguments: Any) -> Any:
            return await call(arguments)

        return _SchemaTool(
            name=name,
            description=description,
            parameters=schema,
            fn=fn,
            timeout=timeout,
            needs_approval=needs_approval,
            on_interrupt=on_interrupt,
            is_method=False,
            _params=(),
            _is_async=True,
        )

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> FunctionTool:
        if instance is None or not self.is_method or self.instance is not None:
            return self
        return attrs.evolve(self, instance=instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calls the function directly, as if it were not a tool (handy in tests)."""
        if self.instance is not None:
            return self.fn(self.instance, *args, **kwargs)
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        bound = f", bound to {self.instance!r}" if self.instance is not None else ""
        return f"FunctionTool(name={self.name!r}{bound})"

    @classmethod
    def collect(cls, obj: object) -> list[FunctionTool]:
        """The tools of ``obj``'s class; the same as :func:`tools_of`."""
        return tools_of(obj)

    def _check_bound(self) -> None:
        if self.is_method and self.instance is None:
            raise TypeError(f"Tool {self.name} is a method: invoke it through an instance.")

    def definition(self) -> RealtimeFunctionTool:
        """The tool as it goes on the wire, in ``session.tools``."""
        return RealtimeFunctionTool(
            type="function",
            name=self.name,
            description=self.description or UNSET,
            # A copy: whoever edits the wire object must not change the tool.
            parameters=orjson.loads(orjson.dumps(self.parameters)),
        )

    def parse_arguments(self, arguments_json: str) -> dict[str, Any]:
        """Parses and checks the model's arguments, once per call.

        An empty string counts as ``{}``: some models send it for a call without
        arguments. The result is what :meth:`needs_approval_for` and :meth:`run` take.

        Args:
            arguments_json: The ``arguments`` string of a ``function_call`` item.

        Returns:
            Every parameter's value by name, defaults filled in.

        Raises:
            ToolArgumentsError: The JSON is invalid or does not fit the parameters.
        """
        raw = _load_object(self.name, arguments_json)
        problems = _unknown_keys(raw, [p.name for p in self._params])
        args: dict[str, Any] = {}
        for p in self._params:
            if p.name not in raw:
                if p.required:
                    problems.append(f"missing required argument @ $.{p.name}")
                else:
                    args[p.name] = p.default
                continue
            try:
                args[p.name] = converter.structure(raw[p.name], p.hint)
            except Exception as e:
                problems += problems_of(e, f"$.{p.name}")
        if problems:
            raise ToolArgumentsError(self.name, problems)
        return args

    async def needs_approval_for(self, parsed: Mapping[str, Any] | str) -> bool:
        """Whether this call needs approval before it runs.

        A callable policy fails closed: arguments that do not parse, a policy that
        raises and a policy that returns a non-bool all mean approval is needed. A
        sync policy runs on the event loop, so it must be quick.

        Args:
            parsed: The arguments from :meth:`parse_arguments` (or the raw JSON,
                which is parsed here).
        """
        policy = self.needs_approval
        if isinstance(policy, bool):
            return policy
        try:
            args = self.parse_arguments(parsed) if isinstance(parsed, str) else parsed
            decision = policy(args)
            if inspect.isawaitable(decision):
                decision = await decision
        except Exception:
            return True
        return decision if isinstance(decision, bool) else True

    async def run(
        self,
        parsed: Mapping[str, Any],
        *,
        default_timeout: float | None = None,
        call_id: str | None = None,
        on_progress: Callable[[ProgressReport], None] | None = None,
    ) -> ToolOutcome:
        """Runs one call on arguments already parsed; tool failures never raise.

        An async function is awaited in the calling task. A sync function runs in
        ``trio.to_thread.run_sync`` so it cannot block the event loop; it cannot be
        interrupted either: on timeout or cancellation its thread is abandoned, runs
        on to completion in the background, and its result is dropped.

        The return value becomes the output: a str as is; None, numbers, lists,
        dicts, Enum members, attrs and dataclass instances and pydantic models as
        JSON (so None is ``null``); a :class:`ToolResult` as its text, its images
        in the outcome; anything else as ``str(value)``.

        While it runs, :func:`current_call` is the call; its progress reports go
        to ``on_progress`` and restart the timeout.

        Args:
            parsed: The arguments from :meth:`parse_arguments` (not changed here).
            default_timeout: The session's default, used when the tool has no
                timeout of its own; ``None`` for no limit.
            call_id: The protocol's id of the call, for :func:`current_call`.
            on_progress: Where the call's progress reports go.

        Returns:
            Exactly one outcome: ``ok``, ``error`` or ``timeout``.

        Raises:
            trio.Cancelled: The caller's scope was cancelled; the caller reports it.
            TypeError: The tool is a method read from the class, not an instance.
        """
        self._check_bound()
        args = dict(parsed)
        positional = [args.pop(p.name) for p in self._params if p.positional_only]
        if self.instance is not None:
            positional.insert(0, self.instance)
        call = functools.partial(self.fn, *positional, **args)
        limit = self.timeout if self.timeout is not None else default_timeout
        with trio.move_on_after(math.inf if limit is None else limit) as scope:
            running = ToolCall(call_id, self.name, limit, scope, on_progress)
            token = enter_call(running)
            try:
                if self._is_async:
                    value = await call()
                else:
                    value = await trio.to_thread.run_sync(call, abandon_on_cancel=True)
            except Exception as e:
                return self._error("failed", e)
            finally:
                running.end()
                leave_call(token)
        if scope.cancelled_caught:
            assert limit is not None
            return ToolOutcome(
                status="timeout",
                output=f"{self.name} took longer than {limit:g} s and was stopped.",
                error=f"timed out after {limit:g} s",
            )
        if isinstance(value, ToolResult):
            return ToolOutcome(status="ok", output=value.text, value=value, images=value.images)
        try:
            output = render(value)
        except Exception as e:
            return self._error("returned a value that cannot be sent", e, value)
        return ToolOutcome(status="ok", output=output, value=value)

    def _error(self, what: str, exc: Exception, value: Any = None) -> ToolOutcome:
        detail = describe_exception(exc)
        return ToolOutcome(
            status="error",
            output=f"{self.name} {what}: {detail}",
            value=value,
            error=detail,
            exception=exc,
        )

    async def invoke(
        self, arguments_json: str, *, default_timeout: float | None = None
    ) -> ToolOutcome:
        """Parses the arguments and runs the call: :meth:`parse_arguments`, then :meth:`run`.

        Args:
            arguments_json: The ``arguments`` string of the ``function_call`` item.
            default_timeout: As for :meth:`run`.

        Returns:
            Exactly one outcome: ``ok``, ``bad_arguments``, ``error`` or ``timeout``.

        Raises:
            trio.Cancelled: The caller's scope was cancelled; the caller reports it.
            TypeError: The tool is a method read from the class, not an instance.
        """
        self._check_bound()
        try:
            args = self.parse_arguments(arguments_json)
        except ToolArgumentsError as e:
            return ToolOutcome(status="bad_arguments", output=str(e), error="; ".join(e.problems))
        return await self.run(args, default_timeout=default_timeout)


@attrs.frozen(kw_only=True, eq=False, repr=False)
class _SchemaTool(FunctionTool):
    """A tool from :meth:`FunctionTool.from_schema`: its callee validates the arguments."""

    def parse_arguments(self, arguments_json: str) -> dict[str, Any]:
        """Parses the arguments and checks the object's keys; the values are the callee's.

        Raises:
            ToolArgumentsError: Invalid JSON, not an object, a required key
                missing, or an unknown key where the schema allows none.
        """
        raw = _load_object(self.name, arguments_json)
        required = self.parameters.get("required", [])
        problems = [
            f"missing required argument @ $.{key}"
            for key in (required if isinstance(required, list) else [])
            if isinstance(key, str) and key not in raw
        ]
        properties = self.parameters.get("properties", {})
        if self.parameters.get("additionalProperties") is False and isinstance(properties, dict):
            problems += _unknown_keys(raw, list(properties))
        if problems:
            raise ToolArgumentsError(self.name, problems)
        return raw


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    needs_approval: ApprovalPolicy = False,
    on_interrupt: OnInterrupt = "cancel",
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    needs_approval: ApprovalPolicy = False,
    on_interrupt: OnInterrupt = "cancel",
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Makes a function or a method a tool, bare (``@tool``) or with options.

    The parameters' schema comes from the type hints and the descriptions from a
    Google-style docstring: its first paragraph describes the tool, its ``Args:``
    section the parameters.

    Args:
        fn: The function, when used bare.
        name: The tool's name; the function's name by default.
        description: What the tool does; the docstring's first paragraph by default.
        timeout: Seconds a call may take; ``None`` uses the session default.
        needs_approval: ``True`` to always ask, or a sync or async predicate over the
            parsed arguments.
        on_interrupt: What a barge-in does to a running call.

    Raises:
        TypeError: An unsupported parameter type, or a misuse of the decorator.
        ValueError: A bad name, timeout or ``on_interrupt``.
    """
    if fn is not None and not callable(fn):
        raise TypeError(
            f"@tool takes the function; pass options by keyword, e.g. tool(name={fn!r})."
        )

    def decorate(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool.from_function(
            f,
            name=name,
            description=description,
            timeout=timeout,
            needs_approval=needs_approval,
            on_interrupt=on_interrupt,
        )

    return decorate if fn is None else decorate(fn)


def tools_of(obj: object) -> list[FunctionTool]:
    """The tools defined on ``obj``'s class and its bases, in definition order.

    Base-class tools come first; an override keeps its base's place, and an
    attribute that overrides a tool with a non-tool removes it. For an instance
    the method tools are bound to it; for a class they are not.

    Raises:
        ValueError: Two tools share a name.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        for key, value in vars(klass).items():
            if isinstance(value, FunctionTool):
                names.setdefault(key, None)
    found: list[FunctionTool] = []
    by_name: dict[str, str] = {}
    for key in names:
        attr = next(vars(k)[key] for k in cls.__mro__ if key in vars(k))
        if not isinstance(attr, FunctionTool):
            continue
        if attr.name in by_name:
            raise ValueError(
                f"{cls.__qualname__} has two tools named {attr.name!r}: "
                f"{by_name[attr.name]} and {key}."
            )
        by_name[attr.name] = key
        found.append(attr if obj is cls else attr.__get__(obj, cls))
    return found
