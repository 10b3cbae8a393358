"""Client secrets shared through Redis, so every engine process sharing it accepts them.

Each secret is one key under a prefix, holding its JSON and expiring with the secret (the
key's TTL), so Redis itself bounds the store: nothing outlives its secret. ``coredis`` is
imported only when a store is opened, so an engine without ``--redis`` never needs it.
Checks fail closed: when Redis cannot be reached, a lookup raises ``SharedStoreError`` and
no unknown secret is ever taken for a known one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson

from framework.protocol import RealtimeSessionCreateRequest, from_dict, to_dict

from ._rest import ClientSecret

KEY_PREFIX = "cantata:engine:"
"""Where the engine's keys live in the shared Redis."""


class SharedStoreError(Exception):
    """The shared store could not be reached; the message says what to do."""


@attrs.define(kw_only=True, eq=False)
class SharedSecrets:
    """Client secrets in Redis, readable by every engine process that shares it.

    Made by ``open_shared_secrets``, which holds the connection for its block.
    """

    url: str
    client: Any
    prefix: str = KEY_PREFIX

    def _key(self, value: str) -> str:
        return f"{self.prefix}secret:{value}"

    async def put(self, secret: ClientSecret) -> None:
        """Stores a minted secret until it expires."""
        ttl = max(1, int(secret.expires_at - time.time()))
        body = {
            "created_at": secret.created_at,
            "expires_at": secret.expires_at,
            "session": to_dict(secret.session),
            "transcription": secret.transcription,
        }
        await self._call(
            "store a client secret", "set", self._key(secret.value), orjson.dumps(body), ex=ttl
        )

    async def get(self, value: str) -> ClientSecret | None:
        """The secret stored under ``value``, or None when no process minted it (or it expired)."""
        raw = await self._call("check a client secret", "get", self._key(value))
        if raw is None:
            return None
        body = orjson.loads(raw)
        return ClientSecret(
            value=value,
            created_at=body["created_at"],
            expires_at=body["expires_at"],
            session=from_dict(body["session"], RealtimeSessionCreateRequest),
            transcription=body["transcription"],
        )

    async def _call(self, what: str, command: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self.client, command)(*args, **kwargs)
        except Exception as error:
            raise SharedStoreError(
                f"Cannot {what}: Redis at {self.url} is unreachable ({error}); "
                "restore it, the check fails closed until then."
            ) from error


@asynccontextmanager
async def open_shared_secrets(url: str) -> AsyncIterator[SharedSecrets]:
    """Connects to Redis at ``url`` for the block; ``SharedStoreError`` if it does not answer."""
    import coredis  # Lazy: only an engine given --redis needs the client.

    client = coredis.Redis.from_url(url)
    entered = False
    try:
        async with client:
            await client.ping()
            entered = True
            yield SharedSecrets(url=url, client=client)
    except Exception as error:
        if entered:
            raise
        raise SharedStoreError(
            f"Redis at {url} did not answer ({error}); start it or fix --redis."
        ) from error
