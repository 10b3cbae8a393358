"""The ``cantata`` command.

Subcommands grow with the framework; today ``cantata protocol`` prints the
protocol inventory: every client and server event this version speaks, with
the SDK class name behind each GA wire type.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cantata`` console script."""
    parser = argparse.ArgumentParser(prog="cantata", description="Realtime voice and text agents.")
    commands = parser.add_subparsers(dest="command", required=True)
    protocol_cmd = commands.add_parser("protocol", help="list the protocol's event types")
    protocol_cmd.set_defaults(handler=_protocol)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
