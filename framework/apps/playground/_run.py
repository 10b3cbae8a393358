"""What ``cantata web BOT.py`` does: load the bot, pick the backend, serve the page."""

from __future__ import annotations

import signal

import trio
from rich.console import Console
from rich.markup import escape

from framework.apps.backend import open_backend
from framework.apps.runner import RunOptions, load_agent, rules_for
from framework.errors import BotError
from framework.plugin import load_plugin

from ._app import Playground, serve_playground

CLOSING_S = 3.0
"""After Ctrl-C, how long sessions of tabs already closed get to end in order."""


async def run_playground(
    options: RunOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 8780,
    console: Console | None = None,
) -> int:
    """Serves the playground for ``options.bot`` until Ctrl-C; returns the exit code."""
    console = console or Console(highlight=False, soft_wrap=True)
    try:
        agent, module = load_agent(options.bot, options.agent_name)
    except BotError as e:
        console.print(f"[red]cantata web:[/red] {escape(str(e))}")
        return 2
    rules = rules_for(options.bot, module, options.rules)
    async with open_backend(options.backend, rules=rules) as backend:
        url, described = backend.url, backend.described
        recorder = [load_plugin("recorder", directory=options.record)] if options.record else []
        try:
            playground = Playground(
                agent=agent,
                url=url,
                described=described,
                api_key=backend.api_key,
                plugins=recorder,
            )
        except ValueError as e:
            console.print(f"[red]cantata web:[/red] {escape(str(e))}.")
            return 2
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                try:
                    page = await nursery.start(
                        lambda task_status: serve_playground(
                            playground, host=host, port=port, task_status=task_status
                        )
                    )
                except OSError as e:
                    console.print(
                        f"[red]cantata web:[/red] cannot listen on {host}:{port} "
                        f"({escape(e.strerror or str(e))}); pass another --port (0: any free one)."
                    )
                    return 1
                console.print(f"[bold]{escape(agent.name)}[/bold] on {escape(described)}")
                console.print(f"Open {page} in a browser. Press Ctrl-C to stop.", markup=False)
                if host not in ("127.0.0.1", "localhost", "::1"):
                    console.print(
                        f"[yellow]Listening on {escape(host)}: anyone who can reach this "
                        "address can talk to the bot and answer its approvals.[/yellow]"
                    )
                async for _ in signals:
                    # Tabs already leaving finish their sessions (recordings written).
                    with trio.move_on_after(CLOSING_S):
                        await playground.wait_until_sessions(0)
                    nursery.cancel_scope.cancel()
                    break
    console.print("Stopped.")
    return 0
