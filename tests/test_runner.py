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

import numpy as np
import pytest
import trio

from framework.apps.runner import BotError, load_agent

ROOT = Path(__file__).resolve().parents[1]
WEATHER = ROOT / "examples" / "weather_bot.py"


def _cantata(*args: str, timeout: float = 60, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "framework.apps.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
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
    assert "WeatherBot on the local engine, rules weather.toml (deterministic scripted model" in out
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
    result = _cantata("run", str(two), "--say", "hi")
    assert result.returncode == 2
    assert "defines 2 agent classes (A, B)" in result.stderr


def test_of_agents_that_hand_off_the_one_nobody_hands_off_to_runs(tmp_path: Path) -> None:
    chain = tmp_path / "chain.py"
    chain.write_text(
        "from framework import Agent\n"
        "class Billing(Agent): pass\n"
        "class Front(Agent):\n"
        "    handoffs = (Billing(),)\n"
    )
    agent, _ = load_agent(chain)
    assert agent.name == "Front"
    triage = ROOT / "examples" / "triage_bot.py"
    result = _cantata("run", str(triage), "--say", "I need a refund for order 42")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Triage on the local engine, rules triage_bot.toml")
    assert "handoff    Triage -> Billing" in result.stdout


def test_run_without_turns_is_the_console() -> None:
    result = _cantata("run", str(WEATHER), stdin="What is the weather in Paris?\n")
    assert result.returncode == 0, result.stderr
    assert "Type a message" in result.stdout
    assert "In Paris it is sunny and 21 degrees." in result.stdout


@pytest.mark.parametrize(("policy", "status"), [("yes", "ok"), ("no", "rejected")])
def test_the_console_honours_approve(policy: str, status: str) -> None:
    result = _cantata(
        "console",
        str(WEATHER),
        "--approve",
        policy,
        stdin="Please book an umbrella delivery to 5 Rue Cler.\n",
    )
    assert result.returncode == 0, result.stderr
    assert f"? {policy} (--approve)" in result.stdout
    assert f"[{status}]" in result.stdout


async def test_the_console_plays_the_reply_on_a_speaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No device here: the audio tests' fake sounddevice stands in for one.
    from framework.apps import runner
    from framework.apps.backend import BackendChoice

    from .audio.test_devices import fake_sounddevice

    sd = fake_sounddevice({24000})
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    lines = iter(["Hello!", None])

    async def typed() -> str | None:
        return next(lines)

    monkeypatch.setattr(runner, "_read_line", typed)
    options = runner.RunOptions(bot=WEATHER, backend=BackendChoice(engine="local"), approve="no")
    with trio.fail_after(60):
        assert await runner.console_bot(options) == 0
    (speaker,) = [s for s in sd.streams if "blocksize" not in s.options]  # the output stream
    assert speaker.started and speaker.closed
    heard = speaker.pull(24000)  # what the device would have played in the next second
    assert np.abs(heard).max() > 1000  # the assistant's voice, not silence


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


def test_ctrl_c_in_the_console_exits_quietly() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execve(
            sys.executable,
            [sys.executable, "-m", "framework.apps.cli", "console", str(WEATHER)],
            env,
        )
    try:
        _read_until(fd, b"Type a message")
        os.write(fd, b"\x03")  # Ctrl-C at the prompt: the terminal sends SIGINT
        shown = _read_until(fd, b"\xff", seconds=20)  # everything until the console is gone
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 130, shown
        assert b"Traceback" not in shown and b"KeyboardInterrupt" not in shown, shown
        assert b"Error" not in shown, shown
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.close(fd)
