"""``cantata init NAME``: the scaffold runs, and its own test passes (and can fail).

The command and the generated test each run in a subprocess, as a new user
would run them, in a directory outside the repository.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from .test_mistakes import NO_KEYS, ROOT, _cantata, one_line

PYTHONPATH = {**NO_KEYS, "PYTHONPATH": str(ROOT)}  # the framework, as if installed


def _pytest(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(where)],
        capture_output=True,
        text=True,
        env=PYTHONPATH,
        timeout=120,
        cwd=where.parent,
    )


def test_the_scaffold_passes_its_own_test_and_runs(tmp_path: Path) -> None:
    made = _cantata("init", "hello_bot", "--directory", str(tmp_path))
    assert made.status == 0, made.stderr
    bot = tmp_path / "hello_bot"
    assert sorted(p.name for p in bot.iterdir()) == [
        "hello_bot.py",
        "hello_bot.toml",
        "test_hello_bot.py",
    ]
    assert f"Test it: python -m pytest {bot}" in made.stdout
    tested = _pytest(bot)
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert "2 passed" in tested.stdout
    # The bot runs from its directory as the scaffold says, its rules found beside it.
    ran = subprocess.run(
        [sys.executable, "-m", "framework.apps.cli", "run", "hello_bot.py", "--say", "hello"],
        capture_output=True,
        text=True,
        env=PYTHONPATH,
        timeout=90,
        cwd=bot,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "HelloBot on the local engine, rules hello_bot.toml" in ran.stdout
    assert "Hello! Ask me what time it is." in ran.stdout


def test_the_generated_test_fails_when_the_bot_is_wrong(tmp_path: Path) -> None:
    assert _cantata("init", "clock", "--directory", str(tmp_path)).status == 0
    rules = tmp_path / "clock" / "clock.toml"
    rules.write_text(rules.read_text().replace('say = "It is {output}."', 'say = "Noon."'))
    tested = _pytest(tmp_path / "clock")
    assert tested.returncode == 1
    assert "1 failed, 1 passed" in tested.stdout


def test_init_refuses_to_overwrite_and_bad_names(tmp_path: Path) -> None:
    assert _cantata("init", "mine", "--directory", str(tmp_path)).status == 0
    (tmp_path / "mine" / "mine.py").write_text("# my work\n")
    again = _cantata("init", "mine", "--directory", str(tmp_path))
    one_line(again, "init", 2, "exists already", "pick another name")
    assert (tmp_path / "mine" / "mine.py").read_text() == "# my work\n"
    for bad in ("My-Bot", "class", "2bots"):
        refused = _cantata("init", bad, "--directory", str(tmp_path))
        one_line(refused, "init", 2, f"{bad!r} cannot name a bot", "like my_bot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_version() -> None:
    ran = _cantata("--version")
    assert ran.status == 0
    assert ran.stdout == f"cantata {version('cantata')}\n"
