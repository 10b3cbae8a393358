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


async def test_weather_bot_runs_tools_and_approvals() -> None:
    out = await _run("weather_bot.py")
    lines = out.splitlines()
    assert "assistant: Hello! Ask me about the weather.  [1.9 s of audio]" in lines
    assert 'tool:      get_weather({"city": "Paris"}) -> \'sunny and 21 degrees\' [ok]' in lines
    assert any(line.startswith("approval:  book_umbrella_delivery(") for line in lines)
    assert any(
        line.startswith("assistant: Done: an umbrella is on its way to 5 Rue Cler.")
        for line in lines
    )
    assert any(line.startswith("session:   10 items, 5 responses") for line in lines)


async def test_voice_bot_runs_speech_tools_mcp_and_approval() -> None:
    out = await _run("voice_bot.py")
    lines = out.splitlines()
    heard = [line.removeprefix("heard:     ") for line in lines if line.startswith("heard:")]
    assert heard == [
        "What is the weather in Paris",
        "What time is it in Tokyo",
        "Book an umbrella delivery to the office",
    ]
    assert 'tool:      get_weather({"city": "Paris"}) -> \'sunny and 21 degrees\' [ok]' in lines
    assert any(
        line.startswith('tool:      get_current_time({"timezone": "Asia/Tokyo"})') for line in lines
    )
    assert any(line.startswith("assistant: In Tokyo it is ") for line in lines)
    assert any(line.startswith("approval:  book_umbrella_delivery(") for line in lines)
    assert any(
        line.startswith("assistant: Done: an umbrella is on its way to the office.")
        for line in lines
    )
    spoken = EXAMPLES / "demo-assistant.wav"
    assert spoken.stat().st_size > 48000 * 5  # several seconds of the assistant's speech
