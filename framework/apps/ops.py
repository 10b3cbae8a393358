"""``cantata serve --ops-port``: the engine's ``/healthz`` and ``/metrics`` on a port of their own.

The engine's own port serves the Realtime API and its REST endpoints, and
its routes belong to the engine; the operations endpoints listen beside it.
With ``--workers N`` only the primary process serves them, and what it
counts is its own: the sessions handed to helpers are theirs.
"""

from __future__ import annotations

import os
from functools import partial

import trio

from framework.engine import Engine
from framework.engine._workers import HELPER_FD
from framework.fleet import Ops, RoleMetrics, serve_ops, watch_loop


def engine_ops(engine: Engine) -> Ops:
    """The engine's operations: its sessions, connections and calls, sampled at each scrape."""
    metrics = RoleMetrics("engine")

    async def refresh() -> None:
        metrics.set_sessions(active=len(engine.sessions))
        metrics.set_engine(connections=len(engine.connections), calls=len(engine.rest.calls))

    return Ops(metrics=metrics, refresh=refresh)


def is_helper() -> bool:
    """Whether this process is a helper of ``--workers`` (the primary serves the ops port)."""
    return HELPER_FD in os.environ


async def serve_engine_ops(
    engine: Engine,
    *,
    host: str,
    port: int,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves the engine's operations until cancelled; reports the base URL."""
    ops = engine_ops(engine)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_loop, ops.metrics)
        url = await nursery.start(partial(serve_ops, ops, host=host, port=port))
        task_status.started(url)


async def start_engine_ops(nursery: trio.Nursery, engine: Engine, *, host: str, port: int) -> None:
    """Starts the engine's operations in ``nursery`` (not in a helper) and says where."""
    if is_helper():
        return
    url = await nursery.start(partial(serve_engine_ops, engine, host=host, port=port))
    print(f"Health and metrics on {url}/healthz and {url}/metrics", flush=True)
