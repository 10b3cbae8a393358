"""The playground on loopback for tests: in a thread of its own, or in the test's trio run.

Browser tests drive Chromium through Playwright's synchronous API, which runs
its own event loop; the playground and the engine then run in a second
thread under ``trio.run``, and the test talks to them over loopback only.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from framework.agent import Agent
from framework.apps.playground import Playground, serve_playground
from framework.plugin import Plugin
from framework.testing import run_engine

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("CANTATA_SCREENSHOTS", ROOT / ".screenshots"))
"""Where the browser tests save what the page looked like (left for people to look at)."""
START_S = 60.0


@asynccontextmanager
async def open_playground(
    agent: Agent, rules: Any = None, *, plugins: Sequence[Plugin] = (), **engine: Any
) -> AsyncIterator[tuple[str, Playground]]:
    """The engine and a playground in front of it; yields the page's URL and the app."""
    async with run_engine(rules, **engine) as url, trio.open_nursery() as nursery:
        playground = Playground(
            agent=agent,
            url=url,
            described="the local engine (test)",
            api_key=engine.get("api_key"),  # an engine with a key: the playground has it too
            plugins=list(plugins),
        )
        page = await nursery.start(partial(serve_playground, playground, port=0))
        yield page, playground
        nursery.cancel_scope.cancel()


@contextmanager
def playground_thread(
    agent: Agent, rules: Any = None, *, plugins: Sequence[Plugin] = (), **engine: Any
) -> Iterator[str]:
    """:func:`open_playground` in a thread of its own; yields the page's URL."""
    started: queue.Queue[tuple[str, trio.lowlevel.TrioToken, trio.Event] | BaseException] = (
        queue.Queue()
    )

    async def main() -> None:
        try:
            async with open_playground(agent, rules, plugins=plugins, **engine) as (page, _):
                stop = trio.Event()
                started.put((page, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()
        except BaseException as e:
            started.put(e)
            raise

    thread = threading.Thread(target=lambda: trio.run(main), daemon=True)
    thread.start()
    got = started.get(timeout=START_S)
    if isinstance(got, BaseException):
        raise got
    page, token, stop = got
    try:
        yield page
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the playground did not stop within 30 s"


def chromium() -> str:
    """The system's Chromium (``CANTATA_CHROMIUM`` or ``chromium`` on PATH), or a skip saying so."""
    path = os.environ.get("CANTATA_CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.skip("no Chromium here: install Debian's chromium (apt-get install chromium)")
    return path


CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    # Nothing but loopback is reachable here: no background calls out.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",  # microphone permission granted without a prompt
    "--use-fake-device-for-media-stream",
]
