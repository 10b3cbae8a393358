"""``cantata serve``: the local Realtime engine alone, for any client, until Ctrl-C.

Startup problems (a busy port, a bad host, TLS files that do not load, a bad
rules file) are one line that says what to do; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys


class _OneLine(logging.Formatter):
    """Log records as single lines: the traceback of a record is left to ``--debug``."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record).splitlines()[0]


def log_to_stderr(logger: str, command: str, *, debug: bool) -> logging.Logger:
    """Sends a command's log to stderr, each record one line prefixed by the command.

    ``debug``: every level, with tracebacks; otherwise INFO and up, one line each.
    Returns the logger.
    """
    handler = logging.StreamHandler()
    formatter = logging.Formatter if debug else _OneLine
    handler.setFormatter(formatter(f"cantata {command}: %(message)s"))
    log = logging.getLogger(logger)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    return log


def _cannot_listen(error: BaseException, args: argparse.Namespace) -> str:
    """What to do about an error that stopped the engine from listening, in one line."""
    import errno
    import socket
    import ssl

    from framework.engine import SharedStoreError

    where = f"{args.host}:{args.port}"
    if isinstance(error, SharedStoreError):
        return str(error)
    if isinstance(error, socket.gaierror):
        return (
            f"cannot listen on {args.host!r}: no such host ({error.strerror}); "
            "pass --host with an address of this machine, such as 127.0.0.1."
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"--certfile {args.certfile} and --keyfile {args.keyfile} are not a PEM "
            f"certificate and its private key ({error.reason or error})."
        )
    if isinstance(error, OSError) and error.filename is not None:
        return f"cannot read {error.filename}: {error.strerror}."
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is in use; stop what uses it, or pass "
            "another --port (0 picks a free one)."
        )
    if isinstance(error, OSError) and error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: {args.host} is not an address of this machine; "
            "pass --host 127.0.0.1, or 0.0.0.0 for every interface."
        )
    if isinstance(error, OSError) and error.errno == errno.EACCES:
        return (
            f"cannot listen on {where}: permission denied (ports below 1024 need "
            "privileges); pass another --port."
        )
    detail = f"{type(error).__name__}: {error}".splitlines()[0]
    return f"stopped: {detail} (run with --debug for the traceback)."


def serve(args: argparse.Namespace) -> int:
    """``cantata serve``: the local engine on a port until Ctrl-C; returns the exit status."""
    import os

    import trio

    from framework.apps.backend import ENGINE_KEY
    from framework.engine import Engine, Rules, RulesError, serve_engine
    from framework.errors import PluginError
    from framework.plugin import choose_engine_parts
    from framework.testing import InstalledMcpClient

    def fail(message: str) -> int:
        print(f"cantata serve: {message}", file=sys.stderr)
        return 2

    if args.role == "ingress":
        from framework.apps.ingress import serve_ingress

        return serve_ingress(args)
    if (args.certfile is None) != (args.keyfile is None):
        return fail("TLS needs both --certfile and --keyfile.")
    if args.workers < 1 or (args.workers > 1 and args.certfile):
        return fail("--workers needs a number from 1, and plain ws:// (no --certfile) above 1.")
    if args.webhook_url and not os.environ.get("CANTATA_WEBHOOK_SECRET"):
        return fail(
            "--webhook-url needs the signing secret in CANTATA_WEBHOOK_SECRET "
            "(a whsec_... value, as the receiver's webhooks.unwrap expects)."
        )
    try:
        rules = Rules.from_file(args.rules) if args.rules else None
    except RulesError as e:
        return fail(str(e))
    try:
        # Each part named, else the installed default (the speech extra's voice and ears).
        chosen = choose_engine_parts(
            {kind: getattr(args, kind) for kind in ("brain", "transcriber", "synthesizer", "vad")},
            phrases=rules.phrases if rules is not None else (),
        )
    except PluginError as e:
        return fail(str(e))
    engine = Engine(
        rules=rules,
        # From the environment, a key stays out of the process list.
        api_key=args.api_key or os.environ.get(ENGINE_KEY) or None,
        **{c.kind: c.part for c in chosen},
        # The installed MCP plugin's client runs hosted MCP tools; the engine never looks.
        mcp_client=InstalledMcpClient(),
        max_session_s=args.max_session_seconds,
        latency_ms=args.latency_ms,
        drop_after_events=args.drop_after_events,
        webhook_url=args.webhook_url,
        webhook_secret=os.environ.get("CANTATA_WEBHOOK_SECRET") or None,
    )
    log_to_stderr("cantata.engine", "serve", debug=args.debug)

    async def run() -> None:
        # Ctrl-C (or SIGTERM) cancels the server's nursery: connections close and
        # the process exits 0 instead of printing a KeyboardInterrupt traceback.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                url = await nursery.start(
                    lambda task_status: serve_engine(
                        engine,
                        host=args.host,
                        port=args.port,
                        certfile=args.certfile,
                        keyfile=args.keyfile,
                        workers=args.workers,
                        redis=args.redis,
                        public_url=args.public_url,
                        task_status=task_status,
                    )
                )
                print(engine.banner(url), flush=True)
                if args.ops_port is not None:
                    from framework.apps.ops import start_engine_ops

                    await start_engine_ops(nursery, engine, host=args.host, port=args.ops_port)
                print("Ready. Press Ctrl-C to stop.", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break
        print("Stopped.", flush=True)

    try:
        trio.run(run)
    except Exception as e:
        if args.debug:
            raise
        while isinstance(e, ExceptionGroup) and len(e.exceptions) == 1:
            e = e.exceptions[0]
        print(f"cantata serve: {_cannot_listen(e, args)}", file=sys.stderr)
        return 1
    return 0
