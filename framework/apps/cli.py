"""The ``cantata`` command.

* ``cantata run BOT.py``: a bot, against the hosted API when a key is set,
  else against the local engine started in-process; scripted turns with
  ``--say``, a WAV file as the microphone, the reply written to a WAV file;
* ``cantata console BOT.py``: the same, interactive (type, or talk when a
  microphone is present);
* ``cantata web BOT.py`` (or ``cantata run --web``): the playground, a page
  in the browser to talk to the bot and watch every turn;
* ``cantata transcribe FILE.wav``: captions for a WAV file (a transcription
  session), printed as they come and written to ``--out`` (.srt or .vtt);
* ``cantata serve``: the local Realtime engine alone, for any client;
* ``cantata plugins``: the installed plugins and what each contributes (one
  that fails to load is listed with its error, and the others still are);
* ``cantata protocol``: the protocol inventory, every client and server event
  this version speaks, with the SDK class name behind each GA wire type.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any


def _protocol(_: argparse.Namespace) -> int:
    from framework import protocol

    # The legacy transcription-session events are listed apart from the GA ones.
    legacy = {"transcription_session.update", "transcription_session.updated"}
    for title, table in (
        ("client events", protocol.CLIENT_EVENT_TYPES),
        ("server events", protocol.SERVER_EVENT_TYPES),
    ):
        ga = {t: c for t, c in table.items() if t not in legacy}
        print(f"{title} ({len(ga)} GA):")
        width = max(map(len, table))
        for wire_type, cls in sorted(ga.items()):
            print(f"  {wire_type:<{width}}  {cls.__name__}")
        for wire_type in sorted(set(table) & legacy):
            print(f"  {wire_type:<{width}}  {table[wire_type].__name__} (legacy, beta protocol)")
    public = [name for name in dir(protocol) if not name.startswith("_")]
    print(f"{len(public)} public names in framework.protocol")
    return 0


class _OneLine(logging.Formatter):
    """Log records as single lines: the traceback of a record is left to ``--debug``."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record).splitlines()[0]


def _cannot_listen(error: BaseException, args: argparse.Namespace) -> str:
    """What to do about an error that stopped the engine from listening, in one line."""
    import errno
    import socket
    import ssl

    where = f"{args.host}:{args.port}"
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


def _serve(args: argparse.Namespace) -> int:
    import os

    import trio

    from framework.engine import Engine, Rules, RulesError, serve_engine
    from framework.plugin import engine_part
    from framework.testing import InstalledMcpClient

    def fail(message: str) -> int:
        print(f"cantata serve: {message}", file=sys.stderr)
        return 2

    if (args.certfile is None) != (args.keyfile is None):
        return fail("TLS needs both --certfile and --keyfile.")
    if args.webhook_url and not os.environ.get("CANTATA_WEBHOOK_SECRET"):
        return fail(
            "--webhook-url needs the signing secret in CANTATA_WEBHOOK_SECRET "
            "(a whsec_... value, as the receiver's webhooks.unwrap expects)."
        )
    try:
        rules = Rules.from_file(args.rules) if args.rules else None
    except RulesError as e:
        return fail(str(e))
    parts: dict[str, object] = {}
    for kind in ("brain", "transcriber", "synthesizer", "vad"):
        name = getattr(args, kind)
        if name is None:
            continue
        try:
            parts[kind] = engine_part(kind, name)
        except LookupError as e:
            return fail(str(e))
    engine = Engine(
        rules=rules,
        # From the environment, a key stays out of the process list.
        api_key=args.api_key or os.environ.get("CANTATA_API_KEY") or None,
        **parts,  # type: ignore[arg-type]
        # The installed MCP plugin's client runs hosted MCP tools; the engine never looks.
        mcp_client=InstalledMcpClient(),
        max_session_s=args.max_session_seconds,
        latency_ms=args.latency_ms,
        drop_after_events=args.drop_after_events,
        webhook_url=args.webhook_url,
        webhook_secret=os.environ.get("CANTATA_WEBHOOK_SECRET") or None,
    )
    handler = logging.StreamHandler()
    formatter = logging.Formatter if args.debug else _OneLine
    handler.setFormatter(formatter("cantata serve: %(message)s"))
    log = logging.getLogger("cantata.engine")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.debug else logging.INFO)
    log.propagate = False

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
                        task_status=task_status,
                    )
                )
                print(engine.banner(url), flush=True)
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


def _operate(args: argparse.Namespace) -> int:
    """``cantata ring``, ``cantata dtmf`` and ``cantata calls``: a running engine's operator API."""
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


def _run_options(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from framework.apps.runner import RunOptions

    approve: Any = args.approve or ("ask" if sys.stdin.isatty() else "no")
    return RunOptions(
        bot=Path(args.bot),
        agent_name=args.agent,
        engine=args.engine,
        url=args.url,
        rules=args.rules,
        say=tuple(getattr(args, "say", None) or ()),
        input_wav=Path(args.input_wav) if getattr(args, "input_wav", None) else None,
        output_wav=Path(args.output_wav) if getattr(args, "output_wav", None) else None,
        record=Path(args.record) if getattr(args, "record", None) else None,
        approve=approve,
        transcriber=args.transcriber,
        synthesizer=args.synthesizer,
        vad=args.vad,
    )


def _run(args: argparse.Namespace) -> int:
    import trio

    from framework.apps.runner import console_bot, run_bot

    options = _run_options(args)
    runner = console_bot if args.command == "console" else run_bot
    if args.command == "web" or getattr(args, "web", False):
        from functools import partial

        from framework.apps.playground import run_playground

        runner = partial(run_playground, host=args.host, port=args.port)
    try:
        return trio.run(runner, options)
    except KeyboardInterrupt:
        return 130
    except LookupError as e:
        print(f"cantata {args.command}: {e}", file=sys.stderr)
        return 2


def _transcribe(args: argparse.Namespace) -> int:
    from framework.apps.transcribe import transcribe

    return transcribe(args)


def _plugins(_: argparse.Namespace) -> int:
    from framework.plugin import installed_plugins

    found = installed_plugins()
    if not found:
        print("No plugins are installed (entry-point group cantata.plugins).")
        return 0
    failed = 0
    for entry in found:
        if entry.plugin is None:
            failed += 1
            print(f"{entry.name}  [failed to load]  {entry.source}")
            print(f"    error: {entry.error}")
            continue
        print(f"{entry.name}  {entry.source}")
        try:
            contributes = entry.plugin.describe()
        except Exception as e:
            print(f"    error describing it: {type(e).__name__}: {e}")
            continue
        for kind, names in contributes.items():
            print(f"    {kind}: {', '.join(names) if names else '-'}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cantata`` console script."""
    parser = argparse.ArgumentParser(prog="cantata", description="Realtime voice and text agents.")
    commands = parser.add_subparsers(dest="command", required=True)

    for name, help_text in (
        ("run", "run a bot: scripted turns, a WAV file in, a WAV file out"),
        ("console", "talk to a bot interactively"),
        ("web", "talk to a bot in a browser page: transcript, tools, approvals, metrics"),
    ):
        cmd = commands.add_parser(name, help=help_text)
        cmd.add_argument("bot", help="the bot file (defines an Agent subclass)")
        cmd.add_argument("--agent", help="which agent of the file, by name")
        cmd.add_argument(
            "--engine",
            choices=["auto", "local", "openai"],
            default="auto",
            help="auto: the hosted API when OPENAI_API_KEY is set, else the local engine",
        )
        cmd.add_argument("--url", help="connect to this Realtime URL instead")
        cmd.add_argument("--rules", help="rules file for the local engine's scripted brain")
        cmd.add_argument(
            "--approve",
            choices=["ask", "yes", "no"],
            help="how approvals are decided (default: ask at a terminal, else no)",
        )
        for kind in ("transcriber", "synthesizer", "vad"):
            cmd.add_argument(f"--{kind}", metavar="NAME", help=f"local engine {kind} (plugin)")
        if name in ("run", "web"):
            cmd.add_argument("--host", default="127.0.0.1", help="the page's address")
            cmd.add_argument("--port", type=int, default=8780, help="the page's port (0: any)")
            cmd.add_argument(
                "--record", metavar="DIR", help="record the call: a stereo WAV and a JSON report"
            )
        if name == "run":
            cmd.add_argument("--web", action="store_true", help="serve the playground page")
            cmd.add_argument(
                "--say", action="append", metavar="TEXT", help="a scripted user turn (repeatable)"
            )
            cmd.add_argument(
                "--input-wav", metavar="FILE", help="user audio, streamed in real time"
            )
            cmd.add_argument("--output-wav", metavar="FILE", help="write the reply audio here")
        cmd.set_defaults(handler=_run)

    transcribe_cmd = commands.add_parser("transcribe", help="captions for a WAV file")
    transcribe_cmd.add_argument("wav", help="the audio file")
    transcribe_cmd.add_argument("--out", help="write captions here (.srt or .vtt)")
    transcribe_cmd.add_argument("--url", help="a Realtime server to use")
    transcribe_cmd.add_argument("--engine", choices=["auto", "local", "openai"], default="auto")
    transcribe_cmd.add_argument("--language", help="the language spoken (ISO-639-1)")
    transcribe_cmd.add_argument("--transcriber", help="local engine transcriber (plugin)")
    transcribe_cmd.add_argument("--vad", help="local engine VAD (plugin)")
    transcribe_cmd.add_argument(
        "--realtime", action="store_true", help="stream the file at its own pace"
    )
    transcribe_cmd.set_defaults(handler=_transcribe)

    serve_cmd = commands.add_parser("serve", help="run the local Realtime engine")
    serve_cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve_cmd.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    serve_cmd.add_argument("--rules", help="TOML rules file for the scripted brain")
    serve_cmd.add_argument(
        "--api-key",
        help="require this key from clients (default: $CANTATA_API_KEY, which ps does not show)",
    )
    serve_cmd.add_argument("--certfile", help="serve TLS (wss://) with this PEM certificate chain")
    serve_cmd.add_argument("--keyfile", help="the private key of --certfile (PEM)")
    serve_cmd.add_argument(
        "--debug", action="store_true", help="log more, with tracebacks, and raise startup errors"
    )
    serve_cmd.add_argument(
        "--max-session-seconds",
        type=float,
        help="sessions end after this long (default 3600, the hosted API's limit; inf: never)",
    )
    serve_cmd.add_argument(
        "--latency-ms", type=int, default=0, help="test knob: delay before every event sent"
    )
    serve_cmd.add_argument(
        "--drop-after-events", type=int, help="test knob: drop each connection after N events"
    )
    for kind in ("brain", "transcriber", "synthesizer", "vad"):
        serve_cmd.add_argument(
            f"--{kind}", metavar="NAME", help=f"a {kind} from an installed plugin"
        )
    serve_cmd.add_argument(
        "--webhook-url",
        help="POST a signed realtime.call.incoming webhook here for each call rung "
        "through the operator API (secret: $CANTATA_WEBHOOK_SECRET)",
    )
    serve_cmd.set_defaults(handler=_serve)

    for name, help_text in (
        ("ring", "ring a simulated incoming SIP call on a running engine"),
        ("dtmf", "press keypad keys in a live session or call of a running engine"),
        ("calls", "list the calls and sessions of a running engine"),
    ):
        cmd = commands.add_parser(name, help=help_text)
        cmd.add_argument("--engine", default="http://127.0.0.1:8765", help="the engine's base URL")
        cmd.add_argument("--api-key", help="the engine's key (default: $CANTATA_API_KEY)")
        if name == "ring":
            cmd.add_argument("--caller", help="the caller's SIP URI")
            cmd.add_argument("--callee", help="the called SIP URI")
            cmd.add_argument(
                "--header", action="append", metavar="NAME=VALUE", help="a SIP header (repeatable)"
            )
        if name == "dtmf":
            cmd.add_argument("target", help="a session id (sess_...) or a call id (rtc_...)")
            cmd.add_argument("digits", help="keys to press: 0-9, *, # and A-D")
        cmd.set_defaults(handler=_operate)

    plugins_cmd = commands.add_parser("plugins", help="list the installed plugins")
    plugins_cmd.set_defaults(handler=_plugins)

    protocol_cmd = commands.add_parser("protocol", help="list the protocol's event types")
    protocol_cmd.set_defaults(handler=_protocol)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
