"""Helpers for the MCP tests: real servers started the way users start them.

``serve_everything`` runs ``@modelcontextprotocol/server-everything`` over
streamable HTTP or SSE as a child process on a loopback port it picks
itself (the preload in ``js/loopback.mjs`` keeps it on loopback and prints
the port). ``opened`` opens a plugin as a session would, with or without
someone to answer elicitations, and ``run_tool`` runs one of its tools as
the session's tool actor does, collecting progress.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

import attrs
import hypercorn.trio
import trio
from hypercorn.config import Config

from framework.plugin import Contribution, Plugin, PluginContext
from framework.runtime import ElicitationAnswer, ElicitationRequest
from framework.tools import FunctionTool, ProgressReport, ToolOutcome

LOOPBACK = Path(__file__).with_name("js") / "loopback.mjs"
_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
STARTUP_TIMEOUT_S = 30


@asynccontextmanager
async def serve_everything(
    script: Path, transport: Literal["streamableHttp", "sse"]
) -> AsyncIterator[str]:
    """Runs server-everything over HTTP; yields its endpoint URL."""
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            _run_server, ["node", "--import", str(LOOPBACK), str(script), transport]
        )
        assert process.stderr is not None
        seen = b""
        with trio.fail_after(STARTUP_TIMEOUT_S):
            while (found := _LISTENING.search(seen)) is None:
                chunk = await process.stderr.receive_some()
                assert chunk, f"server-everything ended before listening: {seen.decode()}"
                seen += chunk
        nursery.start_soon(_drain, process.stderr)
        path = "mcp" if transport == "streamableHttp" else "sse"
        try:
            yield f"http://127.0.0.1:{int(found.group(1))}/{path}"
        finally:
            process.terminate()
            nursery.cancel_scope.deadline = trio.current_time() + 5


async def _run_server(command: list[str], *, task_status: trio.TaskStatus[trio.Process]) -> None:
    """``trio.run_process`` with stderr piped, started in a nursery."""
    await trio.run_process(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={"PORT": "0", "PATH": os.environ.get("PATH", "")},
        check=False,
        task_status=task_status,
    )


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some():
        pass


@asynccontextmanager
async def serve_asgi(app: Any, listener: socket.socket | None = None) -> AsyncIterator[str]:
    """Serves an ASGI app with hypercorn's trio worker on loopback; yields its base URL.

    Args:
        app: The app (an MCP server's ``streamable_http_app()``, say).
        listener: A socket already bound, when the app must know its URL first;
            by default a free loopback port.
    """
    config = Config()
    # Hypercorn owns (and closes) a socket it is handed.
    config.bind = [f"fd://{listener.detach()}"] if listener is not None else ["127.0.0.1:0"]
    config.graceful_timeout = 1.0
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        serve = partial(hypercorn.trio.serve, app, config, shutdown_trigger=stop.wait)
        binds: list[str] = await nursery.start(serve)
        try:
            yield binds[0]
        finally:
            stop.set()


@attrs.define
class Asked:
    """An elicitor for tests: records each question and answers with ``answer``."""

    answer: Callable[[ElicitationRequest], Awaitable[ElicitationAnswer]]
    questions: list[ElicitationRequest] = attrs.Factory(list)

    async def __call__(self, request: ElicitationRequest) -> ElicitationAnswer:
        self.questions.append(request)
        return await self.answer(request)


def answering(content: dict[str, Any] | None = None, action: str = "accept") -> Asked:
    async def answer(request: ElicitationRequest) -> ElicitationAnswer:
        return ElicitationAnswer(action, content)  # type: ignore[arg-type]

    return Asked(answer)


@asynccontextmanager
async def opened(
    plugin: Plugin,
    *,
    elicit: Callable[[ElicitationRequest], Awaitable[ElicitationAnswer]] | None = None,
    changed: Callable[[], None] = lambda: None,
) -> AsyncIterator[Contribution]:
    """The plugin opened as a session opens it."""
    async with plugin.open_in(PluginContext(changed=changed, elicit=elicit)) as contribution:
        yield contribution


def tools_of(contribution: Contribution) -> dict[str, FunctionTool]:
    return {t.name: t for t in contribution.tools()}


async def run_tool(
    contribution: Contribution,
    name: str,
    arguments: dict[str, Any] | None = None,
    *,
    progress: list[ProgressReport] | None = None,
    default_timeout: float | None = 30.0,
) -> ToolOutcome:
    """Runs a tool the way the session's tool actor does (parse once, then run)."""
    tool = tools_of(contribution)[name]
    values = tool.parse_arguments(json.dumps(arguments or {}))
    return await tool.run(
        values,
        default_timeout=default_timeout,
        call_id=f"call_{name}",
        on_progress=progress.append if progress is not None else None,
    )
