"""The ``cantata`` command in a real subprocess, on the real clock.

``cantata serve`` is what an operator runs before pointing any client at it:
it must say what it is, be ready fast, and stop cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import ssl
import sys
import time
from pathlib import Path

import pytest
import trio
import trustme
from trio_websocket import open_websocket_url

from framework.apps import cli

from .engine.helpers import connect
from .engine.served import CANTATA, ROOT, RawSocket, spawn

SCRIPT = Path(sys.executable).parent / "cantata"


async def test_serve_is_ready_within_a_second_and_stops_on_sigint() -> None:
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0") as served:
            ready_line = await served.stdout.line_with("Ready")
            ready_after = time.monotonic() - served.spawned
            banner = served.stdout.text
            found = re.search(r"ws://127\.0\.0\.1:(\d+)/v1/realtime", banner)
            assert found is not None, banner
            assert int(found.group(1)) != 0  # port 0 became a real port
            assert "deterministic scripted model" in banner
            assert "not a language model" in banner
            assert ready_line.startswith("Ready")
            # Spawn to "Ready" includes the interpreter start and all imports.
            assert ready_after < 1.0, f"Ready only {ready_after:.3f} s after the spawn"
            with trio.fail_after(5):
                async with connect(found.group(0)) as client:
                    # connect() has checked session.created; the session works.
                    await client.send({"type": "input_audio_buffer.clear"})
                    await client.until("input_audio_buffer.cleared")
            served.process.send_signal(signal.SIGINT)
            with trio.fail_after(3):
                code = await served.process.wait()
            assert code == 0
            await served.stdout.line_with("Stopped.")
        assert "Traceback" not in served.stderr.text
        assert "KeyboardInterrupt" not in served.stderr.text


async def test_sigint_with_a_client_connected_still_exits_cleanly() -> None:
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0") as served:
            await served.stdout.line_with("Ready")
            found = re.search(r"ws://\S+/v1/realtime", served.stdout.text)
            assert found is not None
            async with connect(found.group(0)):
                served.process.send_signal(signal.SIGINT)
                with trio.fail_after(3):
                    code = await served.process.wait()
            assert code == 0
            await served.stdout.line_with("Stopped.")
        assert "Traceback" not in served.stderr.text


async def test_serve_with_tls_prints_a_wss_url_that_verifies(tmp_path: Path) -> None:
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(certfile))
    issued.private_key_pem.write_to_path(str(keyfile))
    trusting = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    trusting.load_verify_locations(cadata=authority.cert_pem.bytes().decode())
    with trio.fail_after(30):
        async with spawn(
            "serve", "--port", "0", "--certfile", str(certfile), "--keyfile", str(keyfile)
        ) as served:
            await served.stdout.line_with("Ready")
            found = re.search(r"wss://127\.0\.0\.1:\d+/v1/realtime", served.stdout.text)
            assert found is not None, served.stdout.text
            async with open_websocket_url(found.group(0), ssl_context=trusting) as ws:
                assert '"type":"session.created"' in await ws.get_message()
            served.process.send_signal(signal.SIGINT)
            assert await served.process.wait() == 0
    assert "Traceback" not in served.stderr.text


async def test_serve_with_only_a_certfile_says_what_is_missing(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0", "--certfile", str(tmp_path / "c.pem")) as served:
            code = await served.process.wait()
    assert code == 2
    assert served.stderr.text == "cantata serve: TLS needs both --certfile and --keyfile.\n"


async def test_a_busy_port_is_one_line_that_says_what_to_do() -> None:
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0") as first:
            await first.stdout.line_with("Ready")
            port = first.url.split(":")[2].split("/")[0]
            async with spawn("serve", "--port", port) as second:
                code = await second.process.wait()
            first.process.send_signal(signal.SIGINT)
            await first.process.wait()
    assert code == 1
    assert second.stderr.text == (
        f"cantata serve: cannot listen on 127.0.0.1:{port}: the port is in use; stop what "
        "uses it, or pass another --port (0 picks a free one).\n"
    )


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("no-such-host.invalid", "no such host"),
        ("192.0.2.1", "192.0.2.1 is not an address of this machine"),
    ],
)
async def test_a_bad_host_is_one_line_that_says_what_to_do(host: str, says: str) -> None:
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0", "--host", host) as served:
            code = await served.process.wait()
    assert code == 1
    message = served.stderr.text
    assert message.startswith("cantata serve: cannot listen on ") and says in message
    assert message.count("\n") == 1 and "--host" in message
    assert "Traceback" not in message


async def test_debug_shows_the_traceback() -> None:
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0", "--host", "192.0.2.1", "--debug") as served:
            code = await served.process.wait()
    assert code == 1
    assert "Traceback" in served.stderr.text


async def test_a_rules_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b"[[rule]]\nwhen = 'caf\xe9'\nsay = 'x'\n")
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0", "--rules", str(rules)) as served:
            code = await served.process.wait()
    assert code == 2
    assert served.stderr.text == (
        f"cantata serve: {rules}: not UTF-8 text (byte 20); save it as UTF-8\n"
    )


async def test_the_api_key_can_come_from_the_environment() -> None:
    env = {**os.environ, "CANTATA_API_KEY": "sk-from-the-environment"}
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0", env=env) as served:
            await served.stdout.line_with("Ready")
            assert "API key required" in served.stdout.text
            with pytest.raises(ConnectionError, match=r"^HTTP/1\.1 401 "):
                await RawSocket.open(served.port)
            key = [("Authorization", "Bearer sk-from-the-environment")]
            async with connect(served.url, headers=key):
                pass
            served.process.send_signal(signal.SIGINT)
            await served.process.wait()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[[rule]\nwhen = 'x'", "not valid TOML"),
        ("[[rule]]\nsay = 'no trigger'", "needs exactly one of 'when'"),
        ("[[rule]]\nwhen = '('\nsay = 'x'", "bad regex"),
        (None, "cannot read rules"),
    ],
)
async def test_bad_rules_file_exits_2_with_a_message(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    rules = tmp_path / "rules.toml"
    if content is not None:
        rules.write_text(content)
    with trio.fail_after(30):
        async with spawn("serve", "--port", "0", "--rules", str(rules)) as served:
            code = await served.process.wait()
    assert code == 2
    message = served.stderr.text
    assert message.startswith(f"cantata serve: {rules}: ")
    assert reason in message
    assert "Traceback" not in message
    assert "Ready" not in served.stdout.text


@pytest.mark.parametrize("how", ["module", "script"])
async def test_protocol_lists_the_events(how: str) -> None:
    if how == "script" and not SCRIPT.exists():
        pytest.skip(f"no console script at {SCRIPT}")
    command = [str(SCRIPT), "protocol"] if how == "script" else [*CANTATA, "protocol"]
    with trio.fail_after(30):
        result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, cwd=ROOT)
    out = result.stdout.decode()
    assert result.returncode == 0 and result.stderr == b""
    assert re.search(r"^client events \(\d+ GA\):$", out, re.M)
    assert re.search(r"^server events \(\d+ GA\):$", out, re.M)
    assert re.search(r"^  session\.update +SessionUpdateEvent$", out, re.M)
    assert re.search(r"^  input_audio_buffer\.timeout_triggered +\w+$", out, re.M)
    assert "(legacy, beta protocol)" in out
    assert re.search(r"^\d+ public names in framework\.protocol$", out, re.M)


async def test_builtin_names_the_engines_own_parts_over_the_installed_ones() -> None:
    with trio.fail_after(30):
        async with spawn(
            "serve", "--port", "0", "--vad", "builtin", "--transcriber", "builtin"
        ) as served:
            await served.stdout.line_with("Ready")
            banner = served.stdout.text
            served.process.send_signal(signal.SIGINT)
            await served.process.wait()
    vad = re.search(r"vad: +(.*)", banner)
    transcriber = re.search(r"transcriber: +(.*)", banner)
    synthesizer = re.search(r"synthesizer: +(.*)", banner)
    assert vad is not None and transcriber is not None and synthesizer is not None, banner
    assert "silero" not in vad.group(1).lower(), banner
    assert "pocketsphinx" not in transcriber.group(1).lower(), banner
    # The kind not named still gets the installed default.
    assert "espeak" in synthesizer.group(1).lower(), banner


@pytest.mark.parametrize(
    "beside", [KeyboardInterrupt(), SystemExit(1)], ids=["another interrupt", "an exit"]
)
def test_ctrl_c_beside_another_ending_still_exits_quietly(
    beside: BaseException, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise BaseExceptionGroup("session", [KeyboardInterrupt(), beside])

    class Parsed:
        def parse_args(self, argv: object) -> argparse.Namespace:
            return argparse.Namespace(run=interrupted, debug=False, command="console")

    monkeypatch.setattr(cli, "parser", Parsed)
    assert cli.main(["console"]) == cli.INTERRUPTED
    assert capsys.readouterr().err == ""
