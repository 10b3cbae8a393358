"""OAuth for HTTP servers: the SDK's client auth, with a token store the user supplies.

An MCP server that answers ``401`` with ``WWW-Authenticate`` (the MCP
authorization spec, which builds on OAuth 2.1) is handled by the SDK's
``OAuthClientProvider``: it discovers the authorization server, registers
the client, runs the authorization-code flow with PKCE and refreshes tokens.
What it needs from the application is here: where the user is sent to log
in (:attr:`McpOAuth.redirect`), how the code comes back
(:attr:`McpOAuth.callback`), and where tokens are kept between runs
(a :class:`TokenStore`).

A token store holds two JSON objects per server, the tokens and the
registered client, so a file, a keyring or a database can hold them without
knowing the SDK's types; those are converted here.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

import attrs
import orjson
import trio
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

TokenKind: TypeAlias = Literal["tokens", "client"]
"""What a :class:`TokenStore` keeps for a server: its tokens, or the client it registered."""


class TokenStore(Protocol):
    """Where OAuth tokens and client registrations live between sessions.

    ``server`` is the MCP server's URL; values are JSON objects as the OAuth
    specs spell them (``access_token``, ``refresh_token``, ``client_id``, ...).
    """

    async def load(self, server: str, kind: TokenKind) -> Mapping[str, Any] | None: ...

    async def save(self, server: str, kind: TokenKind, value: Mapping[str, Any]) -> None: ...


@attrs.define
class MemoryTokenStore:
    """Tokens in memory: they last as long as the process (the default)."""

    values: dict[tuple[str, TokenKind], Mapping[str, Any]] = attrs.Factory(dict)

    async def load(self, server: str, kind: TokenKind) -> Mapping[str, Any] | None:
        return self.values.get((server, kind))

    async def save(self, server: str, kind: TokenKind, value: Mapping[str, Any]) -> None:
        self.values[(server, kind)] = dict(value)


@attrs.define
class FileTokenStore:
    """Tokens in a JSON file only its owner can read (``0600``), rewritten on each change.

    Args:
        path: The file; created on the first save.
    """

    path: Path = attrs.field(converter=Path)

    async def load(self, server: str, kind: TokenKind) -> Mapping[str, Any] | None:
        value = (await self._read()).get(server, {}).get(kind)
        return value if isinstance(value, dict) else None

    async def save(self, server: str, kind: TokenKind, value: Mapping[str, Any]) -> None:
        document = await self._read()
        document.setdefault(server, {})[kind] = dict(value)
        await trio.to_thread.run_sync(
            self._write, orjson.dumps(document, option=orjson.OPT_INDENT_2)
        )

    async def _read(self) -> dict[str, Any]:
        try:
            text = await trio.Path(self.path).read_bytes()
        except FileNotFoundError:
            return {}
        document = orjson.loads(text)
        return document if isinstance(document, dict) else {}

    def _write(self, data: bytes) -> None:
        partial = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(partial, self.path)


Redirect: TypeAlias = Callable[[str], Awaitable[None]]
"""Sends the user to the authorization URL (opens a browser, prints it, ...)."""
Callback: TypeAlias = Callable[[], Awaitable[tuple[str, str | None]]]
"""Waits for the authorization server's redirect: ``(code, state)``."""


@attrs.frozen(kw_only=True)
class McpOAuth:
    """OAuth settings for one HTTP server (``McpServer.http(url, auth=McpOAuth(...))``).

    Attributes:
        redirect: Sends the user to log in; called with the authorization URL.
        callback: Returns the code (and state) the authorization server sent
            to ``redirect_uri``.
        redirect_uri: Where the authorization server sends the user back.
        store: Where tokens are kept; in memory by default.
        scopes: The scopes to ask for (space-separated); the server's default if ``None``.
        client_name: How the client registers itself.
    """

    redirect: Redirect
    callback: Callback
    redirect_uri: str = "http://127.0.0.1:33418/callback"
    store: TokenStore = attrs.Factory(MemoryTokenStore)
    scopes: str | None = None
    client_name: str = "Cantata"

    def provider(self, server_url: str) -> OAuthClientProvider:
        """The SDK's ``httpx`` auth for one connection to ``server_url``."""
        metadata = OAuthClientMetadata.model_validate(
            {
                "redirect_uris": [self.redirect_uri],
                "client_name": self.client_name,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "scope": self.scopes,
            }
        )
        callback = self.callback

        async def answered() -> AuthorizationCodeResult:
            code, state = await callback()
            return AuthorizationCodeResult(code=code, state=state)

        return OAuthClientProvider(
            server_url,
            metadata,
            _Storage(self.store, server_url),
            redirect_handler=self.redirect,
            callback_handler=answered,
        )


@attrs.frozen
class _Storage:
    """The SDK's ``TokenStorage`` over a :class:`TokenStore` of plain JSON."""

    store: TokenStore
    server: str

    async def get_tokens(self) -> OAuthToken | None:
        value = await self.store.load(self.server, "tokens")
        return OAuthToken.model_validate(value) if value is not None else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        await self.store.save(self.server, "tokens", tokens.model_dump(mode="json"))

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        value = await self.store.load(self.server, "client")
        return OAuthClientInformationFull.model_validate(value) if value is not None else None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await self.store.save(
            self.server, "client", client_info.model_dump(mode="json", exclude_none=True)
        )
