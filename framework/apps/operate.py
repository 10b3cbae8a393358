"""``cantata ring``, ``cantata dtmf`` and ``cantata calls``: a running engine's operator API.

They play the parts a SIP trunk and a caller would, over the engine's
operator endpoints (behind its API key).
"""

from __future__ import annotations

import argparse
import sys


def operate(args: argparse.Namespace) -> int:
    """``cantata ring``, ``cantata dtmf`` and ``cantata calls``; returns the exit status."""
    import json
    import os

    import httpx2
    import trio

    from framework.engine import OperatorClient, OperatorError

    key = args.api_key or os.environ.get("CANTATA_API_KEY") or None

    async def run() -> object:
        async with httpx2.AsyncClient(timeout=30) as http:
            operator = OperatorClient(http, args.engine, api_key=key)
            if args.command == "ring":
                headers = [h.partition("=")[::2] for h in args.header or ()]
                return await operator.ring(
                    caller=args.caller, callee=args.callee, sip_headers=headers
                )
            if args.command == "dtmf":
                return {"sent": await operator.dtmf(args.target, args.digits)}
            return {"calls": await operator.calls(), "sessions": await operator.sessions()}

    try:
        answer = trio.run(run)
    except OperatorError as e:
        print(f"cantata {args.command}: {e}", file=sys.stderr)
        return 1
    except httpx2.TransportError as e:
        print(
            f"cantata {args.command}: cannot reach the engine at {args.engine} ({e}); "
            "start it with cantata serve, or pass --engine.",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(answer, indent=2))
    return 0
