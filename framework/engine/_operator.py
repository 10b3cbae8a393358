"""The operator interface of a running engine: simulated calls, DTMF and signed webhooks.

The hosted API's calls come from a SIP trunk and its keypad presses from the
caller; the local engine has neither, so whoever runs it plays them through
HTTP endpoints of their own, under ``/operator`` (the engine's API key, when
it has one, is required; client secrets are not enough):

* ``POST /operator/calls`` rings a simulated incoming SIP call (body, all
  optional: ``caller``, ``callee``, ``sip_headers`` as ``[{name, value}]``).
  The call then behaves as the hosted API's do: accept, reject, refer and
  hang up through ``/v1/realtime/calls/{id}/...``, and ``?call_id=`` attaches
  any client. When the engine has a webhook URL, the ``realtime.call.incoming``
  event is POSTed there, signed as Standard Webhooks specifies (what the
  official SDK's ``webhooks.unwrap`` verifies); the answer says how it went.
* ``GET /operator/calls`` and ``GET /operator/sessions`` list what is live
  (the calls of every engine sharing the engine's Redis, when it has one, each
  with the engine that holds it; the sessions of this process).
* ``POST /operator/sessions/{id}/dtmf`` and ``POST /operator/calls/{id}/dtmf``
  (body ``{"digits": "12#"}``) emit one ``input_audio_buffer.dtmf_event_received``
  per digit into the session (for a call: the session attached to it). The
  hosted API sends that event on SIP calls only; the engine lets an operator
  send it to any session, since that is what tests of a keypad menu need.
* Faults, for testing a client's continuity: ``POST /operator/sessions/{id}/drop``
  drops the session's connection with no closing handshake (the client sees
  the line die, 1006); ``POST /operator/sessions/{id}/expire`` ends the session
  at once as its maximum duration would (``session_expired``, then 1001), before
  the ``expires_at`` it announced; ``POST /operator/refuse`` (body ``{"seconds":
  2.5, "status": 503}``) refuses new WebSocket handshakes for that long.

:class:`OperatorClient` is the client side (``cantata ring``, ``cantata dtmf``
and ``cantata calls`` use it; so can telephony code that needs a call to ring).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import httpx2
import orjson
import trio

from framework.errors import CantataError
from framework.protocol import InputAudioBufferDtmfEventReceivedEvent

from ._rest import HttpError, HttpResponse, _json_object, _no_unknown, _type_error

if TYPE_CHECKING:
    from ._server import Engine
    from ._session import EngineSession

PREFIX = "/operator"
DTMF_DIGITS = "0123456789*#ABCD"
"""The keys of a telephone keypad, as the hosted API reports them."""
MAX_DIGITS = 64
WEBHOOK_TIMEOUT_S = 10.0
"""How long a webhook receiver has to answer (the hosted API's own limit is not documented)."""
_EMIT_TIMEOUT_S = 5.0
_DTMF = re.compile(r"^/(sessions|calls)/([^/]+)/dtmf$")
_FAULT = re.compile(r"^/sessions/([^/]+)/(drop|expire)$")
MAX_REFUSE_S = 3600.0


# --- Standard Webhooks signing -------------------------------------------------------------


def webhook_headers(body: bytes, secret: str, *, webhook_id: str, timestamp: int) -> dict[str, str]:
    """The headers that sign a webhook body, as Standard Webhooks specifies.

    The signature is HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``, base64,
    prefixed ``v1,``. A secret ``whsec_<base64>`` is the base64 of the key;
    any other secret is the key's own bytes (the official SDK reads both so).
    """
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def new_webhook_secret() -> str:
    """A fresh secret in the ``whsec_`` form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@attrs.frozen(kw_only=True)
class WebhookDelivery:
    """How the POST of one webhook went: the receiver's status, or why there was none."""

    url: str
    status: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "error": self.error}


async def post_webhook(
    url: str, event: Mapping[str, Any], secret: str, *, now: float | None = None
) -> WebhookDelivery:
    """POSTs one signed webhook event; never raises for the receiver's failures."""
    body = orjson.dumps(event)
    headers = webhook_headers(
        body,
        secret,
        webhook_id=f"wh_{secrets.token_hex(12)}",
        timestamp=int(time.time() if now is None else now),
    )
    headers["content-type"] = "application/json"
    try:
        async with httpx2.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as http:
            response = await http.post(url, content=body, headers=headers)
    except httpx2.HTTPError as e:
        return WebhookDelivery(url=url, error=f"{type(e).__name__}: {e}")
    return WebhookDelivery(url=url, status=response.status_code)


# --- the endpoints ----------------------------------------------------------------------


async def operate(
    engine: Engine, method: str, path: str, body: bytes, key: str | None
) -> HttpResponse:
    """Serves one request under :data:`PREFIX` (``path`` is the rest of it).

    Raises:
        HttpError: the request is refused (401, 404, 400, 409).
    """
    engine.rest.authorize(key, api_key=engine.api_key, ephemeral_ok=False)
    route = (method, path)
    if route == ("POST", "/calls"):
        return await _ring(engine, body)
    if route == ("GET", "/calls"):
        return _listing({"calls": await engine.registry.calls()})
    if route == ("GET", "/sessions"):
        return _listing({"sessions": [_session_view(s) for s in engine.sessions]})
    if route == ("POST", "/refuse"):
        return _refuse(engine, body)
    fault = _FAULT.match(path)
    if method == "POST" and fault is not None:
        return await _fault(engine, *fault.groups())
    dtmf = _DTMF.match(path)
    if method == "POST" and dtmf is not None:
        kind, target = dtmf.groups()
        return await _dtmf(engine, kind, target, body)
    raise HttpError(404, f"Invalid URL ({method} {PREFIX}{path})", code="not_found")


def _listing(data: object) -> HttpResponse:
    return HttpResponse(200, orjson.dumps(data))


def _session_view(session: EngineSession) -> dict[str, Any]:
    config = session.config
    return {"id": session.id, "model": config.current.model, "transcription": config.transcription}


def _string(data: Mapping[str, Any], name: str, default: str) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or not value:
        raise _type_error(name, value, "a non-empty string")
    return value


async def _ring(engine: Engine, body: bytes) -> HttpResponse:
    data = _json_object(body, empty_ok=True)
    _no_unknown(data, ("caller", "callee", "sip_headers"), "")
    headers: list[tuple[str, str]] = []
    raw_headers = data.get("sip_headers", [])
    if not isinstance(raw_headers, list):
        raise _type_error("sip_headers", raw_headers, "an array")
    for index, header in enumerate(raw_headers):
        at = f"sip_headers[{index}]"
        if not isinstance(header, dict):
            raise _type_error(at, header, "an object")
        _no_unknown(header, ("name", "value"), at)
        headers.append((_string(header, "name", ""), _string(header, "value", "")))
    call = engine.ring(
        caller=_string(data, "caller", "sip:+14155550100@cantata.invalid"),
        callee=_string(data, "callee", "sip:agent@cantata.invalid"),
        headers=headers,
    )
    await engine.registry.flush()
    event = call.webhook_event()
    delivery = None
    if engine.webhook_url is not None:
        assert engine.webhook_secret is not None
        delivery = await post_webhook(
            engine.webhook_url, event, engine.webhook_secret, now=engine.clock()
        )
    answer = {
        "call_id": call.id,
        "webhook": event,
        "delivery": delivery.to_json() if delivery is not None else None,
    }
    return HttpResponse(201, orjson.dumps(answer))


def _digits(body: bytes) -> str:
    data = _json_object(body)
    _no_unknown(data, ("digits",), "")
    digits = data.get("digits")
    if not isinstance(digits, str) or not digits:
        raise _type_error("digits", digits, "a non-empty string")
    digits = digits.upper()
    bad = next((d for d in digits if d not in DTMF_DIGITS), None)
    if bad is not None or len(digits) > MAX_DIGITS:
        raise HttpError(
            400,
            f"Invalid 'digits': {bad!r} is not a keypad key; use 0-9, *, # and A-D."
            if bad is not None
            else f"Invalid 'digits': at most {MAX_DIGITS} at a time.",
            code="invalid_value",
            param="digits",
        )
    return digits


async def _dtmf(engine: Engine, kind: str, target: str, body: bytes) -> HttpResponse:
    if kind == "calls":  # held here, or by another engine sharing the Redis
        return await engine.registry.act_anywhere("dtmf", target, body)
    return await _press(engine, target, _digits(body))


async def dtmf_on_call(engine: Engine, call_id: str, body: bytes) -> HttpResponse:
    """Presses keys in the session attached to a call held here (forwarded here, too)."""
    digits = _digits(body)
    call = engine.rest.call(call_id)
    if call.attachment is None or call.session_id is None:
        raise HttpError(
            409,
            f"Call '{call_id}' has no session attached; attach one with ?call_id= first.",
            code="call_not_attached",
        )
    return await _press(engine, call.session_id, digits)


async def _press(engine: Engine, session_id: str, digits: str) -> HttpResponse:
    session = _live_session(engine, session_id)
    sent = 0
    with trio.move_on_after(_EMIT_TIMEOUT_S):
        try:
            for digit in digits:
                await session.emit(
                    InputAudioBufferDtmfEventReceivedEvent(
                        event=digit, received_at=int(engine.clock())
                    )
                )
                sent += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the session ended meanwhile
    if sent < len(digits):
        raise HttpError(
            409,
            f"Session '{session_id}' took {sent} of {len(digits)} digits before it ended "
            "or stopped reading.",
            code="session_not_reading",
        )
    return _listing({"session_id": session_id, "sent": sent})


def _live_session(engine: Engine, session_id: str) -> EngineSession:
    session = next((s for s in engine.sessions if s.id == session_id), None)
    if session is None:
        raise HttpError(404, f"Session '{session_id}' is not live.", code="session_not_found")
    return session


async def _fault(engine: Engine, session_id: str, fault: str) -> HttpResponse:
    session = _live_session(engine, session_id)
    if fault == "drop":
        await session.drop()
    else:
        session.expire_now()
    return _listing({"session_id": session_id, fault: True})


def _refuse(engine: Engine, body: bytes) -> HttpResponse:
    data = _json_object(body)
    _no_unknown(data, ("seconds", "status"), "")
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise _type_error("seconds", seconds, "a number")
    if not 0 <= seconds <= MAX_REFUSE_S:
        raise HttpError(
            400,
            f"Invalid 'seconds': {seconds} is not between 0 and {MAX_REFUSE_S:g}.",
            code="invalid_value",
            param="seconds",
        )
    status = data.get("status", 503)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise HttpError(
            400,
            f"Invalid 'status': {status!r} is not an HTTP error status (400-599).",
            code="invalid_value",
            param="status",
        )
    engine.refuse(float(seconds), status=status)
    return _listing({"refusing_s": seconds, "status": status})


# --- the client ---------------------------------------------------------------------------


class OperatorError(CantataError):
    """The engine refused an operator request (its message says why)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OperatorClient:
    """The operator endpoints of an engine, from anywhere that reaches it over HTTP.

    Args:
        http: the client to send with (its lifetime is the caller's).
        base_url: the engine's base URL, ``http://host:port`` (no path).
        api_key: the engine's API key, when it has one.
    """

    def __init__(self, http: httpx2.AsyncClient, base_url: str, *, api_key: str | None) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + PREFIX
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    async def _call(self, method: str, path: str, body: object = None) -> Any:
        response = await self._http.request(
            method,
            self._base + path,
            headers=self._headers,
            content=None if body is None else orjson.dumps(body),
        )
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            raise OperatorError(response.status_code, str(error.get("message", response.text)))
        return data

    async def ring(
        self,
        *,
        caller: str | None = None,
        callee: str | None = None,
        sip_headers: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """Rings a simulated incoming SIP call; returns its id, the webhook event
        and how its delivery went."""
        body: dict[str, Any] = {"sip_headers": [{"name": n, "value": v} for n, v in sip_headers]}
        if caller is not None:
            body["caller"] = caller
        if callee is not None:
            body["callee"] = callee
        return await self._call("POST", "/calls", body)  # type: ignore[no-any-return]

    async def calls(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/calls"))["calls"]  # type: ignore[no-any-return]

    async def sessions(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "/sessions"))["sessions"]  # type: ignore[no-any-return]

    async def drop(self, session_id: str) -> None:
        """Drops a live session's connection with no closing handshake."""
        await self._call("POST", f"/sessions/{session_id}/drop", {})

    async def expire(self, session_id: str) -> None:
        """Ends a live session now, as its maximum duration would."""
        await self._call("POST", f"/sessions/{session_id}/expire", {})

    async def refuse(self, seconds: float, *, status: int = 503) -> None:
        """Refuses new WebSocket handshakes with ``status`` for ``seconds`` (0: stop)."""
        await self._call("POST", "/refuse", {"seconds": seconds, "status": status})

    async def dtmf(self, target: str, digits: str) -> int:
        """Presses keys in a session (``sess_...``) or the session of a call (``rtc_...``)."""
        kind = "calls" if target.startswith("rtc_") else "sessions"
        answer = await self._call("POST", f"/{kind}/{target}/dtmf", {"digits": digits})
        return int(answer["sent"])
