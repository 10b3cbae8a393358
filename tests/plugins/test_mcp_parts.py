"""The MCP plugin's parts: names, results, token stores, the config; and noise from a server."""

from __future__ import annotations

import base64
import io
import json
import logging
import stat
import sys
import wave
from pathlib import Path

import hypothesis.strategies as st
import pytest
import trio
from hypothesis import given, settings
from mcp.server.mcpserver import MCPServer
from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
)

from plugins.mcp import (
    FileTokenStore,
    McpServer,
    McpToolError,
    MemoryTokenStore,
    _stdio,
    convert_result,
    parse_config,
)
from plugins.mcp._names import SERVER_NAME

from .mcp_servers import opened, run_tool

SLOW_SERVER = str(Path(__file__).with_name("slow_mcp_server.py"))

# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (("uvx", "mcp-server-git"), "mcp-server-git"),
        (
            ("uvx", "mcp-server-git==2026.10.19", "--repository", "/srv/alpha"),
            "mcp-server-git-alpha",
        ),
        (("uv", "tool", "run", "mcp-server-fetch"), "mcp-server-fetch"),
        (
            ("npx", "-y", "@modelcontextprotocol/server-filesystem", "/home/me/docs"),
            "server-filesystem-docs",
        ),
        (("npx", "-y", "@scope/server-x@1.2.3"), "server-x"),
        (("python3", "-m", "mcp_server_time", "--local-timezone", "UTC"), "mcp_server_time"),
        (("python", "-m", "mcp_server_git", "-r", "./repos/beta/"), "mcp_server_git-beta"),
        (("node", "/opt/weather/dist/index.js"), "weather"),
        (("node", "/opt/tools/lookup.mjs"), "lookup"),
        (("docker", "run", "-i", "--rm", "ghcr.io/org/github-mcp:latest"), "github-mcp"),
        (("/usr/local/bin/my-server",), "my-server"),
        (("my server.exe", "--db=/var/data/main.db"), "my_server-main_db"),
    ],
)
def test_default_names_say_which_server(command: tuple[str, ...], name: str) -> None:
    assert McpServer.stdio(*command).name == name


def test_a_node_script_is_named_by_its_package(tmp_path: Path) -> None:
    package = tmp_path / "node_modules" / "@acme" / "server-weather"
    (package / "dist").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "@acme/server-weather"}))
    script = package / "dist" / "index.js"
    script.write_text("")
    assert McpServer.stdio("node", str(script), "stdio").name == "server-weather"
    # A relative script is found from the working directory.
    relative = McpServer.stdio("node", "dist/index.js", cwd=package)
    assert relative.name == "server-weather"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://127.0.0.1:8123/mcp", "localhost-8123"),
        ("http://localhost:9000/sse", "localhost-9000"),
        ("https://mcp.example.com/mcp", "example_com"),
        ("https://www.example.com/v1/docs/mcp", "example_com-docs"),
    ],
)
def test_http_servers_are_named_by_host_port_and_path(url: str, name: str) -> None:
    assert McpServer.http(url).name == name
    assert McpServer.sse(url).name == name


def test_names_fit_and_bad_ones_are_refused() -> None:
    long = McpServer.stdio("uvx", "a-very-long-package-name-for-an-mcp-server", "/x/" + "y" * 40)
    assert len(long.name) <= 32
    assert McpServer.in_process(MCPServer("My Server!")).name == "My_Server"
    with pytest.raises(ValueError, match="invalid"):
        McpServer.stdio("uvx", "x", name="two words")


# --- results -------------------------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 2000).decode()


def _wav(seconds: float) -> str:
    data = io.BytesIO()
    with wave.open(data, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * int(8000 * seconds))
    return base64.b64encode(data.getvalue()).decode()


def test_a_result_becomes_text_and_images() -> None:
    result = CallToolResult(
        content=[
            TextContent(text="Here it is:"),
            ImageContent(data=PNG, mime_type="image/png"),
            AudioContent(data=_wav(2.5), mime_type="audio/wav"),
            ResourceLink(
                uri="file:///report.pdf",
                name="report",
                mime_type="application/pdf",
                description="the quarterly report",
            ),
            EmbeddedResource(
                resource=BlobResourceContents(
                    uri="file:///logo.jpg", blob=PNG, mime_type="image/jpeg"
                )
            ),
            EmbeddedResource(
                resource=BlobResourceContents(uri="file:///data.bin", blob="AAAA", mime_type=None)
            ),
        ]
    )
    converted = convert_result(result)
    assert converted.text.split("\n") == [
        "Here it is:",
        "[image 1: image/png, 2.0 kB; shown after this]",
        "[audio: audio/wav, 39.1 kB, 2.5 s]",
        "[resource link: report <file:///report.pdf> (application/pdf): the quarterly report]",
        "[image 2 (file:///logo.jpg): image/jpeg, 2.0 kB; shown after this]",
        "[resource file:///data.bin: application/octet-stream, 3 bytes of binary data]",
    ]
    assert [(i.mime_type, i.data) for i in converted.images] == [
        ("image/png", PNG),
        ("image/jpeg", PNG),
    ]
    assert converted.images[0].data_url.startswith("data:image/png;base64,iVBORw0KGgo")


@pytest.mark.parametrize(
    ("texts", "structured", "said"),
    [
        ([], {"t": 21}, '{"t":21}'),
        (['{"t": 21}'], {"t": 21}, '{"t": 21}'),  # the text already says it
        (["21"], {"result": 21}, "21"),  # the SDKs' wrapping of a plain value
        (["sunny"], {"result": "sunny"}, "sunny"),
        (["It is warm."], {"t": 21}, 'It is warm.\n{"t":21}'),  # the text says something else
    ],
)
def test_structured_content_is_said_once(
    texts: list[str], structured: dict[str, object], said: str
) -> None:
    result = CallToolResult(
        content=[TextContent(text=t) for t in texts], structured_content=structured
    )
    assert convert_result(result).text == said


def test_an_error_result_raises_with_the_server_s_words() -> None:
    with pytest.raises(McpToolError, match="quota exceeded"):
        convert_result(CallToolResult(content=[TextContent(text="quota exceeded")], is_error=True))
    with pytest.raises(McpToolError, match="said nothing more"):
        convert_result(CallToolResult(content=[], is_error=True))


# --- token stores -----------------------------------------------------------------------


async def test_token_stores_keep_each_server_s_values(tmp_path: Path) -> None:
    with trio.fail_after(10):
        for store in (MemoryTokenStore(), FileTokenStore(tmp_path / "tokens.json")):
            assert await store.load("https://a/mcp", "tokens") is None
            await store.save("https://a/mcp", "tokens", {"access_token": "A"})
            await store.save("https://b/mcp", "tokens", {"access_token": "B"})
            await store.save("https://a/mcp", "client", {"client_id": "c"})
            assert await store.load("https://a/mcp", "tokens") == {"access_token": "A"}
            assert await store.load("https://b/mcp", "tokens") == {"access_token": "B"}
            assert await store.load("https://a/mcp", "client") == {"client_id": "c"}
        again = FileTokenStore(tmp_path / "tokens.json")  # another process, later
        assert await again.load("https://b/mcp", "tokens") == {"access_token": "B"}
    on_disk = tmp_path / "tokens.json"
    assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600
    assert json.loads(on_disk.read_text())["https://a/mcp"]["tokens"] == {"access_token": "A"}


# --- the config file --------------------------------------------------------------------


def test_the_config_file_names_transports_and_options() -> None:
    document = {
        "mcpServers": {
            "legacy": {"url": "http://h/sse", "type": "sse", "resourceTools": True},
            "modern": {"url": "http://h/mcp", "type": "http"},
        }
    }
    legacy, modern = parse_config(json.dumps(document))
    assert (legacy.target.describe(), legacy.resource_tools) == ("sse: http://h/sse", True)
    assert modern.target.describe() == "http: http://h/mcp"
    with pytest.raises(ValueError, match=r"mcpServers\.odd: unknown type 'websocket'"):
        parse_config(json.dumps({"mcpServers": {"odd": {"url": "ws://h", "type": "websocket"}}}))


# --- what faces the outside: names from any command, a server's noise ----------------------

printable = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@given(command=printable.filter(bool), args=st.lists(printable, max_size=6))
@settings(max_examples=300, deadline=None)
def test_any_command_gets_a_valid_name(command: str, args: list[str]) -> None:
    assert SERVER_NAME.fullmatch(McpServer.stdio(command, *args).name)


@given(host=st.from_regex(r"[a-z0-9.-]{0,40}", fullmatch=True), path=printable)
@settings(max_examples=300, deadline=None)
def test_any_url_gets_a_valid_name(host: str, path: str) -> None:
    assert SERVER_NAME.fullmatch(McpServer.http(f"https://{host}/{path}").name)


@pytest.mark.parametrize("limit", [_stdio.MAX_LINE_BYTES, 10_000])
async def test_a_server_that_prints_noise_first_still_serves(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, limit: int
) -> None:
    # With a 10 kB bound, the 100 kB line is dropped unread, and nothing else is.
    monkeypatch.setattr(_stdio, "MAX_LINE_BYTES", limit)
    caplog.set_level(logging.DEBUG, logger="cantata.mcp")
    with trio.fail_after(20):
        async with opened(McpServer.stdio(sys.executable, SLOW_SERVER, "--noisy")) as c:
            pid = await run_tool(c, "pid")
    assert pid.status == "ok" and int(pid.output) > 0
    dropped = "a stdout line over 10000 bytes was dropped" in caplog.text
    assert dropped == (limit == 10_000)
