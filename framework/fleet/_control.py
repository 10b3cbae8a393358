"""Control from outside: orders for the worker that owns a call, through ``P:control:CALL``.

A web app where a person approves a payment, or a supervisor who hangs up
or transfers a call, does not know which worker holds it. It calls
:func:`send_control`, which adds a :class:`ControlMessage` to the call's
control stream, atomically and only while some worker owns the call (else
:class:`CallNotOwned`, never silence). The owner's :class:`ControlReader`
reads the streams of every call it holds with one blocking ``XREAD``, carries
each order out in a task of its own (one call's slow order never holds up
another's), and deletes it once handled, so that a worker taking the call
over later does not carry it out twice. A malformed entry is logged and
deleted; it never ends the worker.

What each kind does (:data:`ORDERS`): ``approve`` / ``deny`` the function
call waiting for approval whose call id is ``target`` (``text``: the
reason); ``hangup``; ``transfer`` to ``target`` (``tel:`` or ``sip:``);
``say`` ``text`` (the agent says exactly that, queued behind a reply in
flight).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

import trio

from framework.errors import CantataError
from framework.protocol import RealtimeResponseCreateParams
from framework.telephony import PhoneCall

from ._schema import DEFAULT_PREFIX, ControlMessage, FleetKeys, dump, load

_log = logging.getLogger("cantata.fleet")

CONTROL_KEPT = 100
"""Orders kept per call unread; past it the oldest go (a stream is trimmed on add)."""
READ_BLOCK_S = 0.5
"""How long one read waits for orders; a call taken meanwhile is read from the next."""
READ_COUNT = 32
"""Orders read per stream at once."""

SAY = "Say exactly these words, and nothing else: {text}"
"""The instructions of the response a ``say`` order asks for."""

_SEND = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'json', ARGV[2])
"""
# KEYS: calls, control; ARGV: call id, the message, the bound.


class CallNotOwned(CantataError):
    """No worker holds the call a control message was for (it ended, or never was)."""


async def send_control(
    redis: Any, call_id: str, message: ControlMessage, *, prefix: str = DEFAULT_PREFIX
) -> str:
    """Sends ``message`` to the worker that owns ``call_id``; returns the entry's id.

    Args:
        redis: a ``coredis`` client of the fleet's Redis.
        call_id: the call (its ``rtc_...`` id).
        message: the order.
        prefix: the fleet's key prefix.

    Raises:
        CallNotOwned: no worker holds the call.
    """
    keys = FleetKeys(prefix)
    added = await redis.eval(
        _SEND, [keys.calls, keys.control(call_id)], [call_id, dump(message), CONTROL_KEPT]
    )
    if added is None:
        raise CallNotOwned(
            f"no worker holds call {call_id!r}: it has ended or was never taken; "
            "check the call id (cantata fleet lists the live calls)"
        )
    return added.decode() if isinstance(added, bytes) else str(added)


# --- the owner's side ----------------------------------------------------------------------


async def _approve(call: PhoneCall, order: ControlMessage) -> None:
    _session(call).approve(order.target)


async def _deny(call: PhoneCall, order: ControlMessage) -> None:
    _session(call).reject(order.target, order.text or None)


async def _hang_up(call: PhoneCall, order: ControlMessage) -> None:
    await call.hang_up(after_playout=False)


async def _transfer(call: PhoneCall, order: ControlMessage) -> None:
    await call.transfer(order.target)


async def _say(call: PhoneCall, order: ControlMessage) -> None:
    if not order.text:
        raise ValueError("a say order needs text")
    await _session(call).create_response(
        RealtimeResponseCreateParams(instructions=SAY.format(text=order.text))
    )


def _session(call: PhoneCall) -> Any:
    if call.session is None:
        raise RuntimeError("the call's session is not up")
    return call.session


Order: TypeAlias = Callable[[PhoneCall, ControlMessage], Awaitable[None]]
ORDERS: Mapping[str, Order] = {
    "approve": _approve,
    "deny": _deny,
    "hangup": _hang_up,
    "transfer": _transfer,
    "say": _say,
}
"""What each kind of order does to the call."""


class ControlReader:
    """Reads the control streams of the calls a worker holds and carries the orders out.

    Args:
        redis: the worker's ``coredis`` client.
        keys: the fleet's keys.
        calls: the worker's live calls by id (read at each read, so that
            calls taken and ended are followed; :meth:`follow` wakes a reader
            that holds no call).
    """

    def __init__(self, redis: Any, keys: FleetKeys, calls: Mapping[str, PhoneCall]) -> None:
        self._redis = redis
        self._keys = keys
        self._calls = calls
        self.handled = 0
        self.refused = 0
        self._taken = trio.Event()

    def follow(self) -> None:
        """Says a call was taken: its stream is read from the next read on."""
        self._taken.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reads until cancelled; each order runs in a task of this one's nursery."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._taken = trio.Event()
                streams = {self._keys.control(c): "0-0" for c in list(self._calls)}
                if not streams:
                    await self._taken.wait()  # no call held: nothing to read yet
                    continue
                read = await self._redis.xread(
                    streams, count=READ_COUNT, block=round(READ_BLOCK_S * 1000)
                )
                for stream, entries in (read or {}).items():
                    call_id = _text(stream).removeprefix(self._keys.control(""))
                    for entry in entries:
                        await self._redis.xdel(stream, [entry.identifier])
                        nursery.start_soon(self._carry_out, call_id, entry.field_values)

    async def _carry_out(self, call_id: str, fields: Mapping[Any, Any]) -> None:
        raw = next((v for k, v in fields.items() if _text(k) == "json"), None)
        try:
            if raw is None:
                raise ValueError("the entry has no json field")
            order = load(ControlMessage, raw)
        except ValueError as e:
            self.refused += 1
            _log.warning("call %s: skipped a malformed control entry: %s", call_id, e)
            return
        call = self._calls.get(call_id)
        if call is None:
            self.refused += 1
            _log.warning("call %s: a %s order came after the call ended", call_id, order.kind)
            return
        try:
            await ORDERS[order.kind](call, order)
        except (KeyError, ValueError, RuntimeError, CantataError) as e:
            self.refused += 1
            detail = e.args[0] if isinstance(e, KeyError) and e.args else e
            _log.warning("call %s: the %s order failed: %s", call_id, order.kind, detail)
            return
        self.handled += 1
        _log.info("call %s: carried out a %s order", call_id, order.kind)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
