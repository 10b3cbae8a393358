"""A phone call as the agent sees it: who called, the keypad, hanging up, transfers.

A :class:`PhoneCall` is made by the carrier's endpoint (Twilio Media Streams,
or a SIP call through the Realtime Calls API) and lives as long as the call.
It holds what is known of the call (the caller's number, the called one, the
carrier's metadata), and the call's controls, which the carrier's
:class:`CallLeg` carries out. Inside the call's session (its tools, its
hooks, its instructions method) it is :func:`current_phone_call`.

The call watches its session's events (:meth:`PhoneCall.observe`): keypad
presses (:class:`~framework.runtime.DtmfReceived`, from either carrier) go to
a buffer that :meth:`PhoneCall.collect_digits` reads, at most
:data:`KEYS_KEPT` keys ahead; and the responses that are saying something,
so that :meth:`PhoneCall.wait_played` knows when the last words have been
said *and* heard, which is when :meth:`PhoneCall.hang_up` and
:meth:`PhoneCall.transfer` act.
"""

from __future__ import annotations

import contextvars
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal, Protocol

import trio

from framework.runtime import AssistantDelta, DtmfReceived, ResponseFinished, SessionEvent

if TYPE_CHECKING:
    from framework.runtime import Session

_log = logging.getLogger("cantata.telephony")

KEYS_KEPT = 64
"""Keypad presses kept until read (type-ahead); past it the oldest go."""
OPEN_RESPONSES = 64
"""Responses tracked as speaking at once; past it the oldest are taken as done."""
DTMF_KEYS = frozenset("0123456789*#ABCD")
"""The keys of a telephone keypad."""

Carrier = Literal["twilio", "sip"]


class CallLeg(Protocol):
    """What a carrier does for a call: playout, hang-up and transfer."""

    async def wait_played(self) -> None:
        """Returns once the audio sent so far has been heard (or cannot be any more)."""
        ...

    async def hang_up(self) -> None:
        """Ends the call."""
        ...

    async def transfer(self, target: str) -> None:
        """Hands the caller to ``target`` (``tel:+1...`` or ``sip:...``)."""
        ...

    def observe(self, event: SessionEvent) -> None:
        """Sees the session's events (it must not block)."""
        ...


class PhoneCall:
    """One phone call (see the module docstring).

    Attributes:
        id: the carrier's id of the call (Twilio's ``CallSid``, or the
            Realtime Calls API's ``call_id``).
        carrier: ``"twilio"`` or ``"sip"``.
        caller: the number (or SIP URI) that called, when known.
        callee: the number (or SIP URI) that was called, when known.
        metadata: what the carrier said about the call: Twilio's webhook
            parameters and the stream's custom parameters, or the SIP headers.
        session: the call's session, once it runs.
        answered: set once the session is up (``session`` is there).
        ended: set when the call is over (hung up, transferred, or gone).
        end_reason: why it ended.
        transferred_to: where the caller was handed, if anywhere.
    """

    def __init__(
        self,
        *,
        id: str,
        carrier: Carrier,
        leg: CallLeg,
        caller: str | None = None,
        callee: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.id = id
        self.carrier: Carrier = carrier
        self.caller = caller
        self.callee = callee
        self.metadata: Mapping[str, str] = dict(metadata or {})
        self.leg = leg
        self.session: Session | None = None
        self.answered = trio.Event()
        self.ended = trio.Event()
        self.end_reason = ""
        self.transferred_to: str | None = None
        self._keys: deque[str] = deque(maxlen=KEYS_KEPT)
        self._speaking: OrderedDict[str, None] = OrderedDict()
        self._changed = trio.Event()

    def __repr__(self) -> str:
        return f"<PhoneCall {self.carrier} {self.id} from {self.caller or '?'}>"

    # --- events --------------------------------------------------------------------------

    def observe(self, event: SessionEvent) -> None:
        """The session's observer: keys pressed, responses speaking and done."""
        if isinstance(event, DtmfReceived):
            self.press(event.digit)
        elif isinstance(event, AssistantDelta):
            if event.response_id not in self._speaking:
                self._speaking[event.response_id] = None
                if len(self._speaking) > OPEN_RESPONSES:
                    self._speaking.popitem(last=False)
        elif isinstance(event, ResponseFinished) and event.response_id in self._speaking:
            del self._speaking[event.response_id]
            self._wake()
        self.leg.observe(event)

    def press(self, digit: str) -> None:
        """A keypad key was pressed (one that is not a key is ignored)."""
        if digit in DTMF_KEYS:
            self._keys.append(digit)
            self._wake()
        else:
            _log.warning(
                "call %s: ignored a keypad press of %r, which is not a key", self.id, digit
            )

    def end(self, reason: str) -> None:
        """Marks the call over (the first reason given stays)."""
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()
            self._wake()

    # --- the keypad ------------------------------------------------------------------------

    async def collect_digits(
        self, count: int | None = None, *, end: str = "#", key_timeout: float = 5.0
    ) -> str:
        """Collects keypad digits: ``count`` of them, or up to a key of ``end``.

        Keys pressed before the call (type-ahead) count first. It returns
        early with what it has when no key comes for ``key_timeout`` seconds, or
        when the call ends. The ``end`` key itself is not returned.

        Args:
            count: how many digits to collect (``None``: until an ``end`` key).
            end: keys that finish the input (``""``: none).
            key_timeout: seconds to wait for each key.
        """
        digits = ""
        while True:
            while self._keys:
                key = self._keys.popleft()
                if key in end:
                    return digits
                digits += key
                if count is not None and len(digits) >= count:
                    return digits
            if self.ended.is_set():
                return digits
            changed = self._changed
            with trio.move_on_after(key_timeout) as waited:
                await changed.wait()
            if waited.cancelled_caught:
                return digits

    def clear_digits(self) -> None:
        """Forgets keys pressed and not read yet."""
        self._keys.clear()

    # --- playout, hang-up, transfer --------------------------------------------------------

    async def wait_played(self) -> None:
        """Returns once every response that spoke has ended and the caller has heard it.

        Returns at once when the call is over.
        """
        while self._speaking and not self.ended.is_set():
            changed = self._changed
            await changed.wait()
        if self.ended.is_set():
            return
        async with trio.open_nursery() as nursery:

            async def until_ended() -> None:
                await self.ended.wait()
                nursery.cancel_scope.cancel()  # nothing more will be heard

            nursery.start_soon(until_ended)
            await self.leg.wait_played()
            nursery.cancel_scope.cancel()

    async def hang_up(self, *, after_playout: bool = True) -> None:
        """Ends the call, by default once the caller has heard everything said."""
        if after_playout:
            await self.wait_played()
        if not self.ended.is_set():
            await self.leg.hang_up()
            self.end("hung up by the agent")

    async def transfer(self, target: str, *, after_playout: bool = True) -> None:
        """Hands the caller to ``target`` (``tel:+14155550123`` or ``sip:agent@example.com``).

        Raises:
            ValueError: ``target`` is not a ``tel:`` or ``sip:`` URI.
        """
        if not target.lower().startswith(("tel:", "sip:", "sips:")):
            raise ValueError(f"cannot transfer to {target!r}: use tel:+1... or sip:user@host")
        if after_playout:
            await self.wait_played()
        if not self.ended.is_set():
            self.transferred_to = target
            await self.leg.transfer(target)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


_CURRENT: Final = contextvars.ContextVar[PhoneCall | None]("cantata_phone_call", default=None)


def current_phone_call() -> PhoneCall | None:
    """The call whose session the current task belongs to, or ``None`` outside one.

    Every task of a call's session (its tools, hooks and instructions)
    inherits it from the task that opened the session.
    """
    return _CURRENT.get()


def enter_phone_call(call: PhoneCall) -> contextvars.Token[PhoneCall | None]:
    """Makes ``call`` the current call of this task and the tasks it starts."""
    return _CURRENT.set(call)


def leave_phone_call(token: contextvars.Token[PhoneCall | None]) -> None:
    """Restores the call that was current before :func:`enter_phone_call`."""
    _CURRENT.reset(token)
