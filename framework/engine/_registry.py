"""The engine's client secrets and calls as its server sees them: here, and in a shared Redis.

:class:`~._rest.RestState` holds what this engine minted and rang, and does no I/O.
:class:`Registry` is the asynchronous layer the server asks instead: without a Redis
it is that state alone; with one (:mod:`._shared`) it also takes the client secrets
other engines minted, shares the ones minted here, registers the calls held here,
carries a call action for a call another engine holds to that engine, and tells a
``?call_id=`` WebSocket for such a call where it is held.

A WebSocket is not carried from one engine to another: the client is told the
holder's address (421, which RFC 9110, 15.5.20, gives to a request sent to a
server that cannot answer it) and dials that engine. Within one host's ``--workers`` set the
primary holds every call and serves every attach (see :mod:`._workers`), so it
never comes to that there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import trio

from ._rest import Call, ClientSecret, HttpError, HttpResponse, RestState, unknown_call
from ._shared import Instance, SharedState, SharedStoreError, open_shared_state, unavailable

_log = logging.getLogger("cantata.engine")
_LEAVE_S = 2.0  # how long a stopping engine tries to delete its calls' records


@attrs.define(kw_only=True, eq=False)
class Registry:
    """The client secrets and calls of one engine, and of the engines sharing its Redis."""

    rest: RestState
    shared: SharedState | None = None
    """The state shared through Redis, while the engine is served with one."""
    actions: dict[str, Callable[[str, bytes], Awaitable[HttpResponse]]] = attrs.field(factory=dict)
    """Call actions beyond the REST ones (the operator's ``dtmf``), by verb."""

    def changed(self, call: Call) -> None:
        """Told of every call added or changed here (``RestState.changed``)."""
        if self.shared is not None:
            self.shared.note(call)

    @asynccontextmanager
    async def sharing(self, redis: str | None) -> AsyncIterator[None]:
        """Connects to the shared Redis for the block, when there is one.

        Raises:
            SharedStoreError: Redis does not answer at ``redis``.
        """
        if redis is None:
            yield
            return
        async with open_shared_state(redis) as shared:
            self.shared = shared
            try:
                yield
            finally:
                self.shared = None
                # An engine that stops forgets its calls: other engines stop naming it.
                with trio.CancelScope(shield=True), trio.move_on_after(_LEAVE_S):
                    await shared.leave()

    async def serve(self, nursery: trio.Nursery, address: str) -> None:
        """Registers the calls held here under ``address``, and answers the actions other
        engines forward here, in tasks of ``nursery`` (nothing without a Redis)."""
        shared = self.shared
        if shared is None:
            return
        shared.me = attrs.evolve(shared.me, address=address)
        await nursery.start(partial(shared.run, lambda: list(self.rest.calls.values()), self.act))

    async def flush(self) -> None:
        """Registers the calls changed here before answering about them.

        Redis lost is logged, not raised: the calls go on here, and a later beat
        registers them.
        """
        if self.shared is not None:
            try:
                await self.shared.flush()
            except SharedStoreError as error:
                _log.warning("%s", str(error))  # a string: a record keeps its args

    async def calls(self) -> list[dict[str, Any]]:
        """The calls of this engine, or of every engine sharing its Redis.

        Raises:
            HttpError: 503 when Redis is lost.
        """
        if self.shared is None:
            return [call.view() for call in self.rest.calls.values()]
        await self.flush()
        try:
            return await self.shared.calls()
        except SharedStoreError as error:
            raise unavailable(error) from None

    async def authorize(
        self, key: str | None, *, api_key: str | None, ephemeral_ok: bool
    ) -> ClientSecret | None:
        """``RestState.authorize``, which also knows the client secrets other engines minted.

        Raises:
            HttpError: as ``RestState.authorize`` does; 503 for a client secret not
                seen here while Redis is lost (fail closed).
        """
        shared = self.shared
        if (
            shared is not None
            and key
            and key.startswith("ek_")
            and key not in self.rest.client_secrets
        ):
            try:
                found = await shared.get(key)
            except SharedStoreError as error:
                raise unavailable(error) from None
            if found is not None:
                self.rest.remember(found)
        return self.rest.authorize(key, api_key=api_key, ephemeral_ok=ephemeral_ok)

    async def mint(self, body: bytes) -> HttpResponse:
        """``POST /v1/realtime/client_secrets``, shared before it is answered.

        Raises:
            HttpError: as ``RestState.create_client_secret`` does; 503 when Redis is
                lost (a secret other engines would refuse is not handed out).
        """
        minted, response = self.rest.create_client_secret(body)
        if self.shared is not None:
            try:
                await self.shared.put(minted)
            except SharedStoreError as error:
                del self.rest.client_secrets[minted.value]
                raise unavailable(error) from None
        return response

    async def act_anywhere(self, verb: str, call_id: str, body: bytes) -> HttpResponse:
        """A call action, carried out here when the call is here, else by the engine holding it.

        Raises:
            HttpError: the action's own; 404 when no engine holds the call; 503
                when Redis is lost; 504 when the holder does not answer.
        """
        if self.shared is not None and call_id not in self.rest.calls:
            holder = await self._holder(call_id)
            try:
                return await self.shared.forward(holder, verb, call_id, body)
            except SharedStoreError as error:
                raise unavailable(error) from None
        return await self.act(verb, call_id, body)

    async def act(self, verb: str, call_id: str, body: bytes) -> HttpResponse:
        """A call action on a call held here (one forwarded here is never sent on)."""
        special = self.actions.get(verb)
        if special is not None:
            return await special(call_id, body)
        response = self.rest.act_on_call(verb, call_id, body)
        await self.flush()
        return response

    async def attachable(self, call_id: str) -> Call:
        """The call a ``?call_id=`` WebSocket attaches to, when it is held here.

        Raises:
            HttpError: as ``RestState.attachable`` does; 421 for a call another
                engine holds; 503 when Redis is lost.
        """
        if self.shared is not None and call_id not in self.rest.calls:
            holder = await self._holder(call_id)
            raise HttpError(
                421,
                f"Call '{call_id}' is held by the engine at {holder.address}; open the "
                f"WebSocket there, with ?call_id={call_id}.",
                code="call_held_elsewhere",
            )
        # No await since the check: the caller takes the call before anyone else can.
        return self.rest.attachable(call_id)

    async def _holder(self, call_id: str) -> Instance:
        """The other engine that holds a call this one does not.

        Raises:
            HttpError: 404 when no engine holds it; 503 when Redis is lost.
        """
        assert self.shared is not None
        try:
            holder = await self.shared.holder_of(call_id)
        except SharedStoreError as error:
            raise unavailable(error) from None
        if holder is None or holder.id == self.shared.me.id:
            raise unknown_call(call_id)
        return holder
