"""The running call as its tool sees it: ``current_call``, progress and timeouts, ToolResult."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from framework.tools import (
    FunctionTool,
    ProgressReport,
    ToolCall,
    ToolImage,
    ToolResult,
    current_call,
    tool,
)

seen: list[ToolCall] = []


@tool(timeout=2.0)
async def steps(n: int, extend: bool = True) -> str:
    """Takes a second per step and says so."""
    call = current_call()
    assert call is not None
    seen.append(call)
    for done in range(1, n + 1):
        await trio.sleep(1)
        call.report_progress(done, n, extend_timeout=extend)
    return "done"


async def test_progress_restarts_the_timeout(autojump_clock: MockClock) -> None:
    reports: list[ProgressReport] = []
    start = trio.current_time()
    finished = await steps.run(
        {"n": 5, "extend": True}, call_id="call_1", on_progress=reports.append
    )
    took = trio.current_time() - start
    stopped = await steps.run({"n": 5, "extend": False}, on_progress=reports.append)
    assert (finished.status, took) == ("ok", 5.0)  # 5 s under a 2 s timeout
    assert [(r.progress, r.total) for r in reports[:5]] == [(n, 5) for n in range(1, 6)]
    assert stopped.status == "timeout"
    assert len(reports) == 6  # one report at 1 s, then the 2 s timeout
    assert (seen[0].call_id, seen[0].name, seen[0].timeout) == ("call_1", "steps", 2.0)


async def test_a_report_after_the_call_ended_is_dropped(autojump_clock: MockClock) -> None:
    reports: list[ProgressReport] = []
    seen.clear()
    await steps.run({"n": 0}, on_progress=reports.append)
    seen[0].report_progress(1, 1)  # a server's progress that arrives after its answer
    assert reports == []
    assert current_call() is None  # only while a call runs


async def test_a_tool_result_carries_images() -> None:
    image = ToolImage(data="AAAA", mime_type="image/png")

    async def draw(arguments: dict[str, object]) -> ToolResult:
        return ToolResult(text="drawn", images=(image,))

    outcome = await FunctionTool.from_schema("draw", "", {"type": "object"}, draw).invoke("{}")
    assert (outcome.status, outcome.output, outcome.images) == ("ok", "drawn", (image,))
    assert image.data_url == "data:image/png;base64,AAAA"
