"""Running a bot file: what ``cantata run`` and ``cantata console`` do.

A bot file is a Python file that defines an :class:`~framework.agent.Agent`
subclass (or an ``agent`` instance). The runner loads it, picks the backend
(the hosted API when a key is set or ``engine="openai"``, else the local
engine started in-process with the bot's rules), opens the session, and
drives it: scripted turns (``say``), a WAV file as the microphone, the
terminal (``console``), with the reply audio going to a WAV file or a
playback clock. Approvals are asked at the prompt, or decided by a policy.

The terminal shows the live transcript, tool calls, approvals and each
turn's latency with ``rich``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import attrs
import trio
from rich.console import Console
from rich.markup import escape

from framework.agent import Agent
from framework.audio import AudioSink, ClockSink
from framework.errors import BotError
from framework.plugin import load_plugin
from framework.protocol import AudioPCM
from framework.runtime import (
    ApprovalRequested,
    AssistantMessage,
    ErrorReported,
    HandedOff,
    Interrupted,
    McpCallFinished,
    Session,
    SessionEvent,
    ToolCallFinished,
    UserTranscript,
    open_session,
)

Approve = Literal["ask", "yes", "no"]
_PCM24 = AudioPCM(type="audio/pcm", rate=24000)


def load_agent(path: str | Path, name: str | None = None) -> tuple[Agent, Any]:
    """The agent a bot file defines, and the file's module.

    Picks, in order: the class or instance named ``name``; a module-level
    ``agent`` instance; the one ``Agent`` subclass the file defines.

    Raises:
        BotError: the file is missing or does not say which agent to run.
    """
    path = Path(path)
    if not path.is_file():
        raise BotError(f"no bot file at {path}")
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
    if len(classes) != 1:
        listed = ", ".join(c.__name__ for c in classes) or "none"
        raise BotError(
            f"{path} defines {len(classes)} agent classes ({listed}); "
            "say which with --agent NAME, or define `agent = MyAgent()`"
        )
    return _as_agent(classes[0], path), module


def _as_agent(value: Any, path: Path) -> Agent:
    if isinstance(value, type) and issubclass(value, Agent):
        return value()
    if isinstance(value, Agent):
        return value
    raise BotError(f"{path}: {value!r} is not an Agent")


def rules_for(bot: Path, module: Any, explicit: str | None) -> str | Path | None:
    """The local engine's rules: ``--rules``, the module's ``RULES``, or ``BOT.toml``."""
    if explicit:
        return Path(explicit)
    rules = getattr(module, "RULES", None)
    if isinstance(rules, Path):
        return rules
    if isinstance(rules, str):
        return rules if "\n" in rules else bot.parent / rules
    beside = bot.with_suffix(".toml")
    return beside if beside.is_file() else None


@attrs.define
class RunOptions:
    """What ``cantata run`` was asked to do."""

    bot: Path
    agent_name: str | None = None
    engine: Literal["auto", "local", "openai"] = "auto"
    url: str | None = None
    rules: str | None = None
    say: Sequence[str] = ()
    input_wav: Path | None = None
    output_wav: Path | None = None
    record: Path | None = None
    approve: Approve = "ask"
    transcriber: str | None = None
    synthesizer: str | None = None
    vad: str | None = None


class Display:
    """Prints the session as it happens: transcript, tools, approvals, latency."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.turn_started: float | None = None

    def line(self, who: str, text: str, style: str) -> None:
        self.console.print(f"[{style}]{who:<10}[/{style}] {escape(text)}")

    def event(self, event: SessionEvent) -> None:
        if isinstance(event, UserTranscript) and event.final:
            self.line("you said", event.text, "cyan")
        elif isinstance(event, AssistantMessage):
            extra = f"  [{event.audio_ms / 1000:.1f} s of audio]" if event.audio_ms else ""
            self.line("assistant", event.text + extra, "green")
        elif isinstance(event, ToolCallFinished):
            self.line(
                "tool",
                f"{event.name}({event.arguments}) -> {event.output!r} [{event.status}]",
                "yellow",
            )
        elif isinstance(event, McpCallFinished):
            result = event.output if event.error is None else f"error: {event.error}"
            self.line(
                "mcp",
                f"{event.server_label}.{event.name}({event.arguments}) -> {result!r}",
                "yellow",
            )
        elif isinstance(event, Interrupted):
            self.line("barge-in", f"stopped after {event.played_ms} ms", "magenta")
        elif isinstance(event, HandedOff):
            self.line("handoff", f"{event.from_agent} -> {event.to_agent}", "magenta")
        elif isinstance(event, ErrorReported):
            self.line("error", str(event.error.message), "red")

    def latency(self, ms: float) -> None:
        self.console.print(f"[dim]{'':<10} turn took {ms:.0f} ms[/dim]")


async def _ask(display: Display, question: str) -> bool:
    """A yes/no question at the terminal, read off the event loop."""

    def read() -> str:
        try:
            return input(f"{question} [y/N] ")
        except EOFError:
            return ""

    answer = await trio.to_thread.run_sync(read, abandon_on_cancel=True)
    return answer.strip().lower() in ("y", "yes")


async def _watch(session: Session, display: Display, approve: Approve) -> None:
    """Shows every event; answers approvals by policy or at the prompt."""
    async for event in session:
        display.event(event)
        if isinstance(event, ApprovalRequested):
            request = event.request
            question = f"approve {request.tool}({request.arguments})?"
            if approve == "ask":
                granted = await _ask(display, question)
            else:
                granted = approve == "yes"
                display.line(
                    "approval", f"{question} {'yes' if granted else 'no'} (--approve)", "blue"
                )
            try:
                if granted:
                    session.approve(request)
                else:
                    session.reject(request, "the user declined")
            except KeyError:
                display.line("approval", "too late: the request had already timed out", "red")


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


@asynccontextmanager
async def open_backend(options: RunOptions, module: Any) -> AsyncIterator[tuple[str | None, str]]:
    """The URL to connect to (None: hosted) and a line describing it."""
    choice = options.engine
    if options.url:
        yield options.url, f"the server at {options.url}"
        return
    if choice == "auto":
        choice = "openai" if os.environ.get("OPENAI_API_KEY") else "local"
    if choice == "openai":
        yield None, "the hosted OpenAI Realtime API"
        return
    from framework.plugin import engine_part
    from framework.testing import run_engine

    parts: dict[str, Any] = {}
    for kind in ("transcriber", "synthesizer", "vad"):
        name = getattr(options, kind)
        if name is not None:
            parts[kind] = engine_part(kind, name)
    rules = rules_for(options.bot, module, options.rules)
    async with run_engine(rules=rules, **parts) as url:
        if isinstance(rules, Path):
            source = f"rules {rules.name}"
        else:
            source = "the bot's rules" if rules else "built-in rules"
        yield url, f"the local engine (a deterministic scripted model; {source})"


async def run_bot(
    options: RunOptions,
    *,
    console: Console | None = None,
    sink_factory: Callable[[], AudioSink] | None = None,
) -> int:
    """Runs a bot as ``cantata run`` does; returns the exit code."""
    display = Display(console)
    try:
        agent, module = load_agent(options.bot, options.agent_name)
    except BotError as e:
        display.console.print(f"[red]cantata run:[/red] {escape(str(e))}")
        return 2
    async with AsyncExitStack() as stack:
        url, described = await stack.enter_async_context(open_backend(options, module))
        display.console.print(f"[bold]{escape(agent.name)}[/bold] on {escape(described)}")
        source = None
        if options.input_wav is not None:
            from framework.audio import WavSource

            source = _Tracked(
                WavSource(
                    options.input_wav, fmt=agent.input_audio_format or _PCM24, tail_silence_ms=800
                )
            )
        sink: AudioSink
        if options.output_wav is not None:
            from framework.audio import WavSink

            sink = WavSink(options.output_wav, fmt=agent.output_audio_format or _PCM24)
        else:
            sink = sink_factory() if sink_factory is not None else ClockSink()
        recorder = [load_plugin("recorder", directory=options.record)] if options.record else []
        session = await stack.enter_async_context(
            open_session(agent, url=url, audio_in=source, audio_out=sink, plugins=recorder)
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch, session, display, options.approve)
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
        usage = session.usage
        display.console.print(
            f"[dim]{usage.responses} responses, {usage.input_tokens} tokens in, "
            f"{usage.output_tokens} out[/dim]"
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


async def console_bot(options: RunOptions, *, console: Console | None = None) -> int:
    """``cantata console``: type to the bot; approvals at the prompt; latency per turn."""
    display = Display(console)
    try:
        agent, module = load_agent(options.bot, options.agent_name)
    except BotError as e:
        display.console.print(f"[red]cantata console:[/red] {escape(str(e))}")
        return 2
    async with open_backend(options, module) as (url, described):
        display.console.print(f"[bold]{escape(agent.name)}[/bold] on {escape(described)}")
        microphone = None
        try:
            from framework.audio import AudioDeviceUnavailable, open_microphone

            try:
                microphone = open_microphone(agent.input_audio_format or _PCM24)
            except AudioDeviceUnavailable as e:
                display.console.print(f"[dim]{escape(str(e))} Type instead.[/dim]")
        except ImportError:
            display.console.print("[dim]No audio devices here; type instead.[/dim]")
        async with open_session(agent, url=url, audio_in=microphone) as session:
            display.console.print("[dim]Type a message (Ctrl-D to quit).[/dim]")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch, session, display, "ask")
                while True:

                    def read() -> str | None:
                        try:
                            return input("> ")
                        except EOFError:
                            return None

                    text = await trio.to_thread.run_sync(read, abandon_on_cancel=True)
                    if text is None:
                        break
                    if not text.strip():
                        continue
                    started = time.perf_counter()
                    await session.run(text)
                    await trio.sleep(0.02)
                    display.latency((time.perf_counter() - started) * 1000)
                nursery.cancel_scope.cancel()
    return 0
