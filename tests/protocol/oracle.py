"""The official SDK's pydantic models as a schema oracle.

Whatever ``openai`` is importable is the oracle (the pinned newest in the test
environment; the seed's 2.8.1 when ``test_seed_sdk.py`` re-runs the
conformance tests against it). The SDK's discriminator metadata is private and
pydantic ignores it, so the unions are rebuilt here as real tagged unions;
its models accept unknown keys, so :func:`unknown_keys` looks for them.
"""

from __future__ import annotations

import json
import random
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import openai
import pydantic
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import Field, TypeAdapter

SDK_VERSION: str = openai.__version__


def _members(alias: Any) -> tuple[type[pydantic.BaseModel], ...]:
    inner = get_args(alias)[0] if get_origin(alias) is Annotated else alias
    return get_args(inner)  # type: ignore[no-any-return]


SERVER_EVENT_CLASSES = _members(RealtimeServerEvent)
CLIENT_EVENT_CLASSES = _members(RealtimeClientEvent)


def _type_of(cls: type[pydantic.BaseModel]) -> str:
    return get_args(cls.model_fields["type"].annotation)[0]  # type: ignore[no-any-return]


SERVER_TYPES = {_type_of(c): c for c in SERVER_EVENT_CLASSES}
CLIENT_TYPES = {_type_of(c): c for c in CLIENT_EVENT_CLASSES}

_server_adapter: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[SERVER_EVENT_CLASSES], Field(discriminator="type")]  # noqa: UP007
)
_client_adapter: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[CLIENT_EVENT_CLASSES], Field(discriminator="type")]  # noqa: UP007
)

# A real session.created carries the server's session id, object and expiry,
# which the request-shaped session model does not declare.
ALLOWED_EXTRAS = {"$.session.id", "$.session.object", "$.session.expires_at"}


def unknown_keys(obj: Any, path: str = "$") -> list[str]:
    """Paths of the keys a validated model kept as extras (unknown to the SDK)."""
    found: list[str] = []
    if isinstance(obj, pydantic.BaseModel):
        found += [f"{path}.{k}" for k in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += unknown_keys(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found += unknown_keys(value, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            found += unknown_keys(value, f"{path}.{key}")
    return found


def check_server_event(payload: dict[str, Any]) -> Any:
    """Validates a server event strictly: right branch, no unknown keys, lossless."""
    event = _server_adapter.validate_json(json.dumps(payload), strict=True)
    unknown = [p for p in unknown_keys(event) if p not in ALLOWED_EXTRAS]
    assert not unknown, f"keys unknown to the SDK {SDK_VERSION}: {unknown}"
    again = _server_adapter.dump_python(event, mode="json", exclude_unset=True)
    assert again == payload, (again, payload)
    return event


def check_client_event(payload: dict[str, Any]) -> Any:
    """Validates a client event strictly; item references are checked on their own."""
    response = payload.get("response") if payload.get("type") == "response.create" else None
    if isinstance(response, dict) and isinstance(response.get("input"), list):
        refs = [i for i in response["input"] if i.get("type") == "item_reference"]
        if refs:
            from openai.types.realtime import ResponseItemReference  # 3.x only

            for ref in refs:
                ResponseItemReference.model_validate(ref, strict=True)
            kept = [i for i in response["input"] if i.get("type") != "item_reference"]
            payload = {**payload, "response": {**response, "input": kept}}
    event = _client_adapter.validate_json(json.dumps(payload), strict=True)
    unknown = unknown_keys(event)
    assert not unknown, f"keys unknown to the SDK {SDK_VERSION}: {unknown}"
    return event


# --- sample payloads built from the SDK's own models --------------------------------

_WORDS = ["alpha", "item_1", "", "héllo wörld", "resp_9", "a\nb", "0"]


def _example(tp: Any, rng: random.Random, depth: int) -> Any:
    """A random value of an SDK annotation, as JSON-ready data."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if tp is str:
        return rng.choice(_WORDS)
    if tp is int:
        return rng.choice([0, 1, 7, 24000, -3, 2**40])
    if tp is float:
        return rng.choice([0.0, 0.5, 1.25, -2.0, 3.0])
    if tp is bool:
        return rng.choice([True, False])
    if tp is object:
        return rng.choice([{}, {"type": "object", "properties": {"x": {"type": "string"}}}])
    if tp is type(None):
        return None
    if origin is Literal:
        return rng.choice(get_args(tp))
    if origin in (Union, types.UnionType):
        return _example(rng.choice(get_args(tp)), rng, depth)
    if origin in (list, typing.List):  # noqa: UP006
        if depth > 5:
            return []
        return [_example(get_args(tp)[0], rng, depth + 1) for _ in range(rng.randint(0, 2))]
    if origin in (dict, typing.Dict):  # noqa: UP006
        return {
            rng.choice(["k", "key_2", "x"]): _example(get_args(tp)[1], rng, depth + 1)
            for _ in range(rng.randint(0, 2))
        }
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        out = {}
        for name, field in tp.model_fields.items():
            if field.is_required() or rng.random() < 0.6:
                out[field.alias or name] = _example(field.annotation, rng, depth + 1)
        return out
    raise TypeError(f"no example for {tp!r}")


def sample_payloads(cls: type[pydantic.BaseModel], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` varied payloads of one SDK model, each validated by the SDK itself.

    Optional fields are randomly present, absent or ``null``; union branches,
    literals and nesting vary with the seed. Each payload is passed through the
    SDK model (strict) and dumped back, so it is SDK-valid by construction.
    """
    rng = random.Random(f"{cls.__name__}:{seed}")
    out: list[dict[str, Any]] = []
    attempts = 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        data = _example(cls, rng, 0)
        try:
            model = cls.model_validate_json(json.dumps(data), strict=True)
        except pydantic.ValidationError:
            continue  # e.g. a union branch whose own tag was picked inconsistently
        out.append(model.model_dump(mode="json", exclude_unset=True, by_alias=True))
    assert out, f"could not build a valid {cls.__name__}"
    return out


def polyfactory_payloads(cls: type[pydantic.BaseModel], count: int) -> list[dict[str, Any]]:
    """Payloads from polyfactory, with explicit nulls allowed, as a second generator."""
    from polyfactory.factories.pydantic_factory import ModelFactory

    ModelFactory.add_provider(object, dict)
    out = []
    for seed in range(count):
        factory = ModelFactory.create_factory(
            cls, __allow_none_optionals__=bool(seed % 2), __random_seed__=seed
        )
        out.append(json.loads(factory.build().model_dump_json(by_alias=True)))
    return out
