"""``cantata protocol`` and ``cantata plugins``: what this installation speaks and holds."""

from __future__ import annotations

import argparse


def protocol_inventory(_: argparse.Namespace) -> int:
    """``cantata protocol``: every client and server event, with its SDK class name."""
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


def plugins(_: argparse.Namespace) -> int:
    """``cantata plugins``: the installed plugins and what each contributes."""
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
