"""The ``cantata`` command: one table of subcommands.

Each subcommand is a row of :data:`COMMANDS`: its name, its one-line help, a
function that adds its options to its parser, and where its handler lives
(``"module:function"``, imported only when that command runs, so that
``cantata serve`` does not pay for the runner's imports). A handler takes the
parsed arguments and returns the exit status. Adding a command is one
function for its options and one row.

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
* ``cantata ring`` / ``dtmf`` / ``calls``: a running engine's operator interface;
* ``cantata serve --role ingress``: a fleet's webhook front door; ``cantata fleet``:
  a fleet's workers, calls and queue, read from its Redis;
* ``cantata dial URL``: a simulated Twilio caller for a phone endpoint (a
  WAV said, keys pressed, what was heard written to a WAV);
* ``cantata worker BOT.py --redis URL``: a fleet worker (``framework.fleet``);
* ``cantata init NAME``: a new bot in ``NAME/`` (agent, rules, a test that
  passes);
* ``cantata plugins``: the installed plugins and what each contributes (one
  that fails to load is listed with its error, and the others still are);
* ``cantata protocol``: the protocol inventory, every client and server event
  this version speaks, with the SDK class name behind each GA wire type.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

import attrs

INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT), as shells report it."""


@attrs.frozen
class Command:
    """One subcommand of ``cantata``."""

    name: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    """Adds the command's arguments to its parser."""
    handler: str
    """``"module:function"``: the function takes the parsed arguments, returns the exit status."""

    def run(self, args: argparse.Namespace) -> int:
        module, _, function = self.handler.partition(":")
        handler: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), function
        )
        return int(handler(args))


# --- options, one function per command ------------------------------------------------


KEY_HELP = (
    "the key to send (default: $OPENAI_API_KEY for the hosted API, $CANTATA_API_KEY "
    "for any other --url; the in-process engine needs none)"
)


def _connect_options(cmd: argparse.ArgumentParser, *, parts: tuple[str, ...]) -> None:
    """Where a command connects, with which key, and the local engine's parts."""
    cmd.add_argument(
        "--engine",
        choices=["auto", "local", "openai"],
        default="auto",
        help="auto: the hosted API when there is a key for it, else the local engine in-process",
    )
    cmd.add_argument("--url", help="connect to this Realtime URL instead (cantata serve's, ...)")
    cmd.add_argument("--api-key", help=KEY_HELP)
    for kind in parts:
        cmd.add_argument(
            f"--{kind}",
            metavar="NAME",
            help=f"the local engine's {kind}, from a plugin (default: the installed one; "
            "builtin: the engine's own)",
        )


def _bot_options(cmd: argparse.ArgumentParser) -> None:
    """What ``run`` and ``console`` share."""
    cmd.add_argument("bot", help="the bot file (defines an Agent subclass)")
    cmd.add_argument("--agent", help="which agent of the file, by name")
    _connect_options(cmd, parts=("transcriber", "synthesizer", "vad"))
    cmd.add_argument(
        "--rules",
        help="rules file for the local engine's scripted brain "
        "(default: the bot's RULES, else BOT.toml beside it)",
    )
    cmd.add_argument(
        "--approve",
        choices=["ask", "yes", "no"],
        help="how approvals are decided (default: ask at a terminal, else no)",
    )


def _page_options(cmd: argparse.ArgumentParser) -> None:
    """Where the playground page is served (``web``, and ``run --web``)."""
    cmd.add_argument("--host", default="127.0.0.1", help="the page's address")
    cmd.add_argument("--port", type=int, default=8780, help="the page's port (0: any)")


def _run_options(cmd: argparse.ArgumentParser) -> None:
    _bot_options(cmd)
    cmd.add_argument("--web", action="store_true", help="serve the playground page instead")
    _page_options(cmd)
    cmd.add_argument(
        "--say", action="append", metavar="TEXT", help="a scripted user turn (repeatable)"
    )
    cmd.add_argument("--input-wav", metavar="FILE", help="user audio, streamed in real time")
    cmd.add_argument("--output-wav", metavar="FILE", help="write the reply audio here")
    cmd.add_argument(
        "--record", metavar="DIR", help="record the call: a stereo WAV and a JSON report"
    )


def _console_options(cmd: argparse.ArgumentParser) -> None:
    _bot_options(cmd)


def _web_options(cmd: argparse.ArgumentParser) -> None:
    _bot_options(cmd)
    _page_options(cmd)
    cmd.add_argument(
        "--record", metavar="DIR", help="record each call: a stereo WAV and a JSON report"
    )


def _transcribe_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("wav", nargs="?", help="the audio file (default: the microphone)")
    cmd.add_argument("--out", help="write captions here (.srt or .vtt)")
    _connect_options(cmd, parts=("transcriber", "vad"))
    cmd.add_argument("--language", help="the language spoken (ISO-639-1)")
    cmd.add_argument("--realtime", action="store_true", help="stream the file at its own pace")


def _serve_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    cmd.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    cmd.add_argument("--rules", help="TOML rules file for the scripted brain")
    cmd.add_argument(
        "--api-key",
        help="require this key from clients (default: $CANTATA_API_KEY, which ps does not show)",
    )
    cmd.add_argument("--certfile", help="serve TLS (wss://) with this PEM certificate chain")
    cmd.add_argument("--keyfile", help="the private key of --certfile (PEM)")
    cmd.add_argument(
        "--max-session-seconds",
        type=float,
        help="sessions end after this long (default 3600, the hosted API's limit; inf: never)",
    )
    cmd.add_argument(
        "--latency-ms", type=int, default=0, help="test knob: delay before every event sent"
    )
    cmd.add_argument(
        "--drop-after-events", type=int, help="test knob: drop each connection after N events"
    )
    for kind in ("brain", "transcriber", "synthesizer", "vad"):
        cmd.add_argument(
            f"--{kind}",
            metavar="NAME",
            help=f"a {kind} from an installed plugin (builtin: the engine's own)",
        )
    cmd.add_argument(
        "--webhook-url",
        help="POST a signed realtime.call.incoming webhook here for each call rung "
        "through the operator API (secret: $CANTATA_WEBHOOK_SECRET)",
    )
    cmd.add_argument(
        "--workers", type=int, default=1, help="processes serving sessions on the one port"
    )
    _fleet_serve_options(cmd)


_FLEET_REDIS = "the fleet's Redis (default: $CANTATA_REDIS_URL)"


def _fleet_options(cmd: argparse.ArgumentParser, redis_help: str = _FLEET_REDIS) -> None:
    """Where the fleet lives: its Redis and its key prefix."""
    cmd.add_argument("--redis", metavar="URL", help=redis_help)
    cmd.add_argument("--prefix", default="cantata", help="the fleet's Redis key prefix")


def _fleet_serve_options(cmd: argparse.ArgumentParser) -> None:
    """``cantata serve``'s fleet roles and operations endpoints."""
    cmd.add_argument(
        "--role",
        choices=("engine", "ingress"),
        default="engine",
        help="engine: the local Realtime engine; ingress: the fleet's webhook front door",
    )
    cmd.add_argument("--ops-port", type=int, help="serve /healthz and /metrics on this port")
    _fleet_options(
        cmd,
        "engine: share client secrets and calls with every engine using this Redis; "
        "ingress: the fleet's Redis (default: $CANTATA_REDIS_URL)",
    )
    cmd.add_argument(
        "--realtime-url",
        help="ingress: the Realtime server whose calls it accepts (default: the hosted API)",
    )
    cmd.add_argument(
        "--public-url",
        help="ingress: the base URL Twilio reaches it at (for signatures); engine with "
        "--redis: the ws:// URL other engines name for the calls it holds",
    )


def _fleet_status_options(cmd: argparse.ArgumentParser) -> None:
    _fleet_options(cmd)
    cmd.add_argument("--json", action="store_true", help="print the status as JSON")


def _operator_options(cmd: argparse.ArgumentParser) -> None:
    """What ``ring``, ``dtmf`` and ``calls`` share: where the engine is, and its key."""
    cmd.add_argument("--engine", default="http://127.0.0.1:8765", help="the engine's base URL")
    cmd.add_argument("--api-key", help="the engine's key (default: $CANTATA_API_KEY)")


def _ring_options(cmd: argparse.ArgumentParser) -> None:
    _operator_options(cmd)
    cmd.add_argument("--caller", help="the caller's SIP URI")
    cmd.add_argument("--callee", help="the called SIP URI")
    cmd.add_argument(
        "--header", action="append", metavar="NAME=VALUE", help="a SIP header (repeatable)"
    )


def _dtmf_options(cmd: argparse.ArgumentParser) -> None:
    _operator_options(cmd)
    cmd.add_argument("target", help="a session id (sess_...) or a call id (rtc_...)")
    cmd.add_argument("digits", help="keys to press: 0-9, *, # and A-D")


def _init_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("name", help="the bot's name, a Python module name (my_bot)")
    cmd.add_argument("--directory", metavar="DIR", help="where to create NAME/ (default: here)")


def _dial_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("url", help="the endpoint's base URL (http://127.0.0.1:8080)")
    cmd.add_argument("--wav", help="what the caller says (a WAV file, paced in real time)")
    cmd.add_argument("--digits", help="keys the caller presses after speaking (0-9, *, #)")
    cmd.add_argument("--record", metavar="FILE", help="write what the caller heard (WAV)")
    cmd.add_argument("--wait", type=float, default=3.0, help="seconds to listen first")
    cmd.add_argument(
        "--listen", type=float, default=30.0, help="seconds before the caller hangs up"
    )
    cmd.add_argument("--caller", default="+14155550100", help="the caller's number")
    cmd.add_argument("--callee", default="+14155550199", help="the number called")
    cmd.add_argument(
        "--auth-token", help="the endpoint's Twilio auth token (default: $TWILIO_AUTH_TOKEN)"
    )


def _no_options(cmd: argparse.ArgumentParser) -> None:
    pass


# --- the table ---------------------------------------------------------------------------

COMMANDS: tuple[Command, ...] = (
    Command(
        "run",
        "run a bot: scripted turns, a WAV file in, a WAV file out",
        _run_options,
        "framework.apps.runner:run_command",
    ),
    Command(
        "console",
        "talk to a bot interactively",
        _console_options,
        "framework.apps.runner:run_command",
    ),
    Command(
        "web",
        "talk to a bot in a browser page: transcript, tools, approvals, metrics",
        _web_options,
        "framework.apps.runner:run_command",
    ),
    Command(
        "transcribe",
        "captions for a WAV file",
        _transcribe_options,
        "framework.apps.transcribe:transcribe",
    ),
    Command("serve", "run the local Realtime engine", _serve_options, "framework.apps.serve:serve"),
    Command(
        "ring",
        "ring a simulated incoming SIP call on a running engine",
        _ring_options,
        "framework.apps.operate:operate",
    ),
    Command(
        "dtmf",
        "press keypad keys in a live session or call of a running engine",
        _dtmf_options,
        "framework.apps.operate:operate",
    ),
    Command(
        "calls",
        "list the calls and sessions of a running engine",
        _operator_options,
        "framework.apps.operate:operate",
    ),
    Command(
        "fleet",
        "show a fleet's workers, calls and queue",
        _fleet_status_options,
        "framework.apps.fleet:fleet_status_command",
    ),
    Command(
        "dial",
        "call a phone endpoint as a simulated Twilio caller",
        _dial_options,
        "framework.apps.dial:run_dial",
    ),
    Command(
        "worker",
        "serve calls from a fleet's Redis as one of its workers",
        lambda cmd: importlib.import_module("framework.apps.worker").worker_options(cmd),
        "framework.apps.worker:run_worker",
    ),
    Command(
        "init",
        "create a new bot: an agent, its rules and a test that passes",
        _init_options,
        "framework.apps.scaffold:init",
    ),
    Command("plugins", "list the installed plugins", _no_options, "framework.apps.listing:plugins"),
    Command(
        "protocol",
        "list the protocol's event types",
        _no_options,
        "framework.apps.listing:protocol_inventory",
    ),
)


def parser() -> argparse.ArgumentParser:
    """The ``cantata`` argument parser, with a subparser per row of :data:`COMMANDS`."""
    top = argparse.ArgumentParser(prog="cantata", description="Realtime voice and text agents.")
    top.add_argument("--version", action="version", version=f"cantata {_version()}")
    commands = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        cmd = commands.add_parser(command.name, help=command.help)
        command.options(cmd)
        cmd.add_argument(
            "--debug", action="store_true", help="log more, and show tracebacks of errors"
        )
        cmd.set_defaults(run=command.run)
    return top


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cantata")
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cantata`` console script.

    Every error ends as one line on stderr that says what to do, with a
    non-zero status (:mod:`framework.apps.advice`); ``--debug`` raises it
    instead, traceback and all. Ctrl-C exits quietly with status 130.
    """
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return INTERRUPTED
    except (Exception, BaseExceptionGroup) as raised:
        if isinstance(raised, BaseExceptionGroup) and raised.subgroup(KeyboardInterrupt):
            # Ctrl-C, whatever else ended beside it (two tasks each saw the
            # interrupt, or one stopped with SystemExit): the user asked to stop.
            return INTERRUPTED
        if args.debug:
            raise
        from framework.apps.advice import Context, advise
        from framework.errors import collapse

        error = collapse(raised) if isinstance(raised, BaseExceptionGroup) else raised
        if isinstance(error, KeyboardInterrupt):
            return INTERRUPTED
        status, line = advise(error, Context.of(args))
        print(f"cantata {args.command}: {line}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
