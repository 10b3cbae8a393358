"""The one converter between wire JSON and the protocol's attrs classes.

Every wire class gets two hooks, generated from its attrs fields and their
type annotations the first time the class is used, and registered in the
module's single :data:`converter` (a ``cattrs.Converter``):

* a *structure* hook (JSON object -> instance) that checks every modelled
  field, keeps unknown fields in ``extra``, dispatches tagged unions on
  ``type`` (messages further on ``role``) and falls back to the ``Unknown*``
  classes for tags it does not know;
* an *unstructure* hook (instance -> JSON object) that omits fields left
  ``UNSET``, keeps explicit ``None`` as ``null``, writes ``extra`` back, and
  validates what the user built, naming the path of a bad value.

The hooks are generated Python code rather than cattrs' general machinery
because the receive path of a voice session is dominated by parsing (50+
events a second per session, many sessions per process): straight-line code
with a dict lookup per field and a class check per value keeps parsing within
a small factor of ``orjson.loads`` alone. ``tests/benchmarks/`` measures it.

Errors carry a path built on the way out of the nested hooks (a ``try`` costs
nothing until something raises), so the fast path pays nothing for them. A
value named in an error is shown by its JSON type, or as a string cut short:
a hostile frame cannot make an error message as large (or as deep) as itself.

Nesting is bounded. What the codec reads may nest :data:`MAX_DEPTH` (64)
levels deep, counting the event itself; deeper input is a
:class:`ProtocolError`, found by one iterative walk before any hook runs. The
hosted API allows 10 levels of nesting in a strict function schema, and an
event wraps its payload in at most a handful more, so every real frame fits
with room to spare. What the codec writes may nest as deeply as orjson writes
(254 levels), far more than anything it read: an accepted event always writes.
"""

from __future__ import annotations

import collections.abc
import itertools
import linecache
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
import orjson

from ._base import (
    EMPTY,
    UNSET,
    ProtocolError,
    UnknownClientEvent,
    UnknownItem,
    UnknownServerEvent,
    UnknownVariant,
    ValidationError,
    WireObject,
    _RawWrapper,
    _UnsetType,
)
from ._client_events import ClientEvent
from ._server_events import ServerEvent

__all__ = [
    "MAX_DEPTH",
    "converter",
    "from_dict",
    "parse_client_event",
    "parse_server_event",
    "to_dict",
    "to_json",
]

T = TypeVar("T")

_MISSING: Any = object()
MAX_DEPTH = 64
"""How many levels JSON read by the codec may nest (an object or array is one level)."""
_WRITE_DEPTH = 254  # orjson's own limit on what it writes
_SHOWN_CHARS = 40  # of a string value quoted in an error message
_PATH_PART_CHARS = 64  # of a key in an error's path
_FALLBACKS = (UnknownItem, UnknownVariant, UnknownServerEvent, UnknownClientEvent)
_SCALARS = ("str", "int", "float", "bool", "none")


class _Invalid(Exception):
    """Internal: a bad value, with the path collected while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.parts: list[str | int] = []

    def at(self, part: str | int) -> _Invalid:
        self.parts.append(part)
        return self

    @property
    def path(self) -> str:
        return _path(reversed(self.parts))


def _path(parts: typing.Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, str) and len(part) > _PATH_PART_CHARS:
            part = part[: _PATH_PART_CHARS - 1] + "…"
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _shown(value: object) -> str:
    """A value as an error message quotes it: a short string, or its JSON type."""
    if isinstance(value, str):
        if len(value) > _SHOWN_CHARS:
            return repr(value[: _SHOWN_CHARS - 1] + "…")
        return repr(value)
    return _json_name(value)


def _too_deep(data: object, limit: int) -> list[str | int] | None:
    """The path to the first object or array nested deeper than ``limit``, or ``None``.

    Iterative, so that input of any depth costs no recursion; containers only
    are pushed, so a frame of long strings (audio) costs a few steps.
    """
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(data, 1, ())]
    while stack:
        node, depth, at = stack.pop()
        pairs = node.items() if node.__class__ is dict else enumerate(node)
        for key, value in pairs:
            kind = value.__class__
            if kind is dict or kind is list:
                if depth >= limit:
                    return [*at, key]
                stack.append((value, depth + 1, (*at, key)))
    return None


def _check_depth(data: object, raw: object) -> None:
    if data.__class__ is dict or data.__class__ is list:
        found = _too_deep(data, MAX_DEPTH)
        if found is not None:
            # The first levels locate the field; the rest is the same key again and again.
            raise ProtocolError(
                f"nested deeper than {MAX_DEPTH} levels", raw=raw, path=_path(found[:8])
            )


def _json_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _bad(value: object, expected: str) -> _Invalid:
    return _Invalid(f"expected {expected}, got {_json_name(value)}")


# --- type specs -------------------------------------------------------------------


@attrs.frozen
class _Spec:
    """What a field accepts, reduced from its annotation."""

    scalars: frozenset[str] = frozenset()  # subset of _SCALARS
    any: bool = False
    list_of: _Spec | None = None
    map_of: _Spec | None = None
    classes: tuple[type, ...] = ()
    fallback: type | None = None

    @property
    def scalar_only(self) -> bool:
        return not (self.list_of or self.map_of or self.classes or self.fallback)

    def describe(self) -> str:
        # ``null`` is left out when something else is allowed: "expected int"
        # reads better than "expected one of int, null" for an optional field.
        names = [s for s in _SCALARS if s in self.scalars and s != "none"]
        if self.list_of is not None:
            names.append("list")
        if self.map_of is not None:
            names.append("object")
        names.extend(c.__name__ for c in self.classes)
        if not names:
            return "null"
        return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def _flatten(tp: Any) -> list[Any]:
    if get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in get_args(tp) for m in _flatten(a)]
    return [tp]


def _spec_of(tp: Any) -> tuple[_Spec, bool]:
    """Reduces an annotation to a spec; also says whether ``UNSET`` is allowed."""
    scalars: set[str] = set()
    any_ = False
    list_of = map_of = fallback = None
    classes: list[type] = []
    optional = False
    for member in _flatten(tp):
        origin = get_origin(member)
        if member is Any or member is object:
            any_ = True
        elif member is type(None):
            scalars.add("none")
        elif member in (str, int, float, bool):
            scalars.add(member.__name__)
        elif origin is Literal:
            for value in get_args(member):
                if isinstance(value, _UnsetType):
                    optional = True
                elif isinstance(value, str):
                    # Enum-like strings stay open: a value added tomorrow parses.
                    scalars.add("str")
                elif isinstance(value, bool):
                    scalars.add("bool")
                elif isinstance(value, int):
                    scalars.add("int")
                else:  # pragma: no cover - no such literal in the protocol
                    raise TypeError(f"unsupported literal {value!r}")
        elif origin in (collections.abc.Sequence, list, tuple):
            list_of = _spec_of(get_args(member)[0])[0]
        elif origin in (collections.abc.Mapping, dict):
            map_of = _spec_of(get_args(member)[1])[0]
        elif member in _FALLBACKS:
            fallback = member
        elif attrs.has(member):
            classes.append(member)
        else:  # pragma: no cover - guards the model against unsupported annotations
            raise TypeError(f"unsupported annotation {member!r}")
    if "int" in scalars and "float" in scalars:
        scalars.discard("int")  # a float field accepts JSON integers anyway
    spec = _Spec(
        scalars=frozenset(scalars),
        any=any_,
        list_of=list_of,
        map_of=map_of,
        classes=tuple(classes),
        fallback=fallback,
    )
    return spec, optional


def _tag_of(cls: type, name: str) -> str | None:
    """The literal value of a class's ``type``/``role`` field, if it has one."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        return None
    for member in _flatten(hints[name]):
        if get_origin(member) is Literal:
            value = get_args(member)[0]
            if isinstance(value, str):
                return value
    return None


def _required_tag(cls: type, field: attrs.Attribute[Any], hint: Any) -> str | None:
    """A discriminator that must be present and equal (``type``/``role`` = one literal)."""
    if field.name not in ("type", "role") or get_origin(hint) is not Literal:
        return None
    args = get_args(hint)
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


# --- code generation ----------------------------------------------------------------

_counter = itertools.count()


def _compile(name: str, source: str, namespace: dict[str, Any]) -> Any:
    filename = f"<cantata-codec {name} {next(_counter)}>"
    # Registered with linecache so that tracebacks through generated code show it.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def _structure_ok(var: str, scalars: frozenset[str]) -> str:
    checks = []
    for kind in _SCALARS:
        if kind not in scalars:
            continue
        if kind == "none":
            checks.append(f"{var} is None")
        elif kind == "float":
            checks.append(f"{var}.__class__ is float or {var}.__class__ is int")
        else:
            checks.append(f"{var}.__class__ is {kind}")
    return " or ".join(checks) or "False"


def _unstructure_ok(var: str, scalars: frozenset[str]) -> str:
    checks = []
    for kind in _SCALARS:
        if kind not in scalars:
            continue
        if kind == "none":
            checks.append(f"{var} is None")
        elif kind == "str":
            checks.append(f"isinstance({var}, str)")
        elif kind == "bool":
            checks.append(f"isinstance({var}, bool)")
        elif kind == "int":
            checks.append(f"(isinstance({var}, int) and not isinstance({var}, bool))")
        else:
            checks.append(f"(isinstance({var}, (int, float)) and not isinstance({var}, bool))")
    return " or ".join(checks) or "False"


class _Codegen:
    """Builds and caches the structure/unstructure functions of every wire type."""

    def __init__(self) -> None:
        self.structurers: dict[type, Callable[[Any], Any]] = {}
        self.unstructurers: dict[type, Callable[[Any], Any]] = {}
        self._spec_fns: dict[tuple[str, _Spec], Callable[[Any], Any]] = {}

    # structure ------------------------------------------------------------------

    def structurer(self, cls: type) -> Callable[[Any], Any]:
        fn = self.structurers.get(cls)
        if fn is None:
            fn = self._build_structurer(cls)
            self.structurers[cls] = fn
        return fn

    def _value_structurer(self, spec: _Spec) -> Callable[[Any], Any]:
        """A function that checks/converts one value against a non-scalar spec."""
        key = ("s", spec)
        fn = self._spec_fns.get(key)
        if fn is not None:
            return fn
        ns: dict[str, Any] = {"_bad": _bad, "_Invalid": _Invalid}
        lines = ["def structure(v):"]
        if spec.any:
            lines.append("    return v")
        else:
            if spec.scalars:
                lines.append(f"    if {_structure_ok('v', spec.scalars)}:")
                lines.append("        return v")
            if spec.list_of is not None:
                lines.append("    if v.__class__ is list:")
                if spec.list_of.scalar_only and not spec.list_of.any:
                    ok = _structure_ok("x", spec.list_of.scalars)
                    lines += [
                        "        for i, x in enumerate(v):",
                        f"            if not ({ok}):",
                        f"                raise _bad(x, {spec.list_of.describe()!r}).at(i)",
                        "        return v",
                    ]
                elif spec.list_of.any:
                    lines.append("        return v")
                else:
                    ns["_elem"] = self._value_structurer(spec.list_of)
                    lines += [
                        "        out = []",
                        "        i = 0",
                        "        try:",
                        "            for x in v:",
                        "                out.append(_elem(x))",
                        "                i += 1",
                        "        except _Invalid as e:",
                        "            raise e.at(i) from None",
                        "        return out",
                    ]
            if spec.map_of is not None:
                lines.append("    if v.__class__ is dict:")
                if spec.map_of.any:
                    lines.append("        return v")
                else:
                    ns["_val"] = self._value_structurer(spec.map_of)
                    lines += [
                        "        out = {}",
                        "        for k, x in v.items():",
                        "            try:",
                        "                out[k] = _val(x)",
                        "            except _Invalid as e:",
                        "                raise e.at(k) from None",
                        "        return out",
                    ]
            if spec.classes or spec.fallback:
                ns["_dispatch"] = self._dispatcher(spec)
                lines += ["    if v.__class__ is dict:", "        return _dispatch(v)"]
            lines.append(f"    raise _bad(v, {spec.describe()!r})")
        built: Callable[[Any], Any] = _compile("structure", "\n".join(lines) + "\n", ns)
        self._spec_fns[key] = built
        return built

    def _dispatcher(self, spec: _Spec) -> Callable[[dict[str, Any]], Any]:
        """Picks the class of a JSON object in a union: by ``type``, then ``role``."""
        classes = spec.classes
        fallback = spec.fallback
        if len(classes) == 1 and fallback is None:
            return self.structurer(classes[0])
        by_tag: dict[str, Any] = {}
        by_role: dict[str, dict[str, Any]] = {}
        default = None
        for cls in classes:
            tag = _tag_of(cls, "type")
            role = _tag_of(cls, "role")
            if tag is None:  # pragma: no cover - every union member of the protocol is tagged
                raise TypeError(f"{cls.__name__} has no type tag")
            if role is not None:
                by_role.setdefault(tag, {})[role] = cls
            else:
                by_tag[tag] = cls
            type_field = attrs.fields_dict(cls)["type"]
            if default is None and type_field.default is UNSET:
                default = cls  # the member that may omit its tag (formats, function tools)
        hooks: dict[str, Callable[[Any], Any]] = {}
        for tag, cls in by_tag.items():
            hooks[tag] = self.structurer(cls)
        for tag, roles in by_role.items():
            role_hooks = {role: self.structurer(cls) for role, cls in roles.items()}
            hooks[tag] = _role_dispatcher(role_hooks, fallback, spec)
        default_hook = self.structurer(default) if default is not None else None
        expected = ", ".join(sorted(hooks))

        def dispatch(v: dict[str, Any]) -> Any:
            tag = v.get("type", _MISSING)
            hook = hooks.get(tag) if tag.__class__ is str else None
            if hook is not None:
                return hook(v)
            if (tag is _MISSING or tag is None) and default_hook is not None:
                return default_hook(v)
            if fallback is not None and isinstance(tag, str):
                return fallback(v)
            if tag is _MISSING:
                raise _Invalid(f"missing required field (one of {expected})").at("type")
            raise _Invalid(f"unknown type {_shown(tag)}, expected one of {expected}").at("type")

        return dispatch

    def _build_structurer(self, cls: type) -> Callable[[Any], Any]:
        """Generates the structure function of one class.

        The function takes a dict (callers check that) and builds the instance
        without going through ``__init__``: it creates the object and fills
        each slot through its descriptor, which is measurably faster than a
        keyword call of a frozen class's ``__init__`` and equivalent here,
        since wire classes have no validators, converters or post-init hooks.
        A missing required field surfaces as the ``KeyError`` of ``o[name]``.
        """
        if issubclass(cls, _RawWrapper):
            return cls
        hints = typing.get_type_hints(cls)
        ns: dict[str, Any] = {
            "_new": object.__new__,
            "_cls": cls,
            "_bad": _bad,
            "_Invalid": _Invalid,
            "_shown": _shown,
            "UNSET": UNSET,
            "EMPTY": EMPTY,
        }
        fields = [f for f in attrs.fields(cls) if f.name != "extra"]  # type: ignore[arg-type]
        ns["_KNOWN"] = frozenset(f.name for f in fields)
        required = 0
        body: list[str] = ["def structure(o):", "  try:", "    n = REQUIRED"]
        sets: list[str] = []
        for index, field in enumerate(fields):
            name = field.name
            var = f"v{index}"
            ns[f"_set{index}"] = _slot_setter(cls, name)
            sets.append(f"    _set{index}(inst, {var})")
            hint = hints[name]
            tag = _required_tag(cls, field, hint)
            if tag is not None:
                required += 1
                body += [
                    f"    {var} = o[{name!r}]",
                    f"    if {var} != {tag!r}:",
                    f"        raise _Invalid('expected ' + {repr(tag)!r}"
                    f" + ', got ' + _shown({var})).at({name!r})",
                ]
                continue
            spec, optional = _spec_of(hint)
            if optional:
                body += [
                    f"    {var} = o.get({name!r}, UNSET)",
                    f"    if {var} is not UNSET:",
                    "        n += 1",
                ]
                indent = "        "
            else:
                required += 1
                body.append(f"    {var} = o[{name!r}]")
                indent = "    "
            if spec.any:
                continue
            if spec.scalar_only:
                body += [
                    f"{indent}if not ({_structure_ok(var, spec.scalars)}):",
                    f"{indent}    raise _bad({var}, {spec.describe()!r}).at({name!r})",
                ]
                continue
            helper = f"_h{index}"
            ns[helper] = self._value_structurer(spec)
            guard = ""
            if "none" in spec.scalars:
                body.append(f"{indent}if {var} is not None:")
                guard = "    "
            body += [
                f"{indent}{guard}try:",
                f"{indent}{guard}    {var} = {helper}({var})",
                f"{indent}{guard}except _Invalid as e:",
                f"{indent}{guard}    raise e.at({name!r}) from None",
            ]
        body[2] = f"    n = {required}"
        ns["_set_extra"] = _slot_setter(cls, "extra")
        body += [
            "  except KeyError as e:",
            "    raise _Invalid('missing required field').at(e.args[0]) from None",
            "  inst = _new(_cls)",
            *[line[2:] for line in sets],
            "  if len(o) == n:",
            "    _set_extra(inst, EMPTY)",
            "  else:",
            "    _set_extra(inst, {k: x for k, x in o.items() if k not in _KNOWN})",
            "  return inst",
        ]
        return _compile("structure", "\n".join(body) + "\n", ns)  # type: ignore[no-any-return]

    # unstructure ------------------------------------------------------------------

    def unstructurer(self, cls: type) -> Callable[[Any], Any]:
        fn = self.unstructurers.get(cls)
        if fn is None:
            fn = self._build_unstructurer(cls)
            self.unstructurers[cls] = fn
        return fn

    def _value_unstructurer(self, spec: _Spec) -> Callable[[Any], Any]:
        key = ("u", spec)
        fn = self._spec_fns.get(key)
        if fn is not None:
            return fn
        ns: dict[str, Any] = {"_bad": _bad, "_Invalid": _Invalid}
        lines = ["def unstructure(v):"]
        if spec.any:
            lines.append("    return v")
        else:
            if spec.classes or spec.fallback:
                allowed = list(spec.classes) + ([spec.fallback] if spec.fallback else [])
                ns["_HOOKS"] = {c: self.unstructurer(c) for c in allowed}
                lines += [
                    "    hook = _HOOKS.get(v.__class__)",
                    "    if hook is not None:",
                    "        return hook(v)",
                ]
            if spec.scalars:
                lines += [f"    if {_unstructure_ok('v', spec.scalars)}:", "        return v"]
            if spec.list_of is not None:
                ns["_elem"] = self._value_unstructurer(spec.list_of)
                lines += [
                    "    if isinstance(v, (list, tuple)):",
                    "        out = []",
                    "        i = 0",
                    "        try:",
                    "            for x in v:",
                    "                out.append(_elem(x))",
                    "                i += 1",
                    "        except _Invalid as e:",
                    "            raise e.at(i) from None",
                    "        return out",
                ]
            if spec.map_of is not None:
                ns["_val"] = self._value_unstructurer(spec.map_of)
                lines += [
                    "    if isinstance(v, dict):",
                    "        out = {}",
                    "        for k, x in v.items():",
                    "            if not isinstance(k, str):",
                    "                raise _bad(k, 'str key')",
                    "            try:",
                    "                out[k] = _val(x)",
                    "            except _Invalid as e:",
                    "                raise e.at(k) from None",
                    "        return out",
                ]
            lines.append(f"    raise _bad(v, {spec.describe()!r})")
        built: Callable[[Any], Any] = _compile("unstructure", "\n".join(lines) + "\n", ns)
        self._spec_fns[key] = built
        return built

    def _build_unstructurer(self, cls: type) -> Callable[[Any], Any]:
        if issubclass(cls, _RawWrapper):
            return _unstructure_raw
        hints = typing.get_type_hints(cls)
        ns: dict[str, Any] = {"_bad": _bad, "_Invalid": _Invalid, "_shown": _shown, "UNSET": UNSET}
        body = ["def unstructure(obj):", "    d = {}"]
        fields = [f for f in attrs.fields(cls) if f.name != "extra"]  # type: ignore[arg-type]
        for index, field in enumerate(fields):
            name = field.name
            var = f"v{index}"
            hint = hints[name]
            body.append(f"    {var} = obj.{name}")
            tag = _required_tag(cls, field, hint)
            if tag is not None:
                body += [
                    f"    if {var} != {tag!r}:",
                    f"        raise _Invalid('expected ' + {repr(tag)!r}"
                    f" + ', got ' + _shown({var})).at({name!r})",
                    f"    d[{name!r}] = {var}",
                ]
                continue
            spec, optional = _spec_of(hint)
            indent = "    "
            if optional:
                body.append(f"    if {var} is not UNSET:")
                indent = "        "
            if spec.any:
                pass
            elif spec.scalar_only:
                body += [
                    f"{indent}if not ({_unstructure_ok(var, spec.scalars)}):",
                    f"{indent}    raise _bad({var}, {spec.describe()!r}).at({name!r})",
                ]
            else:
                helper = f"_h{index}"
                ns[helper] = self._value_unstructurer(spec)
                guard = ""
                if "none" in spec.scalars:
                    body.append(f"{indent}if {var} is not None:")
                    guard = "    "
                body += [
                    f"{indent}{guard}try:",
                    f"{indent}{guard}    {var} = {helper}({var})",
                    f"{indent}{guard}except _Invalid as e:",
                    f"{indent}{guard}    raise e.at({name!r}) from None",
                ]
            body.append(f"{indent}d[{name!r}] = {var}")
        body += [
            "    extra = obj.extra",
            "    if extra:",
            "        for k, x in extra.items():",
            "            if k not in d:",
            "                d[k] = x",
            "    return d",
        ]
        return _compile("unstructure", "\n".join(body) + "\n", ns)  # type: ignore[no-any-return]


def _role_dispatcher(
    role_hooks: dict[str, Callable[[Any], Any]], fallback: type | None, spec: _Spec
) -> Callable[[dict[str, Any]], Any]:
    expected = ", ".join(sorted(role_hooks))

    def dispatch(v: dict[str, Any]) -> Any:
        role = v.get("role", _MISSING)
        hook = role_hooks.get(role) if role.__class__ is str else None
        if hook is not None:
            return hook(v)
        if fallback is not None and isinstance(role, str):
            return fallback(v)
        if role is _MISSING:
            raise _Invalid(f"missing required field (one of {expected})").at("role")
        raise _Invalid(f"unknown role {_shown(role)}, expected one of {expected}").at("role")

    return dispatch


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of the slot that stores ``name`` (frozen classes block setattr)."""
    for klass in cls.__mro__:
        slot = klass.__dict__.get(name)
        if slot is not None and hasattr(slot, "__set__"):
            return slot.__set__  # type: ignore[no-any-return]
    raise TypeError(f"{cls.__name__}.{name} is not a slot")  # pragma: no cover


def _unstructure_raw(obj: _RawWrapper) -> dict[str, Any]:
    return dict(obj.raw)


_codegen = _Codegen()


# --- the converter ----------------------------------------------------------------------


def make_converter() -> cattrs.Converter:
    """Builds the protocol's converter: every wire class goes through the generated hooks."""
    conv = cattrs.Converter()

    def is_wire(cls: Any) -> bool:
        return isinstance(cls, type) and issubclass(cls, (WireObject, _RawWrapper))

    def structure_factory(cls: type) -> Callable[[Any, Any], Any]:
        fn = _codegen.structurer(cls)

        def hook(data: Any, _: Any) -> Any:
            try:
                if data.__class__ is not dict:
                    raise _bad(data, "object")
                return fn(data)
            except _Invalid as e:
                raise ProtocolError(e.reason, raw=data, path=e.path) from None

        return hook

    def unstructure_factory(cls: type) -> Callable[[Any], Any]:
        return _unstructure_hook(_codegen.unstructurer(cls))

    conv.register_structure_hook_factory(is_wire, structure_factory)
    conv.register_unstructure_hook_factory(is_wire, unstructure_factory)
    return conv


def _unstructure_hook(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def hook(obj: Any) -> Any:
        try:
            return fn(obj)
        except _Invalid as e:
            raise ValidationError(e.reason, path=e.path) from None

    return hook


converter = make_converter()
"""The protocol's single cattrs converter."""


# --- event dispatch -----------------------------------------------------------------------


def _event_table(union: Any) -> dict[str, type]:
    table: dict[str, type] = {}
    for cls in _flatten(union):
        if cls in _FALLBACKS:
            continue
        tag = _tag_of(cls, "type")
        assert tag is not None
        table[tag] = cls
    return table


SERVER_EVENT_TYPES: Mapping[str, type] = types.MappingProxyType(_event_table(ServerEvent))
"""Every server event ``type`` this version knows, with its class."""

CLIENT_EVENT_TYPES: Mapping[str, type] = types.MappingProxyType(_event_table(ClientEvent))
"""Every client event ``type`` this version knows, with its class."""

_server_hooks: dict[str, Callable[[Any], Any]] = {}
_client_hooks: dict[str, Callable[[Any], Any]] = {}


def _decode(raw: str | bytes | bytearray | memoryview | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        data = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as e:
        raise ProtocolError(f"malformed JSON: {e}", raw=raw) from None
    if data.__class__ is not dict:
        raise ProtocolError(f"expected a JSON object, got {_json_name(data)}", raw=raw)
    return data


def _build_all(hooks: dict[str, Callable[[Any], Any]], table: Mapping[str, type]) -> None:
    """Builds the structurer of every event type of one side of the protocol.

    This happens at the first known event a process parses on that side (about
    40 ms of code generation for the server's events, 8 ms for the client's),
    not at each type's first appearance: a session's first response brings a
    dozen new types at once, and would pay for them while its audio streams.
    """
    for tag, cls in table.items():
        if tag not in hooks:
            hooks[tag] = _codegen.structurer(cls)


def _parse(
    raw: Any,
    hooks: dict[str, Callable[[Any], Any]],
    table: Mapping[str, type],
    unknown: type,
) -> Any:
    data = _decode(raw)
    _check_depth(data, raw)
    tag = data.get("type")
    if tag.__class__ is not str:
        problem = (
            "missing required field" if tag is None else f"expected str, got {_json_name(tag)}"
        )
        raise ProtocolError(problem, raw=raw, path="type")
    hook = hooks.get(tag)
    if hook is None:
        cls = table.get(tag)
        if cls is None:
            return unknown(data)
        _build_all(hooks, table)
        hook = hooks[tag]
    try:
        return hook(data)
    except _Invalid as e:
        raise ProtocolError(e.reason, raw=raw, path=e.path) from None


def parse_server_event(raw: str | bytes | bytearray | memoryview | dict[str, Any]) -> ServerEvent:
    """Parses one frame from a Realtime server.

    Args:
        raw: the frame's text or bytes, or an already decoded JSON object (which
            the returned event then shares; do not mutate it afterwards).

    Returns:
        The typed event; an event type this version does not know comes back
        as :class:`UnknownServerEvent` with the raw object.

    Raises:
        ProtocolError: bad JSON, a frame that is not an object or has no
            ``type``, or a known event with a missing or mistyped field.
    """
    return _parse(raw, _server_hooks, SERVER_EVENT_TYPES, UnknownServerEvent)  # type: ignore[no-any-return]


def parse_client_event(raw: str | bytes | bytearray | memoryview | dict[str, Any]) -> ClientEvent:
    """Parses one frame from a Realtime client (the server side of the protocol).

    Same contract as :func:`parse_server_event`, with
    :class:`UnknownClientEvent` for unknown types.
    """
    return _parse(raw, _client_hooks, CLIENT_EVENT_TYPES, UnknownClientEvent)  # type: ignore[no-any-return]


def from_dict(data: Mapping[str, Any], cls: type[T]) -> T:
    """Structures a JSON object as the given wire class (for payloads outside events).

    Raises:
        ProtocolError: a missing or mistyped field, with its path; input
            nested deeper than :data:`MAX_DEPTH`.
    """
    _check_depth(data, data)
    return converter.structure(data, cls)


def to_dict(obj: object) -> dict[str, Any]:
    """Turns a wire object into its JSON object.

    Fields never set are omitted; fields set to ``None`` are written as
    ``null``; unknown fields a peer sent are written back.

    Raises:
        ValidationError: a value of the wrong type, or a required field left
            empty, with the path of the value.
    """
    fn = _codegen.unstructurers.get(type(obj))
    if fn is None:
        if not isinstance(obj, (WireObject, _RawWrapper)):
            raise ValidationError(f"expected a wire object, got {type(obj).__name__}")
        fn = _codegen.unstructurer(type(obj))
    try:
        return fn(obj)  # type: ignore[no-any-return]
    except _Invalid as e:
        raise ValidationError(e.reason, path=e.path) from None


def to_json(obj: object) -> str:
    """The JSON text of a wire object (see :func:`to_dict`).

    Raises:
        ValidationError: as :func:`to_dict`, and for values JSON cannot hold
            (nesting deeper than orjson writes, integers beyond 64 bits).
    """
    data = to_dict(obj)
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError as e:
        found = _too_deep(data, _WRITE_DEPTH)
        if found is not None:
            raise ValidationError(
                f"nested deeper than the {_WRITE_DEPTH} levels JSON is written with",
                path=_path(found[:8]),
            ) from None
        raise ValidationError(f"cannot be written as JSON: {e}") from None
