"""The plugin system: entry points, lifetimes, tools that change, failures reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from framework import Agent, open_session
from framework.plugin import (
    Contribution,
    Plugin,
    PluginError,
    ToolsPlugin,
    installed_plugins,
    resolve_plugins,
)
from framework.testing import engine_wire, run_engine
from framework.tools import FunctionTool

RULES = r"""
fallback = "Sorry."

[[rule]]
when = "roll"
call = "roll_die"

[[rule]]
after = "roll_die"
say = "You rolled {output}."

[[rule]]
when = "flip"
call = "flip_coin"

[[rule]]
after = "flip_coin"
say = "It landed {output}."
"""

SAMPLE = '''
from contextlib import asynccontextmanager
from functools import partial

from framework.plugin import Contribution, Plugin
from framework.tools import FunctionTool


async def roll_die() -> int:
    """Rolls a fair die (this one always shows four)."""
    return 4


class Beep:
    name = "beep"

    async def synthesize(self, text, *, rate, voice):
        import numpy as np

        return np.zeros(rate // 10, dtype=np.int16)


class DicePlugin(Plugin):
    name = "dice"

    def describe(self):
        return {"tools": ["roll_die"], "engine": ["synthesizer:beep"]}

    def engine_parts(self):
        return {"synthesizer:beep": Beep()}

    @asynccontextmanager
    async def open(self, changed):
        tool = FunctionTool.from_function(roll_die)
        yield Contribution(tools=lambda: [tool])
'''


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Path]:
    """A small plugin distribution "installed" on sys.path, with real metadata."""
    (tmp_path / "cantata_dice.py").write_text(SAMPLE)
    (tmp_path / "cantata_broken.py").write_text("raise ImportError('needs a GPU driver')\n")
    info = tmp_path / "cantata_dice-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cantata-dice\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [cantata.plugins]
            dice = cantata_dice:DicePlugin
            broken = cantata_broken:Plugin
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("cantata_dice", "cantata_broken"):
            sys.modules.pop(name, None)


def test_entry_points_load_and_failures_are_reported(installed: Path) -> None:
    found = {p.name: p for p in installed_plugins()}
    assert found["dice"].plugin is not None and found["dice"].plugin.name == "dice"
    assert "cantata-dice" in found["dice"].source
    assert found["broken"].plugin is None
    assert found["broken"].error == "ImportError: needs a GPU driver"


MISTAKES = {
    "tools = [roll_die]": "a 'tools' attribute is never read; give it from open(), "
    "as Contribution(tools=...) (or subclass ToolsPlugin)",
    "instructions = 'Roll dice.'": "a 'instructions' attribute is never read",
    "describe = {'tools': ['roll_die']}": "describe must be a method, not dict",
    "async def open(self, changed):\n        yield Contribution()": "open() is an async "
    "generator; decorate it with @contextlib.asynccontextmanager",
}


@pytest.mark.parametrize(("body", "says"), MISTAKES.items())
def test_a_plugin_that_would_do_nothing_is_an_error_at_load(body: str, says: str) -> None:
    namespace = {"Plugin": Plugin, "Contribution": Contribution, "roll_die": len}
    source = f"class Quiet(Plugin):\n    {body}\n"
    with pytest.raises(PluginError, match=r"^plugin Quiet: ") as raised:
        exec(source, namespace)
    assert says in str(raised.value)
    exec(source.replace("Plugin)", "object)"), namespace)  # the same body is fine elsewhere


def test_an_installed_plugin_with_a_mistake_is_listed_with_it(installed: Path) -> None:
    (installed / "cantata_dice.py").write_text(SAMPLE.replace('name = "dice"', "tools = []"))
    found = {p.name: p for p in installed_plugins()}
    assert found["dice"].plugin is None
    assert found["dice"].error is not None
    assert found["dice"].error.startswith("PluginError: plugin DicePlugin: a 'tools' attribute")


def test_resolve_by_name(installed: Path) -> None:
    (plugin,) = resolve_plugins(["dice"])
    assert plugin.describe()["tools"] == ["roll_die"]
    with pytest.raises(LookupError, match="failed to load: ImportError"):
        resolve_plugins(["broken"])
    with pytest.raises(LookupError, match="no installed plugin is named 'nope'"):
        resolve_plugins(["nope"])


def test_cantata_plugins_lists_them(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.getcwd()])}
    result = subprocess.run(
        [sys.executable, "-m", "framework.apps.cli", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert "dice  cantata_dice:DicePlugin (cantata-dice)" in lines
    assert "    tools: roll_die" in lines
    assert "    engine: synthesizer:beep" in lines
    assert "broken  [failed to load]  cantata_broken:Plugin (cantata-dice)" in lines
    assert "    error: ImportError: needs a GPU driver" in lines
    assert result.returncode == 1  # something failed to load, and everything else is listed


async def test_an_installed_plugin_serves_a_session(installed: Path) -> None:
    with trio.fail_after(10):
        async with run_engine(rules=RULES) as url:
            bot = Agent(plugins=["dice"], output_modalities=["text"])
            async with open_session(bot, url=url) as session:
                result = await session.run("roll for me")
    assert result.tool_calls[0].name == "roll_die"
    assert result.text == "You rolled 4."


class Coins(Plugin):
    """Counts its lifetimes; adds a tool when asked; can hang on close."""

    name = "coins"

    def __init__(self, *, hang_on_close: bool = False) -> None:
        super().__init__()
        self.opened = self.closed = 0
        self.hang_on_close = hang_on_close
        self.tools: list[FunctionTool] = []
        self.changed: Callable[[], None] | None = None

    def add_flip(self) -> None:
        async def flip_coin() -> str:
            """Flips a coin."""
            return "heads"

        self.tools.append(FunctionTool.from_function(flip_coin))
        assert self.changed is not None
        self.changed()

    @asynccontextmanager
    async def open(self, changed: Callable[[], None]) -> AsyncIterator[Contribution]:
        self.opened += 1
        self.changed = changed
        try:
            yield Contribution(tools=lambda: list(self.tools))
        finally:
            if self.hang_on_close:
                await trio.sleep_forever()
            self.closed += 1


async def test_lifetime_follows_the_session_and_tools_can_change(
    autojump_clock: MockClock,
) -> None:
    coins = Coins()
    bot = Agent(plugins=[coins], output_modalities=["text"])
    async with engine_wire(rules=RULES) as wire:
        async with open_session(bot, connection=wire) as session:
            assert (coins.opened, coins.closed) == (1, 0)
            before = await session.run("flip a coin")
            # No such tool yet: the brain reports that its rule calls a tool the
            # session does not offer, and the response fails.
            assert before.tool_calls == ()
            coins.add_flip()
            await trio.sleep(1)  # the new tool list reaches the server
            after = await session.run("flip a coin")
        assert (coins.opened, coins.closed) == (1, 1)
    assert before.text == ""
    assert [r.status for r in before.responses] == ["failed"]
    assert after.text == "It landed heads."


async def test_a_hanging_plugin_teardown_is_bounded(autojump_clock: MockClock) -> None:
    coins = Coins(hang_on_close=True)
    bot = Agent(plugins=[coins], output_modalities=["text"])
    async with engine_wire(rules=RULES) as wire:
        start = trio.current_time()
        async with open_session(bot, connection=wire):
            pass
        took = trio.current_time() - start
    assert 5.0 <= took < 6.0  # TEARDOWN_TIMEOUT_S, then the session is gone anyway


async def test_plugin_tools_that_collide_are_prefixed(autojump_clock: MockClock) -> None:
    async def roll_die() -> int:
        """Another die."""
        return 6

    class Dice(Agent):
        output_modalities = ("text",)

    async def flip_coin() -> str:
        """A coin."""
        return "tails"

    bot = Dice(
        tools=[FunctionTool.from_function(roll_die)],
        plugins=[
            ToolsPlugin([roll_die, flip_coin], name="extra"),
            ToolsPlugin([flip_coin], name="x" * 60),
        ],
    )
    async with engine_wire(rules=RULES) as wire, open_session(bot, connection=wire) as session:
        names = sorted(session.tools)
    # The agent's own tool keeps its name; every shared plugin name is prefixed,
    # and a long prefix is cut to the protocol's 64 characters with a hash.
    assert names[:3] == ["extra_flip_coin", "extra_roll_die", "roll_die"]
    (long_name,) = names[3:]
    assert len(long_name) == 64 and long_name.startswith("x" * 54)


async def test_the_engine_takes_parts_from_plugins(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.getcwd()])}
    command = [sys.executable, "-m", "framework.apps.cli", "serve", "--port", "0"]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                partial(
                    trio.run_process,
                    [*command, "--synthesizer", "beep"],
                    env=env,
                    stdout=subprocess.PIPE,
                    check=False,
                )
            )
            banner = b""
            async for chunk in process.stdout:
                banner += chunk
                if b"Ready" in banner:
                    break
            process.send_signal(signal.SIGINT)
        missing = await trio.run_process(
            [*command, "--brain", "nope"], env=env, capture_stderr=True, check=False
        )
    assert "synthesizer: beep" in banner.decode()
    assert missing.returncode == 2
    assert b"no installed plugin provides the brain 'nope'" in missing.stderr
