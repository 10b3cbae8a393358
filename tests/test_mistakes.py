"""Every everyday mistake with the ``cantata`` command: one line that says what to do.

Each case runs the real command in a subprocess, as a new user would, and
checks that it exits non-zero with exactly one line on stderr, naming the
thing to fix, and no traceback (``--debug`` shows it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np
import pytest
import trio

from framework import Agent, open_session
from framework.testing import engine_wire, run_engine

ROOT = Path(__file__).resolve().parents[1]
WEATHER = ROOT / "examples" / "weather_bot.py"
NO_KEYS = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "CANTATA_API_KEY")}


@attrs.frozen
class Ran:
    status: int
    stdout: str
    stderr: str


def _cantata(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Ran:
    done = subprocess.run(
        [sys.executable, "-m", "framework.apps.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env if env is not None else NO_KEYS,
        timeout=90,
        cwd=ROOT,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


async def _cantata_async(*args: str, env: dict[str, str] | None = None) -> Ran:
    """The command run beside an engine served by this test's own trio loop."""
    with trio.fail_after(90):
        done = await trio.run_process(
            [sys.executable, "-m", "framework.apps.cli", *args],
            capture_stdout=True,
            capture_stderr=True,
            env=env if env is not None else NO_KEYS,
            cwd=ROOT,
            check=False,
        )
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


def one_line(ran: Ran, command: str, status: int, *says: str) -> str:
    """The single line of stderr; checks status, prefix, absence of a traceback, and words."""
    assert ran.status == status, (ran.status, ran.stderr[-3000:])
    assert ran.stderr.endswith("\n") and ran.stderr.count("\n") == 1, ran.stderr[-3000:]
    line = ran.stderr.rstrip("\n")
    assert line.startswith(f"cantata {command}: "), line
    assert "Traceback" not in ran.stderr and "ExceptionGroup" not in ran.stderr
    for words in says:
        assert words in line, (words, line)
    return line


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


# --- connecting ---------------------------------------------------------------------------


def test_the_engine_is_not_running(closed_port: int) -> None:
    url = f"ws://127.0.0.1:{closed_port}/v1/realtime"
    ran = _cantata("run", str(WEATHER), "--url", url, "--say", "hi")
    one_line(ran, "run", 1, f"cannot connect to 127.0.0.1:{closed_port}", "cantata serve", "--url")


async def test_a_wrong_path_on_a_running_engine() -> None:
    async with run_engine() as url:
        wrong = url.replace("/v1/realtime", "/v2/realtime")
        ran = await _cantata_async("run", str(WEATHER), "--url", wrong, "--say", "hi")
    one_line(ran, "run", 1, "has no Realtime endpoint there", "ws://HOST:PORT/v1/realtime")


async def test_wss_to_a_plain_websocket_server_fails_at_once() -> None:
    async with run_engine() as url:
        started = trio.current_time()
        ran = await _cantata_async("run", str(WEATHER), "--url", "wss" + url[2:], "--say", "hi")
        took = trio.current_time() - started
    one_line(ran, "run", 1, "TLS handshake", "use ws:// instead of wss://")
    assert took < 8  # not the 10 s handshake timeout


def test_a_url_that_is_not_a_websocket_url() -> None:
    ran = _cantata("run", str(WEATHER), "--url", "ftp://127.0.0.1/x", "--say", "hi")
    one_line(ran, "run", 2, "not a WebSocket URL")


@pytest.mark.parametrize("command", ["run", "console", "transcribe"])
def test_no_key_for_the_hosted_api(command: str, tmp_path: Path) -> None:
    from framework.audio import write_wav

    wav = tmp_path / "talk.wav"
    write_wav(wav, np.zeros(2400, np.int16), 24000)
    given = {"run": [str(WEATHER), "--say", "hi"], "console": [str(WEATHER)]}
    ran = _cantata(command, *given.get(command, [str(wav)]), "--engine", "openai")
    one_line(ran, command, 2, "needs a key", "OPENAI_API_KEY", "--api-key")


async def test_a_keyed_engine_refuses_a_missing_or_wrong_key() -> None:
    async with run_engine(api_key="sk-right") as url:
        missing = await _cantata_async("run", str(WEATHER), "--url", url, "--say", "hi")
        wrong = await _cantata_async(
            "run", str(WEATHER), "--url", url, "--say", "hi", "--api-key", "sk-wrong"
        )
        env = {**NO_KEYS, "CANTATA_API_KEY": "sk-right"}
        right = await _cantata_async("run", str(WEATHER), "--url", url, "--say", "hi", env=env)
    for ran in (missing, wrong):
        one_line(ran, "run", 1, "refused the key (401", "--api-key", "CANTATA_API_KEY")
    assert right.status == 0 and "Hello!" in right.stdout


async def test_transcribe_takes_the_same_key_rule(tmp_path: Path) -> None:
    from framework.audio import write_wav

    wav = tmp_path / "quiet.wav"
    write_wav(wav, np.zeros(24000, np.int16), 24000)
    async with run_engine(api_key="sk-right") as url:
        missing = await _cantata_async("transcribe", str(wav), "--url", url)
        given = await _cantata_async("transcribe", str(wav), "--url", url, "--api-key", "sk-right")
        env = {**NO_KEYS, "CANTATA_API_KEY": "sk-right"}
        from_env = await _cantata_async("transcribe", str(wav), "--url", url, env=env)
    one_line(missing, "transcribe", 1, "refused the key (401", "--api-key", "CANTATA_API_KEY")
    for ran in (given, from_env):
        assert ran.status == 0, ran.stderr[-3000:]


# --- what the user gives ------------------------------------------------------------------


def test_a_bad_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[[rule]\nwhen = 'x'\n")
    ran = _cantata("run", str(WEATHER), "--rules", str(rules), "--say", "hi")
    one_line(ran, "run", 2, str(rules), "not valid TOML")


def test_a_missing_input_wav(tmp_path: Path) -> None:
    ran = _cantata("run", str(WEATHER), "--input-wav", str(tmp_path / "nope.wav"))
    one_line(ran, "run", 2, "nope.wav: No such file or directory", "check the path")


def test_an_input_file_that_is_not_wav(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("hello")
    ran = _cantata("run", str(WEATHER), "--input-wav", str(text))
    one_line(ran, "run", 2, "notes.wav: not a WAV file")


def test_an_output_wav_that_cannot_be_written(tmp_path: Path) -> None:
    target = tmp_path / "no such dir" / "reply.wav"
    ran = _cantata("run", str(WEATHER), "--say", "hi", "--output-wav", str(target))
    one_line(ran, "run", 2, "reply.wav: No such file or directory")
    assert "responses" not in ran.stdout  # refused before any session ran


def test_a_bot_file_that_does_not_exist(tmp_path: Path) -> None:
    ran = _cantata("run", str(tmp_path / "bot.py"), "--say", "hi")
    one_line(ran, "run", 2, "no bot file at", "bot.py")


def test_a_bot_file_with_no_agent(tmp_path: Path) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text("x = 1\n")
    ran = _cantata("run", str(bot), "--say", "hi")
    one_line(ran, "run", 2, "defines no agent", "framework.Agent", "cantata init")


def test_a_bot_file_with_an_import_error(tmp_path: Path) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text("import no_such_module_here\n")
    ran = _cantata("console", str(bot))
    one_line(ran, "console", 2, "failed to import", "No module named 'no_such_module_here'")


def test_a_bot_whose_agent_cannot_be_made(tmp_path: Path) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text(
        "from framework import Agent\n"
        "class Bot(Agent):\n"
        "    def __init__(self):\n"
        "        super().__init__(voise='ash')\n"
    )
    ran = _cantata("run", str(bot), "--say", "hi")
    one_line(ran, "run", 2, "Bot() failed", "unknown setting(s) ['voise']")


def test_a_part_no_plugin_provides() -> None:
    ran = _cantata("run", str(WEATHER), "--transcriber", "whisper", "--say", "hi")
    one_line(
        ran, "run", 2, "no installed plugin provides the transcriber 'whisper'", "pocketsphinx"
    )


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    ran = _cantata("run", str(tmp_path / "bot.py"), "--say", "hi", "--debug")
    assert ran.status != 0 and "Traceback" in ran.stderr and "BotError" in ran.stderr


# --- transcribe ---------------------------------------------------------------------------


def test_transcribe_a_missing_file(tmp_path: Path) -> None:
    ran = _cantata("transcribe", str(tmp_path / "talk.wav"))
    one_line(ran, "transcribe", 2, "talk.wav: No such file or directory")


async def test_transcribe_against_an_engine_that_cannot_transcribe(tmp_path: Path) -> None:
    from framework.audio import write_wav

    from .test_transcription import _three_utterances

    wav = tmp_path / "three.wav"
    write_wav(wav, _pcm(_three_utterances()), 24000)
    async with run_engine() as url:  # no transcriber
        started = trio.current_time()
        ran = await _cantata_async("transcribe", str(wav), "--url", url)
        took = trio.current_time() - started
    one_line(ran, "transcribe", 1, "3 of 3 turns could not be transcribed", "No transcriber")
    assert took < 20  # at the end of the file, not after a silent wait


def _pcm(audio: bytes) -> np.ndarray:
    return np.frombuffer(audio, "<i2")


def test_transcribe_with_no_file_and_no_microphone() -> None:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        pass
    else:
        pytest.skip("this machine has PortAudio: the microphone is there to be used")
    ran = _cantata("transcribe")
    one_line(ran, "transcribe", 2, "no WAV file given, and no microphone", "pass FILE.wav")


# --- the library --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["run_engine", "engine_wire"])
async def test_the_users_own_error_leaves_the_testing_helpers_as_itself(where: str) -> None:
    class Mine(Exception):
        pass

    with trio.fail_after(20), pytest.raises(Mine) as caught:
        if where == "run_engine":
            async with run_engine() as url, open_session(Agent(), url=url) as session:
                await session.run("hello")
                raise Mine("mine")
        else:
            async with engine_wire() as wire, open_session(Agent(), connection=wire) as session:
                await session.run("hello")
                raise Mine("mine")
    assert type(caught.value) is Mine  # not an exception group around it
