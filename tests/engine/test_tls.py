"""The engine over TLS: ``wss://`` and ``https://`` with a certificate clients verify.

A throwaway certificate authority (trustme) signs a certificate for the
loopback address; the clients trust that authority and nothing else, so every
connection below really verified the engine's certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
import trio
import trustme
from openai import AsyncOpenAI
from trio_websocket import open_websocket_url

from framework.engine import Engine, RunningEngine, open_engine
from framework.transport import Framing, open_connection

from .test_rest import in_asyncio

KEY = "sk-cantata-tls-test"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusting(authority: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test authority only."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.load_verify_locations(cadata=authority.cert_pem.bytes().decode())
    return context


@pytest.fixture
def cert_files(authority: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    issued = authority.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(certfile))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(certfile), append=True)
    issued.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


@pytest.fixture
async def running(cert_files: tuple[str, str]) -> AsyncIterator[RunningEngine]:
    certfile, keyfile = cert_files
    async with open_engine(Engine(api_key=KEY), certfile=certfile, keyfile=keyfile) as running:
        yield running


async def test_the_urls_are_secure(running: RunningEngine) -> None:
    assert running.url.startswith("wss://127.0.0.1:") and running.url.endswith("/v1/realtime")
    assert running.http_url.startswith("https://127.0.0.1:") and running.http_url.endswith("/v1")


async def test_a_verifying_websocket_client_gets_a_session(
    running: RunningEngine, trusting: ssl.SSLContext
) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(
            running.url,
            ssl_context=trusting,
            extra_headers=[("Authorization", f"Bearer {KEY}")],
        ) as ws:
            created = await ws.get_message()
            assert '"type":"session.created"' in created


async def test_the_official_sdk_over_wss_and_https(
    running: RunningEngine, trusting: ssl.SSLContext
) -> None:
    """The SDK's REST client mints a client secret over https, then its realtime
    client opens a session over wss with that secret and runs a text turn."""
    base = running.http_url

    async def client() -> list[str]:
        async with httpx2.AsyncClient(verify=trusting) as http:
            sdk = AsyncOpenAI(api_key=KEY, base_url=base, http_client=http)
            secret = await sdk.realtime.client_secrets.create()
            assert secret.value.startswith("ek_")
            ephemeral = AsyncOpenAI(api_key=secret.value, base_url=base, http_client=http)
            seen: list[str] = []
            async with ephemeral.realtime.connect(
                model="gpt-realtime",
                websocket_connection_options={"ssl": trusting},  # type: ignore[typeddict-unknown-key]
            ) as connection:
                await connection.conversation.item.create(
                    item={
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "hello"}],
                    }
                )
                await connection.response.create(response={"output_modalities": ["text"]})
                async for event in connection:
                    seen.append(event.type)
                    if event.type == "response.done":
                        break
            return seen

    with trio.fail_after(20):
        seen = await in_asyncio(client, seconds=15)
    assert seen[0] == "session.created"
    assert "response.output_text.done" in seen and seen[-1] == "response.done"


async def test_a_client_that_does_not_trust_the_certificate_is_refused(
    running: RunningEngine,
) -> None:
    untrusting = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # the system's roots only
    port = int(running.url.split(":")[2].split("/")[0])
    with trio.fail_after(10):
        stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=untrusting)
        async with stream:
            with pytest.raises(trio.BrokenResourceError) as info:
                await stream.do_handshake()
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


async def test_plain_http_on_the_tls_port_is_not_served(running: RunningEngine) -> None:
    plain = running.http_url.replace("https://", "http://", 1)
    with trio.fail_after(10):
        async with httpx2.AsyncClient(timeout=5) as http:
            with pytest.raises(httpx2.TransportError):
                await http.get(plain + "/health")


async def test_only_one_tls_file_is_refused(cert_files: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="both a certificate file and its key file"):
        async with open_engine(Engine(), certfile=cert_files[0]):
            pass


@pytest.mark.parametrize("framing", ["trio-websocket", "websockets"])
async def test_cantatas_own_client_over_wss(
    running: RunningEngine,
    authority: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    framing: Framing,
) -> None:
    # The client verifies with the system's trust store: here, the test authority.
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    instructions = "x" * 1_000_000  # many TLS records each way
    with trio.fail_after(20):
        async with open_connection(running.url, api_key=KEY, framing=framing) as conn:
            assert type(await conn.receive()).__name__ == "SessionCreatedEvent"
            await conn.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "instructions": instructions},
                }
            )
            updated = await conn.receive()
            assert type(updated).__name__ == "SessionUpdatedEvent"
            assert updated.session.instructions == instructions
