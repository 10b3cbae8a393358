"""A SIP call through the Realtime Calls API: accepted over REST, run over ``?call_id=``.

The caller's audio never reaches us: the Realtime server terminates the SIP
call, and we control it. On ``realtime.call.incoming`` the endpoint accepts
the call with the agent's configuration (``POST /realtime/calls/{id}/accept``),
then attaches a session to it (``wss://.../realtime?call_id={id}``); a
transfer is ``refer``, hanging up ``hangup``. The caller's number and the
other SIP headers come from the webhook (:func:`call_from_event`).

What the caller has heard (:meth:`SipLeg.wait_played`) comes two ways. A
server that plays the audio itself reports each response's end of playout
(``output_audio_buffer.stopped``, or ``cleared`` when cut off), and a
response whose audio never came over the socket is waited for that way, at
most :data:`PLAYOUT_REPORT_TIMEOUT_S`. A server that sends the audio over the
socket (the local engine) is taken to play it in real time as it arrives,
which :class:`PlayoutClock` times without keeping a byte of it.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

from framework.audio import ClockSink
from framework.runtime import AssistantDelta, PlayoutStopped, ResponseFinished, SessionEvent
from framework.transport import HOSTED_URL, RestClient

from ._call import PhoneCall

_log = logging.getLogger("cantata.telephony")

PLAYOUT_REPORT_TIMEOUT_S = 60.0
"""How long to wait for the server to say a response's audio has played."""
RESPONSES_KEPT = 64
"""Responses whose playout is tracked; past it the oldest are forgotten."""
_CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_NUMBER = re.compile(r"<?(?:sips?|tel):([^@;>]+)")


class PlayoutClock(ClockSink):
    """A :class:`~framework.audio.ClockSink` that keeps no audio: only when each item plays."""

    def write(self, item_id: str, audio: bytes) -> None:
        super().write(item_id, audio)
        self.audio.pop(item_id, None)  # the caller hears it from the server; nothing to keep


class SipLeg:
    """One SIP call's controls and its playout (see the module docstring).

    Args:
        rest: the REST client of the server that holds the call.
        call_id: the call's id.
    """

    def __init__(self, rest: RestClient, call_id: str) -> None:
        self._rest = rest
        self.call_id = call_id
        self.playout = PlayoutClock()
        self._spoken: OrderedDict[str, set[str]] = OrderedDict()  # response -> items said
        self._finished: set[str] = set()
        self._stopped: OrderedDict[str, None] = OrderedDict()
        self._changed = trio.Event()

    def observe(self, event: SessionEvent) -> None:
        if isinstance(event, AssistantDelta):
            _keep(self._spoken, event.response_id, set()).add(event.item_id)
        elif isinstance(event, ResponseFinished):
            self._finished.add(event.response_id)
            self._wake()
        elif isinstance(event, PlayoutStopped):
            _keep(self._stopped, event.response_id, None)
            self._wake()

    async def wait_played(self) -> None:
        await self.playout.drain()
        with trio.move_on_after(PLAYOUT_REPORT_TIMEOUT_S) as waited:
            while self._unreported():
                changed = self._changed
                await changed.wait()
        if waited.cancelled_caught:
            _log.warning(
                "call %s: the server did not say the audio had played within %g s",
                self.call_id,
                PLAYOUT_REPORT_TIMEOUT_S,
            )

    def _unreported(self) -> list[str]:
        """Finished responses that spoke, with no audio on the socket and no playout report."""
        return [
            response
            for response, items in self._spoken.items()
            if response in self._finished
            and response not in self._stopped
            and not any(self.playout.played_ms(item) for item in items)
        ]

    async def hang_up(self) -> None:
        await self._rest.hangup_call(self.call_id)

    async def transfer(self, target: str) -> None:
        await self._rest.refer_call(self.call_id, target)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


def _keep(table: OrderedDict[str, Any], key: str, default: Any) -> Any:
    if key not in table:
        table[key] = default
        while len(table) > RESPONSES_KEPT:
            table.popitem(last=False)
    return table[key]


def with_call_id(url: str | None, call_id: str) -> str:
    """The Realtime URL that attaches to ``call_id`` (``None``: the hosted API's)."""
    parts = urlsplit(url or HOSTED_URL)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "call_id"]
    query.append(("call_id", call_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _number(uri: str) -> str:
    """The user part of a SIP or tel URI in a header (``<sip:+1415...@host>`` -> ``+1415...``)."""
    match = _NUMBER.search(uri)
    return match.group(1) if match else uri


def call_from_event(event: Mapping[str, Any], leg: SipLeg) -> PhoneCall:
    """The call a ``realtime.call.incoming`` event announces.

    Raises:
        ValueError: the event has no ``data.call_id``, or one that is not an id.
    """
    data = event.get("data")
    call_id = data.get("call_id") if isinstance(data, dict) else None
    if not isinstance(call_id, str) or not call_id:
        raise ValueError("the event has no data.call_id")
    if not _CALL_ID.match(call_id):
        # It goes into the calls API's URLs: nothing that could leave its path segment.
        raise ValueError(
            f"data.call_id {call_id[:40]!r} is not a call id (letters, digits, _ and -)"
        )
    headers: dict[str, str] = {}
    raw: Sequence[Any] = data.get("sip_headers") or [] if isinstance(data, dict) else []
    for header in raw if isinstance(raw, list) else []:
        if isinstance(header, dict):
            name, value = header.get("name"), header.get("value")
            if isinstance(name, str) and isinstance(value, str):
                headers.setdefault(name, value)
    found = {k.lower(): v for k, v in headers.items()}
    return PhoneCall(
        id=call_id,
        carrier="sip",
        leg=leg,
        caller=_number(found["from"]) if "from" in found else None,
        callee=_number(found["to"]) if "to" in found else None,
        metadata=headers,
    )
