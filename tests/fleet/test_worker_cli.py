"""``cantata worker``'s mistakes: one line that says what to do, and a non-zero status."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .fleet import BOT, ROOT


def _worker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framework.apps.cli", "worker", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            [str(BOT), "--redis", "redis://127.0.0.1:1/0", "--engine", "http://127.0.0.1:1"],
            "cannot reach Redis at redis://127.0.0.1:1/0",
        ),
        (
            [
                str(BOT),
                "--redis",
                "redis://127.0.0.1:1/0",
                "--engine",
                "http://x",
                "--capacity",
                "0",
            ],
            "--capacity must be at least 1",
        ),
        (
            ["no_such_bot.py", "--redis", "redis://127.0.0.1:1/0"],
            "no bot file at no_such_bot.py",
        ),
    ],
)
def test_a_mistake_is_one_line(args: list[str], said: str) -> None:
    done = _worker(*args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cantata worker: ") and said in lines[0]
