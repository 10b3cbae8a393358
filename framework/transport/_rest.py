"""The Realtime REST endpoints, as a client: client secrets and calls, on httpx2.

:func:`open_rest_client` owns one ``httpx2.AsyncClient`` (a connection pool,
closed with the block); httpx2 runs on trio natively. Session bodies are the
protocol's own types, written with ``to_dict`` and read with ``from_dict``.
Every failure, an HTTP error or no answer at all, is one :class:`RestError`.

API keys live only in request headers: never in a repr or an error message.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx2
import orjson

from framework.errors import RestError
from framework.protocol import (
    ProtocolError,
    RealtimeSessionCreateRequest,
    RealtimeTranscriptionSessionCreateRequest,
    from_dict,
    to_dict,
)

from ._connection import _auth_headers

HOSTED_BASE_URL = "https://api.openai.com/v1"


def _mask(value: str) -> str:
    return f"{value[:3]}...{value[-4:]}" if len(value) > 8 else "***"


@attrs.frozen(kw_only=True)
class ClientSecret:
    """An ephemeral key and the session it opens (``ClientSecretCreateResponse``).

    ``value`` is the key: pass it as a WebSocket's ``api_key`` (or to a browser);
    reprs show only its ends.
    """

    value: str = attrs.field(repr=_mask)
    expires_at: int
    """When the key stops opening sessions, in epoch seconds."""
    session: RealtimeSessionCreateRequest | RealtimeTranscriptionSessionCreateRequest
    """The full configuration; the server's ``id``/``object``/``expires_at`` are in ``extra``."""


@attrs.frozen(kw_only=True)
class CallAnswer:
    """The answer to a WebRTC call's SDP offer."""

    call_id: str
    """The call's id (from the ``Location`` header), for ``?call_id=`` and the call methods."""
    sdp: str


def resolve_base_url(url: str | None) -> str:
    """The REST base URL, from a base URL or a Realtime WebSocket URL.

    ``None`` is the hosted API. ``ws(s)`` schemes become ``http(s)``, and a
    trailing ``/realtime`` is dropped, so an engine's ``running.url`` works too.
    """
    parts = urlsplit(url or HOSTED_BASE_URL)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https"):
        raise ValueError(f"not an HTTP URL: {url!r} (expected http(s)://, ws(s)://)")
    path = parts.path.rstrip("/").removesuffix("/realtime")
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class RestClient:
    """The client secrets and calls endpoints (from :func:`open_rest_client`)."""

    def __init__(self, http: httpx2.AsyncClient, base_url: str, *, api_key: str | None) -> None:
        self._http = http
        self.base_url = base_url
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"<RestClient {self.base_url}>"

    async def create_client_secret(
        self,
        *,
        session: RealtimeSessionCreateRequest
        | RealtimeTranscriptionSessionCreateRequest
        | None = None,
        expires_after_seconds: int | None = None,
    ) -> ClientSecret:
        """Mints an ephemeral key for a client (``POST /realtime/client_secrets``).

        Args:
            session: the configuration of the sessions the key opens.
            expires_after_seconds: its lifetime, 10 to 7200 s (server default 600).

        Raises:
            RestError: the server refused it, or did not answer.
            ValidationError: ``session`` is not a valid session object.
        """
        body: dict[str, Any] = {}
        if expires_after_seconds is not None:
            body["expires_after"] = {"anchor": "created_at", "seconds": expires_after_seconds}
        if session is not None:
            body["session"] = to_dict(session)
        response = await self._post("/realtime/client_secrets", json=body)
        data = self._json(response)
        try:
            raw = data["session"]
            cls: type[RealtimeSessionCreateRequest | RealtimeTranscriptionSessionCreateRequest] = (
                RealtimeTranscriptionSessionCreateRequest
                if raw.get("type") == "transcription"
                else RealtimeSessionCreateRequest
            )
            return ClientSecret(
                value=str(data["value"]),
                expires_at=int(data["expires_at"]),
                session=from_dict(raw, cls),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ProtocolError) as e:
            raise RestError(
                response.status_code, "invalid_response", f"unexpected client secret: {e}"
            ) from None

    async def create_call(
        self, sdp: str, *, session: RealtimeSessionCreateRequest | None = None
    ) -> CallAnswer:
        """Starts a WebRTC call from an SDP offer (``POST /realtime/calls``).

        With a client secret as the key, the call starts from the secret's session.

        Raises:
            RestError: the server refused the offer, or did not answer.
        """
        headers = {"accept": "application/sdp"}
        if session is None:
            response = await self._post(
                "/realtime/calls",
                content=sdp.encode(),
                headers={**headers, "content-type": "application/sdp"},
            )
        else:
            files = {
                "sdp": (None, sdp.encode(), "application/sdp"),
                "session": (None, orjson.dumps(to_dict(session)), "application/json"),
            }
            response = await self._post("/realtime/calls", files=files, headers=headers)
        location = response.headers.get("location", "")
        call_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        if not call_id:
            raise RestError(
                response.status_code, "invalid_response", "the answer has no Location header"
            )
        return CallAnswer(call_id=call_id, sdp=response.text)

    async def accept_call(
        self, call_id: str, *, session: RealtimeSessionCreateRequest | None = None
    ) -> None:
        """Answers a ringing SIP call with a session configuration.

        Raises:
            RestError: e.g. 404 for an unknown call, 409 for one not ringing.
        """
        body = to_dict(session or RealtimeSessionCreateRequest())
        await self._post(f"/realtime/calls/{call_id}/accept", json=body)

    async def reject_call(self, call_id: str, *, status_code: int = 603) -> None:
        """Declines a ringing SIP call with a SIP status (603 Decline by default)."""
        await self._post(f"/realtime/calls/{call_id}/reject", json={"status_code": status_code})

    async def hangup_call(self, call_id: str) -> None:
        """Ends a SIP or WebRTC call; the WebSockets attached to it are closed."""
        await self._post(f"/realtime/calls/{call_id}/hangup")

    async def refer_call(self, call_id: str, target_uri: str) -> None:
        """Transfers a SIP call to ``tel:...`` or ``sip:...``."""
        await self._post(f"/realtime/calls/{call_id}/refer", json={"target_uri": target_uri})

    # --- plumbing ---------------------------------------------------------------------

    async def _post(self, path: str, **kwargs: Any) -> httpx2.Response:
        url = self.base_url + path
        try:
            response = await self._http.post(url, **kwargs)
        except httpx2.TimeoutException:
            raise RestError(0, "timeout", f"no answer from {self._host} in time") from None
        except httpx2.TransportError as e:
            raise RestError(0, "connection_error", f"cannot reach {self._host}: {e}") from None
        if response.is_success:
            return response
        raise self._error(response)

    @property
    def _host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _error(self, response: httpx2.Response) -> RestError:
        code: str | None = None
        kind: str | None = None
        param: str | None = None
        message = ""
        try:
            error = orjson.loads(response.content).get("error")
            if isinstance(error, Mapping):
                message = str(error.get("message") or "")
                code = error.get("code") if isinstance(error.get("code"), str) else None
                kind = error.get("type") if isinstance(error.get("type"), str) else None
                param = error.get("param") if isinstance(error.get("param"), str) else None
        except (orjson.JSONDecodeError, AttributeError):
            message = response.text[:200]
        message = message or response.reason_phrase or "request failed"
        if self._api_key:
            message = message.replace(self._api_key, "***")
        return RestError(response.status_code, code, message, type=kind, param=param)

    def _json(self, response: httpx2.Response) -> dict[str, Any]:
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise RestError(response.status_code, "invalid_response", "the body is not JSON")
        return data


@asynccontextmanager
async def open_rest_client(
    base_url: str | None = None,
    *,
    api_key: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    request_timeout: float = 30.0,
) -> AsyncIterator[RestClient]:
    """A REST client for the duration of the block.

    Args:
        base_url: the API base URL (``None``: the hosted API,
            ``https://api.openai.com/v1``); the local engine's is
            ``RunningEngine.http_url``.
        api_key: sent as ``Authorization: Bearer`` (``api-key`` for Azure); for
            the hosted API it defaults to ``OPENAI_API_KEY``.
        headers: extra request headers.
        request_timeout: seconds allowed for each request.

    Raises:
        ValueError: no key for the hosted API, or ``base_url`` is not an HTTP(S) URL.
        RestError: from the client's calls, each of which documents its own.
    """
    if base_url is None and api_key is None:
        api_key = os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ValueError(
                "the hosted API needs a key: set OPENAI_API_KEY or pass api_key "
                "(or pass base_url= for the local engine)"
            )
    base = resolve_base_url(base_url)
    sent = {k.decode(): v.decode() for k, v in _auth_headers(base, api_key)}
    sent.update(headers)
    async with httpx2.AsyncClient(headers=sent, timeout=request_timeout) as http:
        yield RestClient(http, base, api_key=api_key)
