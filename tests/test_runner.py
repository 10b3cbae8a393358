"""``cantata run`` and ``cantata console`` against the local engine."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.apps.runner import BotError, load_agent

ROOT = Path(__file__).resolve().parents[1]
WEATHER = ROOT / "examples" / "weather_bot.py"


def _cantata(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "framework.apps.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


def test_run_with_scripted_turns() -> None:
    result = _cantata(
        "run",
        str(WEATHER),
        "--say",
        "What is the weather in Paris?",
        "--say",
        "Please book an umbrella delivery to 5 Rue Cler.",
        "--approve",
        "yes",
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert (
        "WeatherBot on the local engine (a deterministic scripted model; rules weather.toml)" in out
    )
    assert 'tool       get_weather({"city": "Paris"}) -> \'sunny and 21 degrees\' [ok]' in out
    assert "assistant  In Paris it is sunny and 21 degrees." in out
    assert 'approve book_umbrella_delivery({"address": "5 Rue Cler"})? yes (--approve)' in out
    assert "assistant  Done: an umbrella is on its way to 5 Rue Cler." in out
    assert out.count("turn took") == 2


def test_run_refuses_approval_when_told_no() -> None:
    result = _cantata(
        "run", str(WEATHER), "--say", "Please book an umbrella delivery to home.", "--approve", "no"
    )
    assert result.returncode == 0, result.stderr
    assert "[rejected]" in result.stdout


def test_bot_files_that_cannot_run(tmp_path: Path) -> None:
    two = tmp_path / "two.py"
    two.write_text("from framework import Agent\nclass A(Agent): pass\nclass B(Agent): pass\n")
    with pytest.raises(BotError, match="defines 2 agent classes"):
        load_agent(two)
    agent, _ = load_agent(two, "B")
    assert agent.name == "B"
    with pytest.raises(BotError, match="no bot file"):
        load_agent(tmp_path / "missing.py")
    result = _cantata("run", str(two))
    assert result.returncode == 2
    assert "defines 2 agent classes (A, B)" in result.stdout


def _read_until(fd: int, marker: bytes, seconds: float = 30) -> bytes:
    """What the pseudo-terminal shows until ``marker`` appears."""
    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} within {seconds} s; saw {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_console_through_a_pseudo_terminal() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["COLUMNS"] = "200"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console, on the pseudo-terminal
        os.chdir(ROOT)
        os.execve(
            sys.executable,
            [sys.executable, "-m", "framework.apps.cli", "console", str(WEATHER)],
            env,
        )
    try:
        _read_until(fd, b"Type a message")
        os.write(fd, b"What is the weather in Paris?\n")
        shown = _read_until(fd, b"turn took")
        assert b"get_weather" in shown and b"sunny and 21 degrees" in shown
        os.write(fd, b"Please book an umbrella delivery to 5 Rue Cler.\n")
        _read_until(fd, b"[y/N]")
        os.write(fd, b"y\n")
        shown = _read_until(fd, b"turn took")
        assert b"Done: an umbrella is on its way to 5 Rue Cler." in shown
        os.write(fd, b"\x04")  # Ctrl-D: the console ends
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.close(fd)
