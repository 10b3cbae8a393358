"""The engine's REST endpoints: client secrets and calls, and the state behind them.

:class:`RestState` owns the ephemeral keys the engine minted and the calls it
knows: simulated incoming SIP calls (:meth:`RestState.ring`) and WebRTC calls
(``POST /v1/realtime/calls``). Its handlers are synchronous and do no I/O: the
server reads a request, calls one, and writes the :class:`HttpResponse` back
(or the :class:`HttpError`'s, shaped like the hosted API's errors).

A call goes ``ringing`` -> ``accepted`` -> ``ended``, or ``ringing`` ->
``rejected``; a WebRTC call starts ``accepted``. An accepted call runs its
session once a WebSocket attaches with ``?call_id=``; hanging up cancels that
WebSocket's scope, and the server then closes it with :data:`HANGUP_CLOSE_CODE`.

Expiry uses wall time (``expires_at`` is in epoch seconds) from an injected
clock, so tests move time by hand instead of waiting.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Literal

import attrs
import orjson
import trio

from framework.protocol import ProtocolError, RealtimeSessionCreateRequest, from_dict, to_dict
from framework.protocol import RealtimeTranscriptionSessionCreateRequest as TranscriptionConfig

from ._config import (
    DEFAULT_MODEL,
    MergeContext,
    RequestError,
    default_session,
    default_transcription_session,
    merge_session,
    transcription_response_view,
    transcription_update,
)

Clock = Callable[[], float]
CallState = Literal["ringing", "accepted", "rejected", "ended"]

MIN_EXPIRY_S = 10
MAX_EXPIRY_S = 7200
DEFAULT_EXPIRY_S = 600
SESSION_LIFETIME_S = 3600
MAX_BODY_BYTES = 1024 * 1024
HANGUP_CLOSE_CODE = 1000
"""A hangup ends the call's WebSocket with a normal close: the call is over, not broken."""
HANGUP_CLOSE_REASON = "The call has ended."
# Expired keys are kept this long, to be refused as expired rather than as unknown.
_FORGET_AFTER_S = 3600
MAX_CALLS = 1000
"""Calls the engine keeps; past it, the oldest without a WebSocket attached are forgotten."""
ENDED_CALL_KEPT_S = 600
"""How long an ended or rejected call is kept (late requests then hear why it is over)."""
MAX_CLIENT_SECRETS = 10_000
"""Client secrets the engine keeps; past it, minting one forgets the oldest."""


def mask(key: str) -> str:
    """A key as errors show it: its prefix and last four characters."""
    return f"{key[:3]}...{key[-4:]}" if len(key) > 8 else "***"


class HttpError(RequestError):
    """A request the engine refuses, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message, code=code, param=param, type=type)
        self.status = status

    @classmethod
    def bad_request(cls, error: RequestError) -> HttpError:
        return cls(400, error.message, code=error.code, param=error.param, type=error.type)

    def body(self) -> bytes:
        return error_body(self.message, code=self.code, param=self.param, type=self.type)

    def response(self) -> HttpResponse:
        return HttpResponse(self.status, self.body())


def error_body(
    message: str, *, code: str | None, param: str | None = None, type: str = "invalid_request_error"
) -> bytes:
    """The hosted API's error JSON."""
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


@attrs.frozen
class HttpResponse:
    """What a handler answers; an empty body is sent as such (``200`` with no content)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Sequence[tuple[str, str]] = ()


def _json(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse(status, orjson.dumps(data))


@attrs.define(kw_only=True, eq=False)
class ClientSecret:
    """An ephemeral key and the session configuration it starts sessions with."""

    value: str = attrs.field(repr=mask)
    created_at: int
    expires_at: int
    session: RealtimeSessionCreateRequest
    """The full effective configuration, without the per-session ``id``/``expires_at``."""
    transcription: bool = False
    """It starts transcription sessions (``session.type`` was ``"transcription"``)."""

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


@attrs.define(kw_only=True, eq=False)
class Call:
    """A call the engine knows: a simulated incoming SIP call or a WebRTC call."""

    id: str
    transport: Literal["sip", "webrtc"]
    created_at: int
    state: CallState = "ringing"
    sip_headers: list[tuple[str, str]] = attrs.field(factory=list)
    session: RealtimeSessionCreateRequest | None = None
    """The configuration given at accept (or at creation, for WebRTC)."""
    session_id: str | None = None
    """The id every session attached to this call reports."""
    status_code: int | None = None
    """The SIP status a rejected call was refused with."""
    referred_to: list[str] = attrs.field(factory=list)
    """The targets of the REFERs sent for this call (the simulated provider only records them)."""
    attachment: trio.CancelScope | None = None
    """The scope of the WebSocket attached to the call's session, if one is."""
    ended_at: int | None = None
    """When it was rejected or hung up."""
    webhook_id: str = attrs.field(factory=lambda: f"evt_{secrets.token_hex(12)}")

    def webhook_event(self) -> dict[str, Any]:
        """The ``realtime.call.incoming`` webhook the hosted API would send for this call."""
        return {
            "id": self.webhook_id,
            "object": "event",
            "created_at": self.created_at,
            "type": "realtime.call.incoming",
            "data": {
                "call_id": self.id,
                "sip_headers": [{"name": n, "value": v} for n, v in self.sip_headers],
            },
        }

    def view(self) -> dict[str, Any]:
        """The call as listings show it."""
        return {
            "id": self.id,
            "transport": self.transport,
            "state": self.state,
            "created_at": self.created_at,
            "session_id": self.session_id,
            "attached": self.attachment is not None,
        }


def unknown_call(call_id: str) -> HttpError:
    """The 404 of a call no engine holds."""
    return HttpError(404, f"Call '{call_id}' not found.", code="call_not_found")


def _state_error(call: Call, action: str) -> HttpError:
    state = {
        "ringing": "it is still ringing",
        "accepted": "it was already accepted",
        "rejected": "it was rejected",
        "ended": "it has ended",
    }[call.state]
    hint = {
        ("hang up", "ringing"): "; reject it instead",
        ("attach to", "ringing"): "; accept it first",
    }.get((action, call.state), "")
    return HttpError(
        409, f"Cannot {action} call '{call.id}': {state}{hint}.", code="invalid_call_state"
    )


def _json_object(body: bytes, *, empty_ok: bool = False) -> dict[str, Any]:
    if not body.strip() and empty_ok:
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise HttpError(
            400,
            "We could not parse the JSON body of your request. The API expects a JSON object "
            "as the request body.",
            code=None,
        )
    return data


def _no_unknown(data: Mapping[str, Any], known: Sequence[str], root: str) -> None:
    for key in data:
        if key not in known:
            param = f"{root}.{key}" if root else key
            raise HttpError(
                400, f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param
            )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _type_error(param: str, value: object, expected: str) -> HttpError:
    return HttpError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        code="invalid_type",
        param=param,
    )


def _integer(value: object, param: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(param, value, "an integer")
    if value < low:
        raise HttpError(
            400,
            f"Invalid '{param}': integer below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            code="integer_below_min_value",
            param=param,
        )
    if value > high:
        raise HttpError(
            400,
            f"Invalid '{param}': integer above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            code="integer_above_max_value",
            param=param,
        )
    return value


def _protocol_error(error: ProtocolError, root: str) -> HttpError:
    path = ".".join(p for p in (root, error.path) if p) or None
    if error.reason.startswith("missing required field"):
        return HttpError(
            400,
            f"Missing required parameter: '{path}'.",
            code="missing_required_parameter",
            param=path,
        )
    if error.reason.startswith(("unknown type", "nested deeper than")):
        return HttpError(
            400, f"Invalid value at '{path}': {error.reason}.", code="invalid_value", param=path
        )
    return HttpError(
        400, f"Invalid type for '{path}': {error.reason}.", code="invalid_type", param=path
    )


def _rerooted(error: RequestError, root: str) -> HttpError:
    """The config validator's error with its ``session.`` paths moved under ``root``."""
    if root == "session":
        return HttpError.bad_request(error)
    prefix = f"{root}." if root else ""
    param = error.param
    if param is not None and (param == "session" or param.startswith("session.")):
        param = (prefix + param.removeprefix("session").lstrip(".")).rstrip(".") or None
    message = error.message.replace("'session.", f"'{prefix}")
    return HttpError(400, message, code=error.code, param=param, type=error.type)


# --- SDP ---------------------------------------------------------------------------------

_MEDIA = re.compile(r"^m=(\S+) \S+ (\S+) ?(.*)$")


def _sdp_sections(sdp: str) -> list[list[str]]:
    sections: list[list[str]] = [[]]
    for line in sdp.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections


def check_offer(sdp: str) -> None:
    """Refuses what is plainly not an SDP offer with audio."""
    sections = _sdp_sections(sdp)
    if not sections[0] or sections[0][0] != "v=0":
        raise HttpError(
            400, "Invalid 'sdp': an SDP offer starts with 'v=0'.", code="invalid_offer", param="sdp"
        )
    if not any(s and s[0].startswith("m=audio ") for s in sections[1:]):
        raise HttpError(
            400,
            "Invalid 'sdp': the offer has no audio media section ('m=audio').",
            code="invalid_offer",
            param="sdp",
        )


def sdp_answer(offer: str) -> str:
    """A synthetic answer to an offer: one section per offered media, nothing that carries media.

    There is no real peer behind it (the engine has no WebRTC stack); it is only
    well-formed enough for a client to parse and to read the call id beside it.
    """
    sections = _sdp_sections(offer)[1:]
    mids = []
    fingerprint = ":".join(f"{b:02X}" for b in secrets.token_bytes(32))
    body: list[str] = []
    for index, section in enumerate(sections):
        match = _MEDIA.match(section[0])
        if match is None:
            continue
        media, proto, formats = match.groups()
        mid = next((a[6:] for a in section if a.startswith("a=mid:")), str(index))
        mids.append(mid)
        if media == "audio":
            opus = next(
                (
                    a[9:].split(" ", 1)[0]
                    for a in section
                    if a.startswith("a=rtpmap:") and " opus/" in a.lower()
                ),
                formats.split(" ", 1)[0] or "111",
            )
            body += [f"m=audio 9 {proto} {opus}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}"]
            body += [f"a=rtpmap:{opus} opus/48000/2", "a=sendrecv", "a=rtcp-mux"]
        elif media == "application":
            body += [f"m=application 9 {proto} {formats}".rstrip(), "c=IN IP4 0.0.0.0"]
            body += [f"a=mid:{mid}", "a=sctp-port:5000"]
        else:
            body += [f"m={media} 0 {proto} {formats}".rstrip(), f"a=mid:{mid}"]
            continue
        body += [
            f"a=ice-ufrag:{secrets.token_hex(4)}",
            f"a=ice-pwd:{secrets.token_hex(12)}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:passive",
        ]
    head = [
        "v=0",
        f"o=- {secrets.randbelow(10**15)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
    ]
    if mids:
        head.append("a=group:BUNDLE " + " ".join(mids))
    return "\r\n".join(head + body) + "\r\n"


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts: dict[str, bytes] = {}
    if isinstance(message, EmailMessage) and message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = payload
    return parts


# --- the state ------------------------------------------------------------------------------


@attrs.define(kw_only=True, eq=False)
class RestState:
    """The ephemeral keys and calls of one engine, and the handlers that change them.

    Args:
        model: the model of a session that names none.
        clock: wall time in epoch seconds (``time.time``; tests pass a fake).
    """

    model: str = DEFAULT_MODEL
    clock: Clock = time.time
    client_secrets: dict[str, ClientSecret] = attrs.field(factory=dict, repr=False)
    calls: dict[str, Call] = attrs.field(factory=dict)
    changed: Callable[[Call], None] = attrs.field(default=lambda call: None, repr=False)
    """Told of every call added or changed (the engine's shared registry listens)."""

    def now(self) -> int:
        return int(self.clock())

    # --- authentication ---------------------------------------------------------------

    def authorize(
        self, key: str | None, *, api_key: str | None, ephemeral_ok: bool
    ) -> ClientSecret | None:
        """Checks a presented key; returns the client secret when it is one.

        Keys that look ephemeral (``ek_``) are always checked, even on an engine
        that takes any key: a client using one expects its session configuration.

        Raises:
            HttpError: 401, for a missing or wrong API key and for an unknown or
                expired client secret.
        """
        if key and key.startswith("ek_"):
            secret = self.client_secrets.get(key)
            if secret is None:
                raise HttpError(
                    401, f"Incorrect API key provided: {mask(key)}.", code="invalid_api_key"
                )
            if secret.expired(self.clock()):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secret.expires_at))
                raise HttpError(
                    401,
                    f"The client secret {mask(key)} expired at {stamp}; create a new one with "
                    "POST /v1/realtime/client_secrets.",
                    code="invalid_api_key",
                )
            if ephemeral_ok or api_key is None:
                return secret
            raise HttpError(
                401,
                "A client secret can only open a realtime session; this endpoint needs an API key.",
                code="invalid_api_key",
            )
        # In constant time: how long a wrong key takes must not tell how much of it was right.
        if api_key is not None and not (
            key and hmac.compare_digest(key.encode(), api_key.encode())
        ):
            raise HttpError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                if not key
                else f"Incorrect API key provided: {mask(key)}.",
                code="invalid_api_key",
            )
        return None

    # --- session configuration --------------------------------------------------------

    def session_config(
        self, data: object, *, root: str, base: RealtimeSessionCreateRequest | None = None
    ) -> RealtimeSessionCreateRequest:
        """Validates a realtime session object as the engine's ``session.update`` does.

        Returns:
            The full effective configuration (``base``, or the defaults, with
            ``data`` applied), without per-session fields.
        """

        def at(name: str) -> str:
            return f"{root}.{name}" if root else name

        if not isinstance(data, dict):
            raise _type_error(root or "body", data, "an object")
        kind = data.get("type")
        if kind is None:
            raise HttpError(
                400,
                f"Missing required parameter: '{at('type')}'.",
                code="missing_required_parameter",
                param=at("type"),
            )
        if kind == "transcription":
            raise HttpError(
                400,
                "Transcription sessions are not supported by this version of the local engine.",
                code="unsupported_session_type",
                param=at("type"),
            )
        if kind != "realtime":
            raise HttpError(
                400,
                f"Invalid value: {kind!r}. Supported values are: 'realtime' and 'transcription'.",
                code="invalid_value",
                param=at("type"),
            )
        try:
            update = from_dict(data, RealtimeSessionCreateRequest)
        except ProtocolError as e:
            raise _protocol_error(e, root) from None
        if base is None:
            model = update.model if isinstance(update.model, str) and update.model else self.model
            base = default_session(model, session_id="", expires_at=0)
        try:
            merged = merge_session(base, update, MergeContext())
        except RequestError as e:
            raise _rerooted(e, root) from None
        return attrs.evolve(merged, extra={})

    def transcription_config(
        self, data: dict[str, Any], *, root: str
    ) -> RealtimeSessionCreateRequest:
        """Validates a transcription session object as a transcription session's
        ``session.update`` does; returns its full effective configuration."""
        try:
            update = from_dict(data, TranscriptionConfig)
        except ProtocolError as e:
            raise _protocol_error(e, root) from None
        base = default_transcription_session(self.model, session_id="", expires_at=0)
        try:
            merged = merge_session(base, transcription_update(update), MergeContext())
        except RequestError as e:
            raise _rerooted(e, root) from None
        return attrs.evolve(merged, extra={})

    # --- client secrets -----------------------------------------------------------------

    def create_client_secret(self, body: bytes) -> tuple[ClientSecret, HttpResponse]:
        """``POST /v1/realtime/client_secrets``: mints an ephemeral key; it, and the answer."""
        data = _json_object(body, empty_ok=True)
        _no_unknown(data, ("expires_after", "session"), "")
        seconds = DEFAULT_EXPIRY_S
        expires_after = data.get("expires_after")
        if expires_after is not None:
            if not isinstance(expires_after, dict):
                raise _type_error("expires_after", expires_after, "an object")
            _no_unknown(expires_after, ("anchor", "seconds"), "expires_after")
            anchor = expires_after.get("anchor", "created_at")
            if anchor != "created_at":
                raise HttpError(
                    400,
                    f"Invalid value: {anchor!r}. Supported values are: 'created_at'.",
                    code="invalid_value",
                    param="expires_after.anchor",
                )
            if "seconds" in expires_after:
                seconds = _integer(
                    expires_after["seconds"], "expires_after.seconds", MIN_EXPIRY_S, MAX_EXPIRY_S
                )
        session = data.get("session")
        transcription = isinstance(session, dict) and session.get("type") == "transcription"
        if transcription:
            assert isinstance(session, dict)
            config = self.transcription_config(session, root="session")
        else:
            config = self.session_config(
                {"type": "realtime"} if session is None else session, root="session"
            )
        created = self.now()
        secret = ClientSecret(
            value=f"ek_{secrets.token_hex(16)}",
            created_at=created,
            expires_at=created + seconds,
            session=config,
            transcription=transcription,
        )
        self.remember(secret)
        shown = attrs.evolve(
            config,
            extra={
                "id": f"sess_{secrets.token_hex(8)}",
                "object": "realtime.transcription_session" if transcription else "realtime.session",
                "expires_at": created + SESSION_LIFETIME_S,
            },
        )
        body_session = to_dict(transcription_response_view(shown) if transcription else shown)
        return secret, _json(
            {"value": secret.value, "expires_at": secret.expires_at, "session": body_session}
        )

    def remember(self, secret: ClientSecret) -> None:
        """Keeps a client secret (minted here, or by another engine sharing a Redis)."""
        self._forget_expired(self.now())
        self.client_secrets[secret.value] = secret
        while len(self.client_secrets) > MAX_CLIENT_SECRETS:
            del self.client_secrets[next(iter(self.client_secrets))]

    def _forget_expired(self, now: int) -> None:
        stale = [k for k, s in self.client_secrets.items() if s.expires_at + _FORGET_AFTER_S < now]
        for key in stale:
            del self.client_secrets[key]

    # --- calls --------------------------------------------------------------------------

    def ring(
        self,
        *,
        caller: str = "sip:+14155550100@cantata.invalid",
        callee: str = "sip:agent@cantata.invalid",
        headers: Sequence[tuple[str, str]] = (),
    ) -> Call:
        """Simulates an incoming SIP call; it rings until accepted or rejected."""
        call = Call(
            id=f"rtc_{secrets.token_hex(16)}",
            transport="sip",
            created_at=self.now(),
            sip_headers=[
                ("From", f"<{caller}>;tag={secrets.token_hex(4)}"),
                ("To", f"<{callee}>"),
                ("Call-ID", secrets.token_hex(12)),
                *headers,
            ],
        )
        self._keep(call)
        return call

    def _keep(self, call: Call) -> None:
        """Adds a call, forgetting ended ones past their time and the oldest past the bound."""
        now = self.now()
        for old in list(self.calls.values()):
            if old.ended_at is not None and old.ended_at + ENDED_CALL_KEPT_S < now:
                del self.calls[old.id]
        self.calls[call.id] = call
        self.changed(call)
        excess = len(self.calls) - MAX_CALLS
        if excess > 0:
            # Ended ones first, then the oldest; a call with a WebSocket attached stays.
            idle = [c for c in self.calls.values() if c.attachment is None]
            idle.sort(key=lambda c: (c.ended_at is None, c.created_at))
            for old in idle[:excess]:
                del self.calls[old.id]

    def call(self, call_id: str) -> Call:
        """The call with this id.

        Raises:
            HttpError: 404, no such call.
        """
        found = self.calls.get(call_id)
        if found is None:
            raise unknown_call(call_id)
        return found

    def attachable(self, call_id: str) -> Call:
        """The call a ``?call_id=`` WebSocket may attach to.

        Raises:
            HttpError: 404 for an unknown call; 409 for one that is not
                accepted, or already has a WebSocket attached.
        """
        call = self.call(call_id)
        if call.state != "accepted":
            raise _state_error(call, "attach to")
        if call.attachment is not None:
            raise HttpError(
                409,
                f"Call '{call_id}' already has a WebSocket attached; close it first.",
                code="call_already_attached",
            )
        return call

    def create_call(
        self, content_type: str, body: bytes, secret: ClientSecret | None
    ) -> HttpResponse:
        """``POST /v1/realtime/calls``: a WebRTC call from an SDP offer, live at once."""
        kind = content_type.split(";", 1)[0].strip().lower()
        session: object = None
        if kind == "multipart/form-data":
            parts = _multipart(content_type, body)
            sdp_bytes = parts.get("sdp")
            if "session" in parts:
                try:
                    session = orjson.loads(parts["session"])
                except orjson.JSONDecodeError:
                    raise HttpError(
                        400,
                        "Invalid 'session': the part is not valid JSON.",
                        code="invalid_json",
                        param="session",
                    ) from None
        elif kind in ("application/sdp", "text/plain", ""):
            sdp_bytes = body
        else:
            raise HttpError(
                400,
                f"Unsupported Content-Type {kind!r}: send the SDP offer as application/sdp, or "
                "multipart/form-data with 'sdp' and 'session' parts.",
                code="unsupported_content_type",
            )
        sdp = (sdp_bytes or b"").decode("utf-8", "replace")
        if not sdp.strip():
            raise HttpError(
                400,
                "Missing required parameter: 'sdp'.",
                code="missing_required_parameter",
                param="sdp",
            )
        check_offer(sdp)
        if secret is not None and secret.transcription:
            raise HttpError(
                400,
                "This client secret is for a transcription session; the local engine serves "
                "transcription sessions over WebSocket only.",
                code="unsupported_session_type",
                param="session.type",
            )
        base = secret.session if secret is not None else None
        if session is not None:
            config = self.session_config(session, root="session", base=base)
        else:
            config = base or self.session_config({"type": "realtime"}, root="session")
        call = Call(
            id=f"rtc_{secrets.token_hex(16)}",
            transport="webrtc",
            created_at=self.now(),
            state="accepted",
            session=config,
            session_id=f"sess_{secrets.token_hex(8)}",
        )
        self._keep(call)
        return HttpResponse(
            201,
            sdp_answer(sdp).encode(),
            content_type="application/sdp",
            headers=[("location", f"/v1/realtime/calls/{call.id}")],
        )

    def accept_call(self, call_id: str, body: bytes) -> HttpResponse:
        """``POST .../accept``: answers a ringing call with a session configuration."""
        call = self.call(call_id)
        if call.state != "ringing":
            raise _state_error(call, "accept")
        config = self.session_config(_json_object(body, empty_ok=True), root="")
        call.state = "accepted"
        call.session = config
        call.session_id = f"sess_{secrets.token_hex(8)}"
        self.changed(call)
        return HttpResponse(200)

    def reject_call(self, call_id: str, body: bytes) -> HttpResponse:
        """``POST .../reject``: declines a ringing call with a SIP status (603 by default)."""
        call = self.call(call_id)
        data = _json_object(body, empty_ok=True)
        _no_unknown(data, ("status_code",), "")
        status = 603
        if data.get("status_code") is not None:
            # Final SIP responses that refuse a call: 4xx, 5xx and 6xx.
            status = _integer(data["status_code"], "status_code", 400, 699)
        if call.state != "ringing":
            raise _state_error(call, "reject")
        call.state = "rejected"
        call.ended_at = self.now()
        call.status_code = status
        self.changed(call)
        return HttpResponse(200)

    def act_on_call(self, verb: str, call_id: str, body: bytes) -> HttpResponse:
        """``POST /v1/realtime/calls/{call_id}/{verb}``, for a call this engine holds.

        Raises:
            HttpError: as the verb's handler does; 404 for a verb there is not.
        """
        handlers = {
            "accept": self.accept_call,
            "reject": self.reject_call,
            "hangup": self.hangup_call,
            "refer": self.refer_call,
        }
        handler = handlers.get(verb)
        if handler is None:
            raise HttpError(404, f"Invalid URL (POST .../calls/{{id}}/{verb})", code="not_found")
        return handler(call_id, body)

    def hangup_call(self, call_id: str, body: bytes = b"") -> HttpResponse:
        """``POST .../hangup``: ends an accepted call and closes its WebSocket (no body)."""
        self.hang_up(call_id)
        return HttpResponse(200)

    def hang_up(self, call_id: str) -> Call:
        """Ends an accepted call (from either side) and closes its WebSocket.

        Raises:
            HttpError: 404 for an unknown call; 409 for one not accepted.
        """
        call = self.call(call_id)
        if call.state != "accepted":
            raise _state_error(call, "hang up")
        call.state = "ended"
        call.ended_at = self.now()
        if call.attachment is not None:
            call.attachment.cancel()
        self.changed(call)
        return call

    def refer_call(self, call_id: str, body: bytes) -> HttpResponse:
        """``POST .../refer``: transfers an accepted SIP call (recorded, not carried out)."""
        call = self.call(call_id)
        data = _json_object(body)
        _no_unknown(data, ("target_uri",), "")
        target = data.get("target_uri")
        if target is None:
            raise HttpError(
                400,
                "Missing required parameter: 'target_uri'.",
                code="missing_required_parameter",
                param="target_uri",
            )
        if not isinstance(target, str):
            raise _type_error("target_uri", target, "a string")
        if not target.lower().startswith(("tel:", "sip:", "sips:")) or len(target) < 5:
            raise HttpError(
                400,
                f"Invalid 'target_uri': {target!r} is not a SIP or telephone URI; use values like "
                "'tel:+14155550123' or 'sip:agent@example.com'.",
                code="invalid_value",
                param="target_uri",
            )
        if call.state != "accepted":
            raise _state_error(call, "refer")
        if call.transport != "sip":
            raise HttpError(
                400,
                f"Cannot refer call '{call_id}': only SIP calls can be transferred.",
                code="unsupported_call_type",
            )
        call.referred_to.append(target)
        return HttpResponse(200)
