"""OAuth for streamable HTTP: the SDK's client auth against a real protected server.

The server is the ``mcp`` SDK's own: an ``MCPServer`` with its authorization
server routes (metadata, dynamic registration, authorize, token) and bearer
auth on ``/mcp``, on a loopback port, with a small in-memory provider. The
"user" who logs in is an HTTP client that follows the authorization URL and
reads the code from the redirect. Real sockets: bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import secrets
import socket
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx2
import pytest
import trio
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp_types import ToolAnnotations

from plugins.mcp import FileTokenStore, McpOAuth, McpServer, McpServerError

from .mcp_servers import opened, run_tool, serve_asgi


@attrs.define
class Provider:
    """An authorization server that says yes to everyone, in memory."""

    clients: dict[str, OAuthClientInformationFull] = attrs.Factory(dict)
    codes: dict[str, AuthorizationCode] = attrs.Factory(dict)
    tokens: dict[str, AccessToken] = attrs.Factory(dict)
    issued: int = 0

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=str(client.client_id),
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        del self.codes[authorization_code.code]
        token = secrets.token_urlsafe(16)
        self.issued += 1
        self.tokens[token] = AccessToken(
            token=token,
            client_id=str(client.client_id),
            scopes=authorization_code.scopes,
            expires_at=int(time.time()) + 3600,
            resource=authorization_code.resource,
        )
        return OAuthToken(
            access_token=token, expires_in=3600, scope=" ".join(authorization_code.scopes)
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.tokens.get(token)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        return None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        raise NotImplementedError

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.tokens.pop(token.token, None)


@asynccontextmanager
async def protected_server(provider: Provider) -> AsyncIterator[str]:
    """An OAuth-protected MCP server on a loopback port; yields its ``/mcp`` URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = MCPServer(
        "vault",
        auth_server_provider=provider,  # type: ignore[arg-type]
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=f"{base}/mcp",
            client_registration_options=ClientRegistrationOptions(enabled=True),
            validate_token_resource=True,
        ),
    )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def secret() -> str:
        """The secret behind the login."""
        return "the eagle has landed"

    async with serve_asgi(server.streamable_http_app(), listener):
        yield f"{base}/mcp"


@attrs.define
class User:
    """Logs in when sent to the authorization URL, and hands the code back."""

    logins: int = 0
    code: tuple[str, str | None] | None = None

    async def redirect(self, authorization_url: str) -> None:
        self.logins += 1
        async with httpx2.AsyncClient() as http:
            answer = await http.get(authorization_url, follow_redirects=False)
        assert answer.status_code in (302, 303, 307), answer.text
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        self.code = query["code"][0], query.get("state", [None])[0]

    async def callback(self) -> tuple[str, str | None]:
        assert self.code is not None, "the user was not sent to log in"
        return self.code


async def test_oauth_logs_in_once_and_keeps_the_tokens(tmp_path: Path) -> None:
    provider, user = Provider(), User()
    store = FileTokenStore(tmp_path / "tokens.json")
    auth = McpOAuth(redirect=user.redirect, callback=user.callback, store=store)
    with trio.fail_after(30):
        async with protected_server(provider) as url:
            async with httpx2.AsyncClient() as http:
                refused = await http.post(url, json={})
            async with opened(McpServer.http(url, auth=auth)) as first:
                said = await run_tool(first, "secret")
            # A second session, and a second process would do the same: the tokens are on disk.
            again = McpOAuth(
                redirect=user.redirect, callback=user.callback, store=FileTokenStore(store.path)
            )
            async with opened(McpServer.http(url, auth=again)) as second:
                said_again = await run_tool(second, "secret")
            with pytest.raises(McpServerError, match="could not be reached") as anonymous:
                async with opened(McpServer.http(url, connect_timeout=5)):
                    pass
    assert refused.status_code == 401
    assert "www-authenticate" in refused.headers
    assert said.output == "the eagle has landed"
    assert said_again.output == "the eagle has landed"
    assert (user.logins, provider.issued) == (1, 1)
    saved = (await store.load(url, "tokens")) or {}
    assert saved["access_token"] in provider.tokens
    assert (await store.load(url, "client")) is not None
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert "answered HTTP 401 (Unauthorized): it asks for a login; pass auth=McpOAuth" in str(
        anonymous.value
    )
