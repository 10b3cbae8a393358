"""``cantata worker BOT.py --redis URL``: a fleet worker, serving calls until drained.

It takes SIP calls off the fleet's jobs stream while it has free slots
(``--capacity``), attaches the bot to each by ``call_id`` on the Realtime
server (``--url``, or an engine's base URL with ``--engine``; the hosted API
by default), and keeps them alive across a dead worker (see
:mod:`framework.fleet`). A bot file may define ``async def on_call(call)``,
run with each call once its session is up. SIGTERM drains (``--grace-s``);
a second SIGTERM or Ctrl-C ends at once. ``--ops-port`` serves ``/healthz``
and ``/metrics``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def worker_options(cmd: argparse.ArgumentParser) -> None:
    """``cantata worker``'s options."""
    cmd.add_argument("bot", help="the bot file (defines an Agent subclass)")
    cmd.add_argument("--agent", help="which agent of the file, by name")
    cmd.add_argument("--redis", required=True, help="the fleet's Redis (redis://host:6379/0)")
    cmd.add_argument("--capacity", type=int, default=20, help="calls held at once")
    cmd.add_argument("--prefix", default="cantata", help="the fleet's Redis key prefix")
    where = cmd.add_mutually_exclusive_group()
    where.add_argument("--url", help="the Realtime URL of the calls (default: the hosted API)")
    where.add_argument(
        "--engine", metavar="URL", help="a cantata serve's base URL (http://127.0.0.1:8765)"
    )
    cmd.add_argument(
        "--api-key",
        help="the server's key (default: $OPENAI_API_KEY for the hosted API, "
        "$CANTATA_API_KEY for any other)",
    )
    cmd.add_argument(
        "--grace-s", type=float, default=30.0, help="on SIGTERM, how long calls may run on"
    )
    cmd.add_argument("--ops-host", default="127.0.0.1", help="where /healthz and /metrics listen")
    cmd.add_argument("--ops-port", type=int, help="serve /healthz and /metrics on this port")


def realtime_url(args: argparse.Namespace) -> str | None:
    """The Realtime URL the calls are on (``None``: the hosted API)."""
    if args.engine:
        parts = urlsplit(args.engine)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return str(urlunsplit((scheme, parts.netloc, "/v1/realtime", "", "")))
    return str(args.url) if args.url else None


def run_worker(args: argparse.Namespace) -> int:
    """``cantata worker``; returns the exit status."""
    import coredis
    import trio

    from framework.apps.backend import NoKey, api_key, is_hosted
    from framework.apps.runner import load_agent
    from framework.apps.serve import log_to_stderr
    from framework.errors import single_errors
    from framework.fleet import Worker

    if args.capacity < 1:
        print("cantata worker: --capacity must be at least 1", file=sys.stderr)
        return 2
    agent, module = load_agent(args.bot, args.agent)
    url = realtime_url(args)
    key = api_key(url, args.api_key)
    if is_hosted(url) and key is None:
        raise NoKey()
    log = log_to_stderr("cantata", "worker", debug=args.debug)
    # An instance the file made serves every call; a class makes one agent per call.
    source: Any = agent if getattr(module, "agent", None) is agent else type(agent)
    worker = Worker(
        agent=source,
        redis_url=args.redis,
        capacity=args.capacity,
        url=url,
        api_key=key,
        prefix=args.prefix,
        grace_s=args.grace_s,
        on_call=getattr(module, "on_call", None),
        ops_host=args.ops_host,
        ops_port=args.ops_port,
    )

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
            log.info(
                "worker %s: %d slots, calls on %s, jobs from %s%s",
                worker.worker_id,
                worker.capacity,
                url or "the hosted API",
                args.redis,
                f", ops at {worker.ops_url}" if worker.ops_url else "",
            )

    try:
        with single_errors():
            trio.run(run)
    except coredis.exceptions.ConnectionError as e:
        print(
            f"cantata worker: cannot reach Redis at {args.redis} ({e}); start it, or pass "
            "--redis with its URL.",
            file=sys.stderr,
        )
        return 1
    return 0
