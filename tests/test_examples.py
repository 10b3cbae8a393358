"""Smoke tests: every example runs against the local engine and says what it should."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


async def _run(script: str) -> str:
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, str(EXAMPLES / script)], capture_stdout=True, capture_stderr=True
        )
    return result.stdout.decode()


async def test_engine_tour_talks_and_calls_the_tool() -> None:
    out = await _run("engine_tour.py")
    lines = out.splitlines()
    assert "assistant: Hello! Ask me about the weather." in out
    assert 'tool:      get_weather({"city": "Paris"}) -> \'sunny and 21 degrees\'' in lines
    assert any(line.startswith("assistant: In Paris it is sunny and 21 degrees.") for line in lines)
    assert out.count("(completed,") == 2
