"""What every endpoint that takes calls checks first: a Twilio form's signature, a SIP webhook's.

The phone server (:mod:`._server`) and the fleet's ingress both answer
Twilio's voice webhook and the Realtime API's ``realtime.call.incoming``;
these are the checks they share, each refusing with a clear
:class:`~._asgi.HttpRefusal` (403 for a request that is not signed as it
must be, 400 for one that is not what it claims).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson

from framework.engine import Scope

from ._asgi import HttpRefusal, header
from ._twilio import signature_ok
from ._webhooks import WebhookRefused, verify_webhook

_log = logging.getLogger("cantata.telephony")


def url_of(scope: Scope, public_url: str | None, path: str, *, websocket: bool = False) -> str:
    """The URL Twilio uses for ``path``, as it signs and dials it.

    Args:
        scope: the request's ASGI scope (its ``Host`` when there is no public URL).
        public_url: the base URL the endpoint is reached at, if known.
        path: the path on it.
        websocket: ``ws``/``wss`` rather than ``http``/``https``.
    """
    if public_url is not None:
        base = public_url.rstrip("/")
    else:
        host = header(scope, b"host") or "127.0.0.1"
        base = f"{scope.get('scheme', 'http')}://{host}"
    if websocket:
        base = "ws" + base.removeprefix("http")
    return base + path


def twilio_form(
    scope: Scope, body: bytes, *, auth_token: str | None, public_url: str | None
) -> dict[str, str]:
    """A Twilio request's form, once its ``X-Twilio-Signature`` checks out.

    Raises:
        HttpRefusal: 403, no auth token is configured or the signature does not match.
    """
    if not auth_token:
        raise HttpRefusal(403, "Twilio calls are not served: set TWILIO_AUTH_TOKEN")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    query = scope.get("query_string", b"").decode("latin-1")
    url = url_of(scope, public_url, scope["path"]) + (f"?{query}" if query else "")
    signature = header(scope, b"x-twilio-signature") or ""
    if not signature_ok(auth_token, url, form, signature):
        raise HttpRefusal(403, "the X-Twilio-Signature does not match this request")
    return form


def sip_webhook(scope: Scope, body: bytes, *, secret: str | None) -> tuple[str, dict[str, Any]]:
    """A verified webhook's ``webhook-id`` and event (any type: the caller picks its own).

    Raises:
        HttpRefusal: 403, no secret is configured; 400, the delivery does not
            verify (the reason, never the secret) or its body is not a JSON object.
    """
    if not secret:
        raise HttpRefusal(403, "SIP calls are not served: set OPENAI_WEBHOOK_SECRET")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        webhook_id = verify_webhook(body, headers, secret)
    except WebhookRefused as e:
        _log.warning("refused a webhook: %s", e)
        raise HttpRefusal(400, f"webhook refused: {e}") from None
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HttpRefusal(400, "the webhook body is not JSON") from None
    if not isinstance(event, dict):
        raise HttpRefusal(400, "the webhook body is not a JSON object")
    return webhook_id, event
