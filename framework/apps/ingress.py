"""``cantata serve --role ingress``: the fleet's stateless front door, until Ctrl-C or SIGTERM.

Webhooks in (SIP ``realtime.call.incoming``, Twilio's voice webhook), attach
jobs out to the fleet's Redis (:mod:`framework.fleet._ingress`). Secrets come
from the environment, never the command line: ``OPENAI_WEBHOOK_SECRET`` for
SIP, ``TWILIO_AUTH_TOKEN`` for Twilio (at least one), ``OPENAI_API_KEY`` for
the calls API. ``/healthz``, ``/livez`` and ``/metrics`` answer on the same
port, and on ``--ops-port`` too when given (a port the load balancer does
not expose).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from framework.fleet import FleetKeys


def serve_ingress(args: argparse.Namespace) -> int:
    """Runs an ingress; returns the exit status."""
    import trio

    from framework.fleet import DEFAULT_PREFIX, FleetKeys, RedisUnreachable, redacted

    def fail(message: str, status: int = 2) -> int:
        print(f"cantata serve: {message}", file=sys.stderr)
        return status

    if args.certfile or args.keyfile or args.workers != 1:
        return fail(
            "--certfile, --keyfile and --workers are the engine's: an ingress serves plain "
            "HTTP behind a load balancer that ends TLS; run more ingresses to scale."
        )
    webhook_secret = os.environ.get("OPENAI_WEBHOOK_SECRET") or None
    auth_token = os.environ.get("TWILIO_AUTH_TOKEN") or None
    if webhook_secret is None and auth_token is None:
        return fail(
            "the ingress needs OPENAI_WEBHOOK_SECRET (SIP calls), TWILIO_AUTH_TOKEN "
            "(Twilio calls), or both, in its environment."
        )
    redis_url = args.redis or os.environ.get("CANTATA_REDIS_URL")
    if not redis_url:
        return fail("the ingress needs the fleet's Redis: pass --redis redis://HOST:6379/0.")
    keys = FleetKeys(args.prefix or DEFAULT_PREFIX)
    try:
        trio.run(partial(_run, args, redis_url, keys, webhook_secret, auth_token))
    except RedisUnreachable as e:
        return fail(str(e), 1)
    except (Exception, BaseExceptionGroup) as e:
        if args.debug:
            raise
        from framework.apps.serve import _cannot_listen
        from framework.fleet import one_line

        while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
            e = e.exceptions[0]
        if isinstance(e, RedisUnreachable):
            return fail(str(e), 1)
        if isinstance(e, ValueError):  # no key for the hosted API, a bad --realtime-url
            return fail(one_line(e).removeprefix("ValueError: "), 2)
        return fail(_cannot_listen(e, args) if isinstance(e, OSError) else one_line(e), 1)
    print(f"Stopped. (fleet {keys.prefix!r} at {redacted(redis_url)})", flush=True)
    return 0


async def _run(
    args: argparse.Namespace,
    redis_url: str,
    keys: FleetKeys,
    webhook_secret: str | None,
    auth_token: str | None,
) -> None:
    from contextlib import AsyncExitStack

    import trio

    from framework.fleet import Ingress, open_redis, serve_asgi, serve_ops, watch_loop
    from framework.transport import open_rest_client, resolve_base_url

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with AsyncExitStack() as stack:
            redis = await stack.enter_async_context(open_redis(redis_url))
            rest = None
            if webhook_secret is not None:
                rest = await stack.enter_async_context(
                    open_rest_client(
                        resolve_base_url(args.realtime_url),
                        api_key=os.environ.get("OPENAI_API_KEY") or None,
                    )
                )
            ingress = Ingress(
                redis=redis,
                rest=rest,
                keys=keys,
                url=args.realtime_url,
                public_url=args.public_url,
                webhook_secret=webhook_secret,
                twilio_auth_token=auth_token,
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_loop, ingress.metrics)
                url = await nursery.start(
                    partial(serve_asgi, ingress, host=args.host, port=args.port)
                )
                print(f"Cantata ingress on {url} for fleet {keys.prefix!r}", flush=True)
                served = [n for n, on in (("SIP", rest), ("Twilio", auth_token)) if on]
                print(
                    f"  webhooks: {url}/sip/webhook, {url}/twilio/voice "
                    f"(serving {' and '.join(served)})",
                    flush=True,
                )
                if args.ops_port is not None:
                    ops_url = await nursery.start(
                        partial(serve_ops, ingress.ops, host=args.host, port=args.ops_port)
                    )
                    url = ops_url
                print(f"  health and metrics: {url}/healthz, {url}/metrics", flush=True)
                print("Ready. Press Ctrl-C to stop.", flush=True)
                async for _ in signals:
                    ingress.ops.draining = True
                    nursery.cancel_scope.cancel()
                    break
