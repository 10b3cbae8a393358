"""``cantata fleet``: a fleet's workers, calls and jobs, read from its Redis.

One read, printed as a table (or ``--json``); a Redis that does not answer
is one line and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def fleet_status_command(args: argparse.Namespace) -> int:
    """``cantata fleet``; returns the exit status."""
    import trio

    from framework.fleet import (
        FleetKeys,
        FleetStatus,
        RedisUnreachable,
        open_redis,
        read_status,
        redacted,
    )

    url = args.redis or os.environ.get("CANTATA_REDIS_URL") or "redis://127.0.0.1:6379/0"

    async def run() -> FleetStatus:
        with trio.fail_after(30):
            async with open_redis(url) as redis:
                return await read_status(redis, FleetKeys(args.prefix))

    try:
        status = trio.run(run)
    except RedisUnreachable as e:
        print(f"cantata fleet: {e}", file=sys.stderr)
        return 1
    except trio.TooSlowError:
        print(f"cantata fleet: Redis at {redacted(url)} did not answer in 30 s.", file=sys.stderr)
        return 1
    print(json.dumps(status.to_json(), indent=2) if args.json else status.render())
    return 0
