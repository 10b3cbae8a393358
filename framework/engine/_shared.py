"""The engine's state shared through Redis (``cantata serve --redis URL``).

Every engine process given the same Redis (the helpers of ``--workers N`` and
engines on other hosts alike) is one *instance* with an id and an address, and
shares three things through it, all under :data:`KEY_PREFIX`:

==========================  ==============  ===============================================
key                         type            what
==========================  ==============  ===============================================
``secret:VALUE``            string, TTL     a client secret's JSON; expires with the secret
``secrets``                 sorted set      the secrets' values, scored by their expiry
``call:ID``                 string, TTL     a call's record and the instance that holds it
``calls``                   sorted set      call ids, scored by when their record expires
``inbox:INSTANCE``          list, TTL       call actions forwarded to the instance holding
``reply:TOKEN``             list, TTL       the holder's answer to one forwarded action
==========================  ==============  ===============================================

A call's record is written when it changes and again every :data:`BEAT_S`, with a
TTL of :data:`CALL_TTL_S`: a forgotten call is deleted at the next beat, and the
calls of an instance that died vanish on their own. Redis bounds the store: each
key expires, at most :data:`MAX_SHARED_SECRETS` secrets are kept, an inbox keeps at
most :data:`MAX_INBOX` actions, and an identifier longer than :data:`MAX_ID_CHARS`
is unknown without asking. Calls are bounded by each engine's own ``MAX_CALLS``.

``coredis`` is imported only when a store is opened, so an engine without
``--redis`` never needs it. Checks fail closed: when Redis cannot be reached, a
lookup raises :class:`SharedStoreError` and no unknown secret is ever taken for a
known one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import attrs
import orjson
import trio

from framework.protocol import ProtocolError, RealtimeSessionCreateRequest, from_dict, to_dict

from ._rest import MAX_CLIENT_SECRETS, MAX_EXPIRY_S, Call, ClientSecret, HttpError, HttpResponse

_log = logging.getLogger("cantata.engine")
T = TypeVar("T")

KEY_PREFIX = "cantata:engine:"
"""Where the engine's keys live in the shared Redis."""
CALL_TTL_S = 15
"""How long a call's record outlives the last beat of the instance holding it."""
BEAT_S = 5.0
"""How often an instance writes the records of all its calls again."""
FORWARD_TIMEOUT_S = 5.0
"""How long an action forwarded to a call's holder waits for the answer."""
MAX_INBOX = 100
"""Forwarded actions waiting at one instance; past it the oldest are dropped (and time out)."""
MAX_FORWARDED_BYTES = 256 * 1024
"""The largest request body forwarded to another instance."""
MAX_SHARED_SECRETS = MAX_CLIENT_SECRETS
"""Client secrets the shared store keeps: as many as one engine does."""
MAX_ID_CHARS = 128
"""Longer call ids and client secrets are unknown without asking Redis."""
MAX_LISTED_CALLS = 10_000
"""The most calls one listing returns."""
MAX_ANSWERING = 16
"""Forwarded actions one instance carries out at once (a DTMF may take seconds)."""
REDIS_TIMEOUT_S = 3.0
"""How long one Redis command may take before the store counts Redis as lost."""
_INBOX_TTL_S = 30  # an inbox nobody reads (its instance died) goes with its last action
_READ_BLOCK_S = 1  # an inbox read blocks this long, so that Redis lost is seen in time

Action = Callable[[str, str, bytes], Awaitable[HttpResponse]]
"""Carries out a call action (``verb``, ``call_id``, body) on the calls this instance holds."""


class SharedStoreError(Exception):
    """The shared store could not be reached; the message says what to do."""


def redacted(url: str) -> str:
    """A Redis URL as messages show it: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@attrs.frozen(kw_only=True)
class Instance:
    """One engine process sharing the Redis: its id, and the URL its clients reach."""

    id: str = attrs.field(factory=lambda: f"eng_{secrets.token_hex(8)}")
    address: str = ""


def unavailable(error: SharedStoreError) -> HttpError:
    """What a client hears when Redis is lost: 503, and what to do."""
    return HttpError(503, str(error), code="shared_state_unavailable", type="server_error")


@attrs.define(kw_only=True, eq=False)
class SharedState:
    """The engine's shared state in Redis, for every engine process that shares it.

    Made by :func:`open_shared_state`, which holds the connection for its block.
    """

    url: str
    client: Any
    me: Instance = attrs.field(factory=Instance)
    prefix: str = KEY_PREFIX
    _published: set[str] = attrs.field(factory=set, init=False)
    _pending: dict[str, Call] = attrs.field(factory=dict, init=False)
    _wake: trio.Event = attrs.field(factory=trio.Event, init=False)

    def _key(self, value: str) -> str:
        return f"{self.prefix}secret:{value}"

    def _call_key(self, call_id: str) -> str:
        return f"{self.prefix}call:{call_id}"

    def _inbox(self, instance_id: str) -> str:
        return f"{self.prefix}inbox:{instance_id}"

    @asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[None]:
        """Turns whatever Redis raised in the block into a :class:`SharedStoreError`."""
        try:
            yield
        except Exception as error:
            raise SharedStoreError(
                f"Cannot {what}: Redis at {redacted(self.url)} is unreachable or refused "
                f"({error}); restore it, the check fails closed until then."
            ) from error

    async def _call(self, what: str, command: str, *args: Any, **kwargs: Any) -> Any:
        async with self._guard(what):
            return await getattr(self.client, command)(*args, **kwargs)

    # --- client secrets ---------------------------------------------------------------

    async def put(self, secret: ClientSecret) -> None:
        """Stores a minted secret until it expires; past :data:`MAX_SHARED_SECRETS`, the
        ones nearest their expiry are forgotten (as one engine forgets its oldest)."""
        ttl = max(1, secret.expires_at - secret.created_at)  # minted just now, by its clock
        body = {
            "created_at": secret.created_at,
            "expires_at": secret.expires_at,
            "session": to_dict(secret.session),
            "transcription": secret.transcription,
        }
        async with self._guard("store a client secret"):
            pipe = self.client.pipeline(transaction=True)
            async with pipe:
                pipe.set(self._key(secret.value), orjson.dumps(body), ex=ttl)
                pipe.zadd(self._secrets, {secret.value: secret.expires_at})
                pipe.zremrangebyscore(self._secrets, "-inf", time.time())
                pipe.expire(self._secrets, MAX_EXPIRY_S)
            excess = await self.client.zcard(self._secrets) - MAX_SHARED_SECRETS
            if excess > 0:
                oldest = await self.client.zpopmin(self._secrets, excess)
                await self.client.delete([self._key(m.member.decode()) for m in oldest])

    @property
    def _secrets(self) -> str:
        return f"{self.prefix}secrets"

    async def get(self, value: str) -> ClientSecret | None:
        """The secret stored under ``value``, or None when no process minted it (or it expired)."""
        if len(value) > MAX_ID_CHARS:
            return None
        raw = await self._call("check a client secret", "get", self._key(value))
        return None if raw is None else _parsed(raw, "client secret", partial(_secret, value))

    # --- the registry of calls --------------------------------------------------------

    def note(self, call: Call) -> None:
        """Says a call changed: its record is written soon (by :meth:`run`), without waiting."""
        self._pending[call.id] = call
        self._wake.set()

    async def flush(self) -> None:
        """Writes the records of the calls noted since the last write, now.

        Raises:
            SharedStoreError: Redis was lost (they are written at a later beat).
        """
        pending, self._pending = self._pending, {}
        try:
            await self._publish(pending.values(), every=False)
        except SharedStoreError:
            self._pending = {**pending, **self._pending}
            raise

    async def _publish(self, calls: Iterable[Call], *, every: bool) -> None:
        """Writes the records of ``calls``, held here; with ``every``, ``calls`` are all
        this instance holds, and the records of the calls it no longer holds are deleted."""
        records = {call.id: self._record(call) for call in calls}
        gone = self._published - set(records) if every else set()
        if not records and not gone and not every:
            return
        expires = time.time() + CALL_TTL_S
        async with self._guard("register the calls"):
            pipe = self.client.pipeline(transaction=False)
            async with pipe:
                for call_id, record in records.items():
                    pipe.set(self._call_key(call_id), record, ex=CALL_TTL_S)
                if records:
                    pipe.zadd(self._calls, dict.fromkeys(records, expires))
                if gone:
                    pipe.delete([self._call_key(call_id) for call_id in gone])
                    pipe.zrem(self._calls, list(gone))
                pipe.zremrangebyscore(self._calls, "-inf", time.time())
        self._published = (self._published - gone) | set(records)

    async def leave(self) -> None:
        """Deletes the records of the calls held here, as the engine stops; Redis lost is
        logged, and the records then expire on their own."""
        if not self._published:
            return
        try:
            # A connection of its own: the engine's went with its cancelled tasks.
            async with open_shared_state(self.url) as fresh:
                fresh._published = self._published
                await fresh._publish((), every=True)
        except SharedStoreError as error:
            _log.warning("%s", str(error))

    @property
    def _calls(self) -> str:
        return f"{self.prefix}calls"

    def _record(self, call: Call) -> bytes:
        return orjson.dumps({**call.view(), "engine": attrs.asdict(self.me)})

    async def holder_of(self, call_id: str) -> Instance | None:
        """The instance that holds the call, or None when no instance does."""
        if len(call_id) > MAX_ID_CHARS:
            return None
        raw = await self._call("look up a call", "get", self._call_key(call_id))
        return None if raw is None else _parsed(raw, "call", _holder)

    async def calls(self) -> list[dict[str, Any]]:
        """The records of the calls every instance holds, oldest first."""
        from coredis import PureToken

        ids = await self._call(
            "list the calls", "zrange", self._calls, time.time(), "+inf",
            sortby=PureToken.BYSCORE, offset=0, count=MAX_LISTED_CALLS,
        )  # fmt: skip
        if not ids:
            return []
        raws = await self._call("list the calls", "mget", [self._call_key(i.decode()) for i in ids])
        records = [_parsed(raw, "call", _view) for raw in raws if raw is not None]
        return sorted(filter(None, records), key=lambda record: int(record["created_at"]))

    # --- actions forwarded to the holder ----------------------------------------------

    async def forward(self, holder: Instance, verb: str, call_id: str, body: bytes) -> HttpResponse:
        """Has ``holder`` carry out a call action; its answer, as it gave it.

        Raises:
            HttpError: 413 for a body too large to forward; 504 when the holder
                does not answer in time.
            SharedStoreError: Redis was lost.
        """
        if len(body) > MAX_FORWARDED_BYTES:
            raise HttpError(
                413,
                f"Call '{call_id}' is held by the engine at {holder.address}, and bodies over "
                f"{MAX_FORWARDED_BYTES} bytes are not forwarded; send it there.",
                code="request_too_large",
            )
        reply = f"{self.prefix}reply:{secrets.token_hex(16)}"
        request = {"reply": reply, "verb": verb, "call_id": call_id, "body": body.decode("latin-1")}
        inbox = self._inbox(holder.id)
        async with self._guard(f"forward to the engine holding call '{call_id}'"):
            pipe = self.client.pipeline(transaction=True)
            async with pipe:
                pipe.rpush(inbox, [orjson.dumps(request)])
                pipe.ltrim(inbox, -MAX_INBOX, -1)
                pipe.expire(inbox, _INBOX_TTL_S)
        answer = None
        deadline = trio.current_time() + FORWARD_TIMEOUT_S
        while answer is None and trio.current_time() < deadline:
            answer = await self._call("wait for the call's engine", "blpop", [reply], _READ_BLOCK_S)
        if answer is None:
            raise HttpError(
                504,
                f"The engine at {holder.address} that holds call '{call_id}' did not answer "
                f"within {FORWARD_TIMEOUT_S:g} s; check that it runs, or retry.",
                code="call_holder_unreachable",
                type="server_error",
            )
        response = _parsed(answer[1], "forwarded answer", _response)
        if response is None:
            raise HttpError(
                502,
                f"The engine at {holder.address} that holds call '{call_id}' answered with "
                "something that is not an answer; check that it runs this version.",
                code=None,
                type="server_error",
            )
        return response

    async def _answer(self, raw: bytes, act: Action) -> None:
        try:
            request = orjson.loads(raw)
            reply, verb, call_id = request["reply"], request["verb"], request["call_id"]
            body = request["body"].encode("latin-1")
            if not (isinstance(reply, str) and reply.startswith(f"{self.prefix}reply:")):
                raise ValueError(f"a reply key outside {self.prefix}reply:")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            _log.warning("skipped a malformed forwarded call action: %s", str(error))
            return
        try:
            response = await act(str(verb), str(call_id), body)
        except HttpError as error:
            response = error.response()
        except Exception as error:  # a fault here must not stop the inbox for every call
            _log.warning("a forwarded %s of call %s failed: %s", verb, call_id, str(error))
            response = HttpError(
                500,
                f"The engine holding call '{call_id}' failed to {verb} it; see its log.",
                code=None,
                type="server_error",
            ).response()
        answer = {"status": response.status, "body": response.body.decode("latin-1")}
        async with self._guard(f"answer a forwarded {verb}"):
            pipe = self.client.pipeline(transaction=True)
            async with pipe:
                pipe.rpush(reply, [orjson.dumps(answer)])
                pipe.expire(reply, int(FORWARD_TIMEOUT_S) + _INBOX_TTL_S)

    # --- the instance's own tasks -----------------------------------------------------

    async def run(
        self,
        held: Callable[[], Iterable[Call]],
        act: Action,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Keeps the records of the ``held`` calls written, and answers the actions
        forwarded here with ``act``, until cancelled. Redis lost is logged, and retried."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._beat, held)
            nursery.start_soon(self._read_inbox, act)
            task_status.started()

    async def _beat(self, held: Callable[[], Iterable[Call]]) -> None:
        next_beat = trio.current_time()
        lost = False
        while True:
            with trio.move_on_at(next_beat):
                await self._wake.wait()
            self._wake = trio.Event()
            try:
                if trio.current_time() < next_beat:
                    await self.flush()
                    continue
                self._pending = {}
                await self._publish(held(), every=True)
            except SharedStoreError as error:
                if not lost:
                    _log.warning("%s", str(error))  # a string: a record keeps its args
                lost = True
                await trio.sleep(1)
                continue
            lost = False
            next_beat = trio.current_time() + BEAT_S

    async def _read_inbox(self, act: Action) -> None:
        inbox = self._inbox(self.me.id)
        lost = False
        answering = trio.Semaphore(MAX_ANSWERING)
        async with trio.open_nursery() as nursery:
            while True:
                await answering.acquire()  # a slow action delays the next ones, at most
                try:
                    popped = await self._call(
                        "read forwarded actions", "blpop", [inbox], _READ_BLOCK_S
                    )
                except SharedStoreError as error:
                    answering.release()
                    if not lost:
                        _log.warning("%s; retrying", str(error))
                    lost = True
                    await trio.sleep(1)
                    continue
                lost = False
                if popped is None:
                    answering.release()
                else:
                    nursery.start_soon(self._answer_released, popped[1], act, answering)

    async def _answer_released(self, raw: bytes, act: Action, answering: trio.Semaphore) -> None:
        try:
            await self._answer(raw, act)
        except SharedStoreError as error:
            _log.warning("%s", str(error))  # its requester times out and says so
        finally:
            answering.release()


def _parsed(raw: bytes, what: str, build: Callable[[dict[str, Any]], T]) -> T | None:
    """A record read from Redis, or None (and a warning) when it is not one.

    Anyone who can write to the Redis can write there; a bad record counts as none.
    """
    try:
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return build(data)
    except (ValueError, KeyError, TypeError, AttributeError, ProtocolError) as error:
        _log.warning("skipped a malformed %s record in Redis: %s", what, str(error))
        return None


def _secret(value: str, data: dict[str, Any]) -> ClientSecret:
    return ClientSecret(
        value=value,
        created_at=int(data["created_at"]),
        expires_at=int(data["expires_at"]),
        session=from_dict(data["session"], RealtimeSessionCreateRequest),
        transcription=bool(data["transcription"]),
    )


def _holder(data: dict[str, Any]) -> Instance:
    engine = data["engine"]
    return Instance(id=str(engine["id"]), address=str(engine["address"]))


def _view(data: dict[str, Any]) -> dict[str, Any]:
    _holder(data)  # every listed record names its holder
    return data


def _response(data: dict[str, Any]) -> HttpResponse:
    return HttpResponse(int(data["status"]), str(data["body"]).encode("latin-1"))


@asynccontextmanager
async def open_shared_state(url: str) -> AsyncIterator[SharedState]:
    """Connects to Redis at ``url`` for the block.

    Raises:
        SharedStoreError: Redis does not answer at ``url``.
    """
    try:
        import coredis  # Lazy: only an engine given --redis needs the client.
    except ImportError:
        raise SharedStoreError(
            "--redis needs the Redis client of the fleet extra: pip install 'cantata[fleet]'."
        ) from None
    entered = False
    try:
        client = coredis.Redis.from_url(
            url, connect_timeout=REDIS_TIMEOUT_S, stream_timeout=REDIS_TIMEOUT_S + _READ_BLOCK_S
        )
        async with client:
            await client.ping()
            entered = True
            yield SharedState(url=url, client=client)
    except Exception as error:
        if entered:
            raise
        raise SharedStoreError(
            f"Redis at {redacted(url)} did not answer ({error}); start it or fix --redis."
        ) from error
