"""``cantata web BOT.py`` (and ``cantata run --web``) in a real subprocess, on loopback."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.engine.served import spawn

LIMIT_S = 60


def _recorded(directory: Path, session_id: str) -> tuple[dict[str, Any], int]:
    """The recorder's report of a session, and the size of its WAV file."""
    [report] = directory.glob(f"*-{session_id}.json")
    return orjson.loads(report.read_bytes()), report.with_suffix(".wav").stat().st_size


@pytest.mark.parametrize("command", [["web"], ["run", "--web"]])
async def test_cantata_web_serves_the_page_records_and_stops_on_ctrl_c(
    command: list[str], tmp_path: Path
) -> None:
    with trio.fail_after(LIMIT_S):
        args = [*command, "examples/weather_bot.py", "--engine", "local", "--port", "0"]
        args += ["--record", str(tmp_path)]
        async with spawn(*args) as served:
            line = await served.stdout.line_with("Open http://")
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            assert found is not None, line
            assert "WeatherBot on the local engine" in served.stdout.text
            page = found.group(0)
            async with httpx2.AsyncClient() as http:
                index = await http.get(page)
            assert index.status_code == 200 and b"Cantata playground" in index.content
            async with open_websocket_url("ws" + page.removeprefix("http") + "ws") as ws:
                hello = orjson.loads(await ws.get_message())
                assert hello["type"] == "hello" and hello["agent"] == "WeatherBot"
                await ws.send_message('{"type": "text", "text": "weather in Paris?"}')
                while True:
                    frame = await ws.get_message()
                    if isinstance(frame, bytes):
                        continue  # the reply's audio
                    message = orjson.loads(frame)
                    if message.get("kind") == "AssistantMessage":
                        break
                assert "sunny" in message["data"]["text"]
                session_id = hello["session_id"]
            served.process.send_signal(signal.SIGINT)
            assert await served.process.wait() == 0
            await served.stdout.line_with("Stopped.")
        assert "Traceback" not in served.stderr.text
        # The tab's session was recorded: its report names the turn and the tool.
        report, wav_bytes = _recorded(tmp_path, session_id)
        assert "get_weather" in str(report["tool_calls"])
        assert wav_bytes > 44  # more than a WAV header


async def test_a_busy_port_or_a_missing_bot_is_one_line_saying_what_to_do() -> None:
    with trio.fail_after(LIMIT_S):
        async with spawn("web", "examples/no_such_bot.py") as served:
            assert await served.process.wait() == 2
        assert "no bot file at examples/no_such_bot.py" in served.stdout.text
        assert "Traceback" not in served.stdout.text + served.stderr.text

        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        async with listener:
            args = ("web", "examples/weather_bot.py", "--engine", "local", "--port", str(port))
            async with spawn(*args) as served:
                assert await served.process.wait() == 1
        assert f"cannot listen on 127.0.0.1:{port}" in served.stdout.text
        assert "pass another --port" in served.stdout.text
        assert "Traceback" not in served.stdout.text + served.stderr.text
