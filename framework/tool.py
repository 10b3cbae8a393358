"""Function tools: the ``@tool`` decorator, their JSON schemas and their invocation.

This module owns the step from a Python function to a model-callable tool and back:

* :func:`tool` turns a function or a method into a :class:`FunctionTool`. The
  parameters' JSON schema is built from the type hints at decoration time, so an
  unsupported annotation fails where the tool is defined, not in a live call.
* :meth:`FunctionTool.from_schema` wraps a tool defined elsewhere (an MCP server's):
  a JSON schema and an async callable, with only a shallow check of the arguments.
* :meth:`FunctionTool.definition` is the wire object sent in ``session.update``.
* :meth:`FunctionTool.invoke` parses the model's JSON arguments strictly, runs the
  function under a timeout and returns exactly one :class:`ToolOutcome`. Tool
  failures (bad arguments, exceptions, timeouts) are values, never exceptions;
  only cancellation by the caller propagates (``trio.Cancelled``).

It starts no tasks of its own; a sync tool borrows a worker thread for the call.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeAlias, overload

import attrs
import cattrs
import cattrs.cols
import cattrs.gen
import orjson
import trio
from cattrs.errors import ForbiddenExtraKeysError

from framework.protocol import UNSET, RealtimeFunctionTool

__all__ = [
    "ApprovalPolicy",
    "FunctionTool",
    "OnInterrupt",
    "ToolArgumentsError",
    "ToolOutcome",
    "ToolStatus",
    "tool",
    "tools_of",
]

OnInterrupt: TypeAlias = Literal["cancel", "finish_silently", "finish_and_speak"]
"""What happens to a running tool when the user barges in or the session moves on.

``"cancel"`` cancels it; ``"finish_silently"`` lets it finish and delivers its
output without a new response; ``"finish_and_speak"`` lets it finish and speaks.
"""

ToolStatus: TypeAlias = Literal["ok", "bad_arguments", "error", "timeout", "cancelled"]
"""How a call ended. :meth:`FunctionTool.invoke` never returns ``"cancelled"``:
cancellation propagates as ``trio.Cancelled`` and the caller records it."""

ApprovalPolicy: TypeAlias = bool | Callable[[Mapping[str, Any]], bool | Awaitable[bool]]
"""Whether a call needs approval: a constant, or a predicate over the parsed arguments."""

_ON_INTERRUPT: Final = frozenset(typing.get_args(OnInterrupt))
_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_SUPPORTED: Final = (
    "str, int, float, bool, Literal[...], Enum subclasses, X | None, list[X], "
    "dict[str, X] and attrs classes"
)
_JSON_TYPES: Final[Mapping[type, str]] = types.MappingProxyType(
    {str: "string", int: "integer", float: "number", bool: "boolean"}
)


# --- outcomes --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ToolOutcome:
    """The result of one function call, as the model will see it.

    Attributes:
        status: How the call ended.
        output: The model-visible text (the ``function_call_output``).
        value: The function's raw return value (``None`` unless the call returned).
        error: What went wrong, for logs; ``None`` when the status is ``"ok"``.
        exception: The exception the tool raised, if it raised one.
    """

    status: ToolStatus
    output: str
    value: Any = None
    error: str | None = None
    exception: BaseException | None = attrs.field(default=None, eq=False)

    @property
    def ok(self) -> bool:
        """Whether the tool ran and returned."""
        return self.status == "ok"


class ToolArgumentsError(ValueError):
    """The model's arguments do not fit the tool's parameters.

    Attributes:
        tool_name: The tool the arguments were for.
        problems: One message per problem, each ending in ``@ <path>``.
    """

    def __init__(self, tool_name: str, problems: list[str]) -> None:
        self.tool_name = tool_name
        self.problems = tuple(problems)
        super().__init__(f"Invalid arguments for {tool_name}: {'; '.join(problems)}")


# --- strict structuring of JSON arguments -----------------------------------------------


class _Invalid(Exception):
    """A JSON value of the wrong shape; its message is shown to the model."""


def _describe(value: Any) -> str:
    """Names a JSON value's type, and shows it when it is a scalar."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    kind = _JSON_TYPES.get(type(value), type(value).__name__)
    shown = orjson.dumps(value).decode()
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}"


def _choices(values: list[Any]) -> str:
    return "one of " + ", ".join(orjson.dumps(v).decode() for v in values)


def _is_optional(hint: Any) -> bool:
    args = typing.get_args(hint)
    return (
        typing.get_origin(hint) in (typing.Union, types.UnionType)
        and len(args) == 2
        and type(None) in args
    )


def _is_literal(hint: Any) -> bool:
    return typing.get_origin(hint) is Literal


def _is_enum(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, enum.Enum)


def _is_list(hint: Any) -> bool:
    return typing.get_origin(hint) is list


def _is_dict(hint: Any) -> bool:
    return typing.get_origin(hint) is dict


def _optional_inner(hint: Any) -> Any:
    return next(a for a in typing.get_args(hint) if a is not type(None))


def _structure_str(value: Any, hint: Any) -> Any:
    if hint is not str:
        return _structure_enum(hint)(value, hint)
    if not isinstance(value, str):
        raise _Invalid(f"expected string, got {_describe(value)}")
    return value


def _structure_int(value: Any, hint: Any) -> Any:
    if hint is not int:
        return _structure_enum(hint)(value, hint)
    # bool is an int subclass in Python, but not in JSON.
    if type(value) is not int:
        raise _Invalid(f"expected integer, got {_describe(value)}")
    return value


def _structure_float(value: Any, _: Any) -> float:
    # JSON has one number type: 3 is a fine value for a float parameter.
    if type(value) not in (int, float):
        raise _Invalid(f"expected number, got {_describe(value)}")
    return float(value)


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected boolean, got {_describe(value)}")
    return value


def _structure_literal(hint: Any) -> Callable[[Any, Any], Any]:
    allowed = list(typing.get_args(hint))

    def hook(value: Any, _: Any) -> Any:
        # Compare types too: True == 1, but true is not a valid value for Literal[1].
        for choice in allowed:
            if type(value) is type(choice) and value == choice:
                return choice
        raise _Invalid(f"expected {_choices(allowed)}, got {_describe(value)}")

    return hook


# cattrs looks classes up by singledispatch first, so an Enum with a str or int mixin
# (StrEnum, IntEnum) reaches the str or int hook, which hands it over to this one.
@functools.cache
def _structure_enum(hint: type[enum.Enum]) -> Callable[[Any, Any], Any]:
    members = list(hint)

    def hook(value: Any, _: Any) -> Any:
        for member in members:
            if type(value) is type(member.value) and value == member.value:
                return member
        raise _Invalid(f"expected {_choices([m.value for m in members])}, got {_describe(value)}")

    return hook


def _make_converter() -> cattrs.Converter:
    """The converter of tool arguments: exact JSON types, unknown fields refused."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_factory(_is_literal, _structure_literal)
    conv.register_structure_hook_factory(_is_enum, _structure_enum)

    def optional_factory(hint: Any) -> Callable[[Any, Any], Any]:
        inner_type = _optional_inner(hint)
        inner = conv.get_structure_hook(inner_type)

        def hook(value: Any, _: Any) -> Any:
            if value is None:
                return None
            try:
                return inner(value, inner_type)
            except _Invalid as e:
                raise _Invalid(f"{e.args[0].replace(', got', ' or null, got', 1)}") from None

        return hook

    def list_factory(hint: Any) -> Callable[[Any, Any], Any]:
        # cattrs turns any iterable into a list ("abc" -> ["a", "b", "c"]); JSON needs an array.
        inner = cattrs.cols.list_structure_factory(hint, conv)

        def hook(value: Any, t: Any) -> Any:
            if not isinstance(value, list):
                raise _Invalid(f"expected array, got {_describe(value)}")
            return inner(value, t)

        return hook

    def dict_factory(hint: Any) -> Callable[[Any, Any], Any]:
        inner = cattrs.gen.make_mapping_structure_fn(hint, conv)

        def hook(value: Any, t: Any) -> Any:
            if not isinstance(value, dict):
                raise _Invalid(f"expected object, got {_describe(value)}")
            return inner(value, t)

        return hook

    def attrs_factory(hint: Any) -> Callable[[Any, Any], Any]:
        inner = cattrs.gen.make_dict_structure_fn(hint, conv)

        def hook(value: Any, t: Any) -> Any:
            if not isinstance(value, dict):
                raise _Invalid(f"expected object, got {_describe(value)}")
            return inner(value, t)

        return hook

    conv.register_structure_hook_factory(_is_optional, optional_factory)
    conv.register_structure_hook_factory(_is_list, list_factory)
    conv.register_structure_hook_factory(_is_dict, dict_factory)
    conv.register_structure_hook_factory(attrs.has, attrs_factory)
    return conv


_converter: Final = _make_converter()


def _format_problem(exc: BaseException, _: type | None) -> str:
    """Words for one structuring failure (cattrs adds the `` @ path``)."""
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        return "missing required field"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    # For example a validator of an attrs class refusing the value.
    return f"invalid value ({type(exc).__name__}: {exc})"


# --- JSON schema from type hints ---------------------------------------------------------


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    return repr(hint)


def _json_default(value: Any) -> Any:
    """The JSON form of a default value, or ``UNSET`` when it has none."""
    try:
        return orjson.loads(orjson.dumps(_converter.unstructure(value)))
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return UNSET


def _schema(hint: Any, where: str, seen: tuple[type, ...] = ()) -> dict[str, Any]:
    """The JSON schema of ``hint``; ``where`` names the spot for error messages."""

    def unsupported(why: str = "") -> TypeError:
        return TypeError(
            f"{where} has unsupported type {_type_name(hint)}{why}. Supported: {_SUPPORTED}."
        )

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if origin is Literal:
        if not all(type(a) in (str, int, bool) for a in args):
            raise unsupported(" (Literal values must be str, int or bool)")
        return _enum_schema(list(args))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
        if not values or not all(type(v) in (str, int) for v in values):
            raise unsupported(" (Enum values must be str or int)")
        return _enum_schema(values)
    if origin in (typing.Union, types.UnionType):
        if not _is_optional(hint):
            raise unsupported(" (the only union supported is X | None)")
        return {"anyOf": [_schema(_optional_inner(hint), where, seen), {"type": "null"}]}
    if origin is list or hint is list:
        if len(args) != 1:
            raise unsupported(" (give the item type, e.g. list[str])")
        return {"type": "array", "items": _schema(args[0], where, seen)}
    if origin is dict or hint is dict:
        if len(args) != 2 or args[0] is not str:
            raise unsupported(" (keys must be str, e.g. dict[str, int])")
        return {"type": "object", "additionalProperties": _schema(args[1], where, seen)}
    if isinstance(hint, type) and attrs.has(hint):
        return _attrs_schema(hint, where, seen)
    raise unsupported()


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds = {_JSON_TYPES[type(v)] for v in values}
    if len(kinds) == 1:
        return {"type": kinds.pop(), "enum": values}
    return {"enum": values}


def _attrs_schema(cls: type, where: str, seen: tuple[type, ...]) -> dict[str, Any]:
    if cls in seen:
        raise TypeError(f"{where} has recursive type {cls.__qualname__}, which is not supported.")
    try:
        attrs.resolve_types(cls)
    except NameError as e:
        raise TypeError(f"{where}: cannot resolve the type hints of {cls.__qualname__}: {e}") from e
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        spot = f"{where} (field {cls.__qualname__}.{field.name})"
        if field.type is None:
            raise TypeError(f"{spot} has no type annotation.")
        schema = _schema(field.type, spot, (*seen, cls))
        if "description" in field.metadata:
            schema["description"] = str(field.metadata["description"])
        if field.default is attrs.NOTHING:
            required.append(field.name)
        elif not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            default = _json_default(field.default)
            if default is not UNSET:
                schema["default"] = default
        properties[field.name] = schema
    return _object_schema(properties, required)


def _object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


# --- docstrings ---------------------------------------------------------------------------

_SECTIONS: Final = re.compile(
    r"(args|arguments|parameters|params|keyword args|keyword arguments|returns?|raises|"
    r"yields?|examples?|notes?|attributes|warnings?|see also|todo|references)\s*:",
    re.IGNORECASE,
)
_ARGS_SECTION: Final = re.compile(
    r"(args|arguments|parameters|params|keyword args|keyword arguments)\s*:", re.IGNORECASE
)
_ARG_ENTRY: Final = re.compile(r"\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Splits a Google-style docstring into its first paragraph and its ``Args:`` entries."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTIONS.fullmatch(line.strip()):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    for i, header in enumerate(lines):
        if not _ARGS_SECTION.fullmatch(header.strip()):
            continue
        entry_indent: int | None = None
        current: str | None = None
        for line in lines[i + 1 :]:
            if not line.strip():
                continue
            if _indent(line) <= _indent(header):
                break
            if entry_indent is None:
                entry_indent = _indent(line)
            if _indent(line) <= entry_indent:
                match = _ARG_ENTRY.fullmatch(line.strip())
                current = match["name"] if match else None
                if match:
                    params[match["name"]] = match["text"].strip()
            elif current is not None:
                params[current] = f"{params[current]} {line.strip()}".strip()
    return " ".join(summary), params


# --- the tool -----------------------------------------------------------------------------


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


def _render(value: Any) -> str:
    """The model-visible text of a return value.

    A str is sent as is; an Enum member as its value; None, bool, int, float, list,
    tuple, dict, attrs and dataclass instances as JSON (None is ``null``); anything
    else as ``str(value)``.
    """
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return str.__str__(value)
    if (
        value is None
        or isinstance(value, (bool, int, float, list, tuple, dict))
        or attrs.has(type(value))
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
    ):
        return orjson.dumps(_converter.unstructure(value), option=orjson.OPT_NON_STR_KEYS).decode()
    return str(value)


def _describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"Tool name {name!r} is invalid: it must match ^[a-zA-Z0-9_-]{{1,64}}$ "
                "(pass name=... to @tool)."
            )
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

        is_method = _defined_in_class_body(fn)
        try:
            hints = typing.get_type_hints(fn)
        except (NameError, TypeError) as e:
            raise TypeError(f"Tool {name}: cannot resolve its type hints: {e}") from e
        summary, arg_docs = _parse_docstring(fn.__doc__)
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
            schema = _schema(hints[p.name], where)
            if p.name in arg_docs:
                schema["description"] = arg_docs[p.name]
            if p.default is inspect.Parameter.empty:
                required.append(p.name)
            else:
                default = _json_default(p.default)
                if default is not UNSET:
                    schema["default"] = default
            properties[p.name] = schema
            params.append(_Param(p.name, hints[p.name], p.kind is p.POSITIONAL_ONLY, p.default))

        return cls(
            name=name,
            description=description if description is not None else summary,
            parameters=_object_schema(properties, required),
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
        as in :meth:`invoke`; an exception becomes an ``"error"`` outcome.

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
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"Tool name {name!r} is invalid: it must match ^[a-zA-Z0-9_-]{{1,64}}$."
            )
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"Tool {name}: timeout must be a number of seconds or None.")
            if not timeout > 0:
                raise ValueError(f"Tool {name}: timeout must be positive, got {timeout!r}.")
        if not isinstance(needs_approval, bool) and not callable(needs_approval):
            raise TypeError(f"Tool {name}: needs_approval must be a bool or a callable.")
        if on_interrupt not in _ON_INTERRUPT:
            raise ValueError(f"Tool {name}: on_interrupt must be one of {sorted(_ON_INTERRUPT)}.")
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
        """Parses and checks the model's arguments.

        An empty string counts as ``{}``: some models send it for a call without
        arguments.

        Args:
            arguments_json: The ``arguments`` string of a ``function_call`` item.

        Returns:
            Every parameter's value by name, defaults filled in.

        Raises:
            ToolArgumentsError: The JSON is invalid or does not fit the parameters.
        """
        try:
            raw = orjson.loads(arguments_json) if arguments_json.strip() else {}
        except orjson.JSONDecodeError as e:
            raise ToolArgumentsError(
                self.name, [f"not valid JSON ({e.msg} at char {e.pos})"]
            ) from None
        if not isinstance(raw, dict):
            raise ToolArgumentsError(self.name, [f"expected a JSON object, got {_describe(raw)}"])
        problems: list[str] = []
        known = [p.name for p in self._params]
        for key in raw:
            if key not in known:
                hint = f"expected one of: {', '.join(known)}" if known else "it takes none"
                problems.append(f"unknown argument ({hint}) @ $.{key}")
        args: dict[str, Any] = {}
        for p in self._params:
            if p.name not in raw:
                if p.required:
                    problems.append(f"missing required argument @ $.{p.name}")
                else:
                    args[p.name] = p.default
                continue
            try:
                args[p.name] = _converter.structure(raw[p.name], p.hint)
            except Exception as e:
                problems += cattrs.transform_error(e, f"$.{p.name}", _format_problem)
        if problems:
            raise ToolArgumentsError(self.name, problems)
        return args

    async def needs_approval_for(self, args: Mapping[str, Any] | str) -> bool:
        """Whether this call needs approval before it runs.

        A callable policy fails closed: arguments that do not parse, a policy that
        raises and a policy that returns a non-bool all mean approval is needed. A
        sync policy runs on the event loop, so it must be quick.

        Args:
            args: The parsed arguments (from :meth:`parse_arguments`) or the raw JSON.
        """
        policy = self.needs_approval
        if isinstance(policy, bool):
            return policy
        try:
            parsed = self.parse_arguments(args) if isinstance(args, str) else args
            decision = policy(parsed)
            if inspect.isawaitable(decision):
                decision = await decision
        except Exception:
            return True
        return decision if isinstance(decision, bool) else True

    async def invoke(
        self, arguments_json: str, *, default_timeout: float | None = None
    ) -> ToolOutcome:
        """Runs one call and returns its outcome; tool failures never raise.

        An async function is awaited in the calling task. A sync function runs in
        ``trio.to_thread.run_sync`` so it cannot block the event loop; it cannot be
        interrupted either: on timeout or cancellation its thread is abandoned, runs
        on to completion in the background, and its result is dropped.

        The return value becomes the output: a str as is; None, numbers, lists,
        dicts, Enum members, attrs and dataclass instances as JSON (so None is
        ``null``); anything else as ``str(value)``.

        Args:
            arguments_json: The ``arguments`` string of the ``function_call`` item.
            default_timeout: The session's default, used when the tool has no
                timeout of its own; ``None`` for no limit.

        Returns:
            Exactly one outcome: ``ok``, ``bad_arguments``, ``error`` or ``timeout``.

        Raises:
            trio.Cancelled: The caller's scope was cancelled; the caller reports it.
            TypeError: The tool is a method read from the class, not an instance.
        """
        if self.is_method and self.instance is None:
            raise TypeError(f"Tool {self.name} is a method: invoke it through an instance.")
        try:
            args = self.parse_arguments(arguments_json)
        except ToolArgumentsError as e:
            return ToolOutcome(status="bad_arguments", output=str(e), error="; ".join(e.problems))

        positional = [args.pop(p.name) for p in self._params if p.positional_only]
        if self.instance is not None:
            positional.insert(0, self.instance)
        call = functools.partial(self.fn, *positional, **args)
        limit = self.timeout if self.timeout is not None else default_timeout
        with trio.move_on_after(math.inf if limit is None else limit) as scope:
            try:
                if self._is_async:
                    value = await call()
                else:
                    value = await trio.to_thread.run_sync(call, abandon_on_cancel=True)
            except Exception as e:
                detail = _describe_exception(e)
                return ToolOutcome(
                    status="error",
                    output=f"{self.name} failed: {detail}",
                    error=detail,
                    exception=e,
                )
        if scope.cancelled_caught:
            assert limit is not None
            return ToolOutcome(
                status="timeout",
                output=f"{self.name} took longer than {limit:g} s and was stopped.",
                error=f"timed out after {limit:g} s",
            )
        try:
            output = _render(value)
        except Exception as e:
            detail = _describe_exception(e)
            return ToolOutcome(
                status="error",
                output=f"{self.name} returned a value that cannot be sent: {detail}",
                value=value,
                error=detail,
                exception=e,
            )
        return ToolOutcome(status="ok", output=output, value=value)


@attrs.frozen(kw_only=True, eq=False, repr=False)
class _SchemaTool(FunctionTool):
    """A tool from :meth:`FunctionTool.from_schema`: its callee validates the arguments."""

    def parse_arguments(self, arguments_json: str) -> dict[str, Any]:
        """Parses the arguments and checks the object's keys; the values are the callee's.

        Raises:
            ToolArgumentsError: Invalid JSON, not an object, a required key
                missing, or an unknown key where the schema allows none.
        """
        try:
            raw = orjson.loads(arguments_json) if arguments_json.strip() else {}
        except orjson.JSONDecodeError as e:
            raise ToolArgumentsError(
                self.name, [f"not valid JSON ({e.msg} at char {e.pos})"]
            ) from None
        if not isinstance(raw, dict):
            raise ToolArgumentsError(self.name, [f"expected a JSON object, got {_describe(raw)}"])
        required = self.parameters.get("required", [])
        problems = [
            f"missing required argument @ $.{key}"
            for key in (required if isinstance(required, list) else [])
            if isinstance(key, str) and key not in raw
        ]
        properties = self.parameters.get("properties", {})
        if self.parameters.get("additionalProperties") is False and isinstance(properties, dict):
            hint = f"expected one of: {', '.join(properties)}" if properties else "it takes none"
            problems += [
                f"unknown argument ({hint}) @ $.{key}" for key in raw if key not in properties
            ]
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
