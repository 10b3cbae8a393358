"""Webhooks in: Standard Webhooks signatures checked, and each delivery handled once.

The Realtime API announces an incoming SIP call by POSTing a
``realtime.call.incoming`` event, signed as Standard Webhooks specifies:
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers, the
signature an HMAC-SHA256 over ``"{id}.{timestamp}.{body}"`` with the
endpoint's secret (``whsec_`` and base64, or the raw key). :func:`verify_webhook`
accepts a delivery as the official SDK's ``webhooks.unwrap`` does: any of the
space-separated ``v1,`` signatures may match, and the timestamp must be within
five minutes of now, either way (a replay of an old delivery is refused).

A sender retries a delivery it thinks failed, with the same ``webhook-id``;
:class:`RecentDeliveries` remembers the ids of the last hour (at most
:data:`DELIVERIES_KEPT` of them), so that a call is answered once.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping

from framework.engine import webhook_headers
from framework.errors import CantataError

TOLERANCE_S = 300
"""How far a delivery's timestamp may be from now, as the official SDK allows."""
DELIVERIES_KEPT = 10_000
"""Webhook ids remembered at most; past it, the oldest are forgotten."""
DELIVERY_MEMORY_S = 3600.0
"""How long a webhook id is remembered (retries come within minutes)."""


class WebhookRefused(CantataError, ValueError):
    """A webhook that does not verify; the message says why (never the secret)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookRefused(f"the {name} header is missing")


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> str:
    """Checks a delivery's signature and age; returns its ``webhook-id``.

    Args:
        body: the request body, exactly as received.
        headers: the request headers (names in any case).
        secret: the endpoint's signing secret (``whsec_...``).
        tolerance_s: how old (or how far ahead) the timestamp may be.
        now: the time to judge it by, in epoch seconds (default: the clock).

    Raises:
        WebhookRefused: a header missing, a timestamp out of range, or no
            signature that matches.
    """
    webhook_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    presented = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookRefused(f"webhook-timestamp {stamp[:32]!r} is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookRefused(
            f"webhook-timestamp is {int(current - timestamp)} s from now "
            f"(at most {tolerance_s} s either way)"
        )
    expected = webhook_headers(body, secret, webhook_id=webhook_id, timestamp=timestamp)
    signature = expected["webhook-signature"].removeprefix("v1,")
    offered = [part.removeprefix("v1,") for part in presented.split()]
    if not any(hmac.compare_digest(signature, candidate) for candidate in offered):
        raise WebhookRefused("no webhook-signature matches the body and the secret")
    return webhook_id


class RecentDeliveries:
    """The webhook ids handled lately (see the module docstring).

    Args:
        keep: ids remembered at most.
        memory_s: seconds an id is remembered.
    """

    def __init__(self, *, keep: int = DELIVERIES_KEPT, memory_s: float = DELIVERY_MEMORY_S) -> None:
        self._keep = keep
        self._memory_s = memory_s
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, webhook_id: str, *, now: float | None = None) -> bool:
        """Records ``webhook_id``; ``False`` when it was seen already (a duplicate)."""
        current = time.monotonic() if now is None else now
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if at > current - self._memory_s and len(self._seen) < self._keep:
                break
            del self._seen[oldest]
        if webhook_id in self._seen:
            return False
        self._seen[webhook_id] = current
        return True

    def forget(self, webhook_id: str) -> None:
        """Forgets an id, so that a retry of a delivery that failed is handled."""
        self._seen.pop(webhook_id, None)
