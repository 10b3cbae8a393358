"""Running a bot file: what ``cantata run`` and ``cantata console`` do.

A bot file is a Python file that defines an :class:`~framework.agent.Agent`
subclass (or an ``agent`` instance). The runner loads it, picks the backend
(:mod:`framework.apps.backend`: the hosted API when there is a key for it,
a server by ``--url``, else the local engine started in-process with the
bot's rules and the installed speech parts), says in one line where it runs
and with what, opens the session, and drives it:

* ``cantata run BOT.py --say TEXT`` (repeatable) and ``--input-wav FILE``:
  scripted turns and a WAV file as the microphone, the reply audio to
  ``--output-wav`` or a playback clock;
* ``cantata console BOT.py``, and ``cantata run BOT.py`` with no turns: the
  terminal, typed (and spoken when there is a microphone), the reply played
  on the speaker when there is one.

The local engine's rules, in this order: ``--rules FILE``; the bot file's
``RULES`` (a path, relative to the bot file, or TOML text); ``BOT.toml``
beside the bot file (``weather_bot.py`` -> ``weather_bot.toml``); else the
engine's built-in rules.

Everything a user can get wrong is checked before the session starts (the
bot file, its rules, the WAV files, the key), so a mistake costs no session;
the CLI turns each error into one line (:mod:`framework.apps.advice`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio
from rich.console import Console
from rich.markup import escape

from framework.agent import Agent
from framework.apps.backend import BackendChoice, open_backend
from framework.apps.display import Approve, Display, watch
from framework.audio import AudioDeviceUnavailable, AudioSink, ClockSink
from framework.errors import BotError
from framework.plugin import load_plugin
from framework.runtime import Session, open_session


def load_agent(path: str | Path, name: str | None = None) -> tuple[Agent, Any]:
    """The agent a bot file defines, and the file's module.

    Picks, in order: the class or instance named ``name``; a module-level
    ``agent`` instance; the one ``Agent`` subclass the file defines, or of
    several, the one that none of the others hands off to.

    Raises:
        BotError: the file is missing, fails to import, does not say which
            agent to run, or its agent cannot be made.
    """
    path = Path(path)
    if not path.is_file():
        raise BotError(f"no bot file at {path}; pass the path of a .py file that defines an Agent")
    module_name = f"cantata_bot_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BotError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise BotError(f"{path} failed to import: {type(e).__name__}: {e}") from e
    if name is not None:
        found = getattr(module, name, None)
        if found is None:
            raise BotError(f"{path} has no {name!r}")
        return _as_agent(found, path), module
    instance = getattr(module, "agent", None)
    if isinstance(instance, Agent):
        return instance, module
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Agent)
        and value is not Agent
        and value.__module__ == module_name
    ]
    if len(classes) > 1:
        # Agents that hand off to each other: the one no other hands off to.
        targets = {type(h) for c in classes for h in _as_agent(c, path).handoffs}
        roots = [c for c in classes if c not in targets]
        if len(roots) == 1:
            classes = roots
    if len(classes) != 1:
        if not classes:
            raise BotError(
                f"{path} defines no agent: add a class that subclasses framework.Agent "
                "(cantata init NAME writes one)"
            )
        listed = ", ".join(c.__name__ for c in classes)
        raise BotError(
            f"{path} defines {len(classes)} agent classes ({listed}); "
            "say which with --agent NAME, or define `agent = MyAgent()`"
        )
    return _as_agent(classes[0], path), module


def _as_agent(value: Any, path: Path) -> Agent:
    if isinstance(value, type) and issubclass(value, Agent):
        try:
            return value()
        except Exception as e:
            raise BotError(f"{path}: {value.__name__}() failed: {type(e).__name__}: {e}") from e
    if isinstance(value, Agent):
        return value
    raise BotError(f"{path}: {value!r} is not an Agent")


def rules_for(bot: Path, module: Any, explicit: str | None) -> str | Path | None:
    """The local engine's rules, by the module docstring's order."""
    if explicit:
        return Path(explicit)
    rules = getattr(module, "RULES", None)
    if isinstance(rules, Path):
        return rules if rules.is_absolute() else bot.parent / rules
    if isinstance(rules, str):
        return rules if "\n" in rules else bot.parent / rules
    beside = bot.with_suffix(".toml")
    return beside if beside.is_file() else None


@attrs.define
class RunOptions:
    """What ``cantata run`` / ``console`` was asked to do."""

    bot: Path
    agent_name: str | None = None
    backend: BackendChoice = attrs.Factory(BackendChoice)
    rules: str | None = None
    say: Sequence[str] = ()
    input_wav: Path | None = None
    output_wav: Path | None = None
    record: Path | None = None
    """Record the call here: a stereo WAV and a JSON report (the recorder plugin)."""
    approve: Approve = "ask"

    @property
    def interactive(self) -> bool:
        """No scripted turns and no input file: the console."""
        return not self.say and self.input_wav is None


class _Tracked:
    """An audio source that says when it is exhausted."""

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self.source = source
        self.done = trio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.source:
                yield chunk
        finally:
            self.done.set()


async def run_bot(
    options: RunOptions,
    *,
    console: Console | None = None,
    sink_factory: Callable[[], AudioSink] | None = None,
) -> int:
    """Runs a bot as ``cantata run`` does; returns the exit status.

    Raises:
        BotError, RulesError, OSError, ValueError: what the user gave cannot be
            used (the bot file, its rules, a WAV file, ...).
        CantataError: the session could not start or ended badly.
    """
    if options.interactive:
        return await console_bot(options, console=console)
    display = Display(console)
    agent, module = load_agent(options.bot, options.agent_name)
    source = None
    if options.input_wav is not None:
        from framework.audio import WavSource

        source = _Tracked(
            WavSource(options.input_wav, fmt=agent.input_audio_format, tail_silence_ms=800)
        )
    sink: AudioSink
    if options.output_wav is not None:
        from framework.audio import WavSink

        sink = WavSink(options.output_wav, fmt=agent.output_audio_format)
    else:
        sink = sink_factory() if sink_factory is not None else ClockSink()
    rules = rules_for(options.bot, module, options.rules)
    async with AsyncExitStack() as stack:
        backend = await stack.enter_async_context(open_backend(options.backend, rules=rules))
        display.console.print(f"[bold]{escape(agent.name)}[/bold] on {escape(backend.described)}")
        recorder = [load_plugin("recorder", directory=options.record)] if options.record else []
        async with open_session(
            agent,
            url=backend.url,
            api_key=backend.api_key,
            audio_in=source,
            audio_out=sink,
            plugins=recorder,
        ) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, session, display, options.approve)
                if source is not None:
                    await source.done.wait()
                    await _settle(session)
                for text in options.say:
                    display.line("you", text, "cyan")
                    started = time.perf_counter()
                    await session.run(text)
                    display.latency((time.perf_counter() - started) * 1000)
                await trio.sleep(0.05)  # let the last events print
                nursery.cancel_scope.cancel()
            close = getattr(sink, "aclose", None)
            if close is not None:
                await close()
        metrics = session.metrics  # complete now the session has closed
        for turn in metrics.turns:
            display.line("metrics", turn.summary(), "dim")
        usage, cost = session.usage, metrics.cost_usd
        display.console.print(
            f"[dim]{usage.responses} responses, {usage.input_tokens} tokens in, "
            f"{usage.output_tokens} out"
            + (f", ${cost:.5f} at the hosted API's prices" if cost is not None else "")
            + "[/dim]"
        )
        if options.output_wav is not None:
            display.console.print(f"[dim]reply audio written to {options.output_wav}[/dim]")
        if options.record is not None:
            display.console.print(f"[dim]the call is recorded in {options.record}/[/dim]")
    return 0


async def _settle(session: Session, quiet_s: float = 1.5, limit_s: float = 60.0) -> None:
    """Waits until the session has been quiet for ``quiet_s`` (VAD turns end late)."""
    with trio.move_on_after(limit_s):
        while True:
            await session.wait_quiet()
            before = session.usage.responses
            await trio.sleep(quiet_s)
            if session.usage.responses == before and session.statistics()["activity"] == 0:
                return


def _devices(agent: Agent, display: Display) -> tuple[Any, AudioSink]:
    """The microphone and speaker when there are, else none and a playback clock."""
    from framework.audio import Speaker, open_microphone

    microphone = None
    try:
        microphone = open_microphone(agent.input_audio_format)
    except AudioDeviceUnavailable as e:
        display.console.print(f"[dim]No microphone: {escape(str(e))} Type instead.[/dim]")
    try:
        return microphone, Speaker(agent.output_audio_format)
    except AudioDeviceUnavailable as e:
        display.console.print(f"[dim]No speaker: {escape(str(e))} Replies are shown.[/dim]")
        return microphone, ClockSink()


async def console_bot(options: RunOptions, *, console: Console | None = None) -> int:
    """``cantata console``: type (or talk) to the bot; approvals by ``--approve`` or at the prompt.

    Raises:
        as :func:`run_bot`.
    """
    display = Display(console)
    agent, module = load_agent(options.bot, options.agent_name)
    rules = rules_for(options.bot, module, options.rules)
    async with open_backend(options.backend, rules=rules) as backend:
        display.console.print(f"[bold]{escape(agent.name)}[/bold] on {escape(backend.described)}")
        microphone, speaker = _devices(agent, display)
        async with open_session(
            agent,
            url=backend.url,
            api_key=backend.api_key,
            audio_in=microphone,
            audio_out=speaker,
        ) as session:
            display.console.print("[dim]Type a message (Ctrl-D to quit).[/dim]")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, session, display, options.approve)
                while (text := await _read_line()) is not None:
                    if not text.strip():
                        continue
                    started = time.perf_counter()
                    await session.run(text)
                    await trio.sleep(0.02)
                    display.latency((time.perf_counter() - started) * 1000)
                nursery.cancel_scope.cancel()
        close = getattr(speaker, "close", None)
        if close is not None:
            close()
    return 0


async def _read_line() -> str | None:
    """A line typed at the terminal, read off the event loop; ``None`` at Ctrl-D."""

    def read() -> str | None:
        try:
            return input("> ")
        except EOFError:
            return None

    return await trio.to_thread.run_sync(read, abandon_on_cancel=True)


def options_from(args: argparse.Namespace) -> RunOptions:
    """What ``cantata run`` / ``console`` was asked to do, from its command line."""
    approve: Approve = args.approve or ("ask" if sys.stdin.isatty() else "no")
    return RunOptions(
        bot=Path(args.bot),
        agent_name=args.agent,
        backend=BackendChoice(
            engine=args.engine,
            url=args.url,
            api_key=args.api_key,
            parts={kind: getattr(args, kind) for kind in ("transcriber", "synthesizer", "vad")},
        ),
        rules=args.rules,
        say=tuple(getattr(args, "say", None) or ()),
        input_wav=Path(args.input_wav) if getattr(args, "input_wav", None) else None,
        output_wav=Path(args.output_wav) if getattr(args, "output_wav", None) else None,
        record=Path(args.record) if getattr(args, "record", None) else None,
        approve=approve,
    )


def run_command(args: argparse.Namespace) -> int:
    """``cantata run``, ``console`` and ``web`` (or ``run --web``); returns the exit status."""
    options = options_from(args)
    if args.command == "web" or getattr(args, "web", False):
        from framework.apps.playground import run_playground

        return trio.run(partial(run_playground, host=args.host, port=args.port), options)
    runner = console_bot if args.command == "console" else run_bot
    return trio.run(runner, options)
