"""``cantata init NAME``: a new bot that runs and passes its own test.

It writes a directory ``NAME/`` with three files:

* ``NAME.py``: an agent with one function tool;
* ``NAME.toml``: the local engine's rules for it (``cantata run`` finds them
  beside the bot);
* ``test_NAME.py``: a test that talks to the bot through the local engine,
  offline, with plain ``pytest`` (no plugin needed; pytest puts the test's
  directory on the import path, so it finds the bot).

Nothing is overwritten: an existing ``NAME/`` is a mistake, said in one line.
"""

from __future__ import annotations

import argparse
import keyword
from pathlib import Path

from framework.errors import BotError

BOT = '''"""{title}: an agent with one function tool.

Talk to it:

    cantata run {name}.py --say "What time is it?"
    cantata console {name}.py

Offline, the local engine answers by the rules in {name}.toml; with
OPENAI_API_KEY set, the hosted model does (by the instructions and the tool).
"""

from __future__ import annotations

import datetime

from framework import Agent, tool


class {cls}(Agent):
    instructions = "You are a helpful assistant. Be brief."

    @tool
    async def current_time(self) -> str:
        """The current time of day, as HH:MM."""
        return datetime.datetime.now().strftime("%H:%M")
'''

RULES = """# The local engine's rules for {name}.py: how its scripted model answers.
fallback = "Sorry, I can only tell the time. Ask me what time it is."

[[rule]]
when = "^(hi|hello)\\\\b"
say = "Hello! Ask me what time it is."

[[rule]]
when = "what time"
call = "current_time"

[[rule]]
after = "current_time"
say = "It is {{output}}."
"""

TEST = '''"""{title}'s test: a real session against the local engine, offline."""

from __future__ import annotations

import re
from pathlib import Path

import trio

from framework import open_session
from framework.testing import run_engine

from {name} import {cls}

RULES = Path(__file__).with_name("{name}.toml")


async def ask(text: str) -> tuple[str, list[str]]:
    """The bot's reply to ``text``, and the tools it called."""
    with trio.fail_after(30):
        async with run_engine(rules=RULES) as url, open_session({cls}(), url=url) as session:
            result = await session.run(text)
    return result.text, [call.name for call in result.tool_calls]


def test_it_tells_the_time() -> None:
    text, tools = trio.run(ask, "What time is it?")
    assert tools == ["current_time"]
    assert re.fullmatch(r"It is \\d\\d:\\d\\d\\.", text)


def test_it_says_what_it_can_do() -> None:
    text, tools = trio.run(ask, "Tell me a joke")
    assert tools == []
    assert text == "Sorry, I can only tell the time. Ask me what time it is."
'''


def files(name: str) -> dict[str, str]:
    """The scaffold's files for a bot ``name``, by file name.

    Raises:
        BotError: ``name`` cannot be a Python module name.
    """
    if not name.isidentifier() or keyword.iskeyword(name) or not name.islower():
        raise BotError(
            f"{name!r} cannot name a bot: use lower case letters, digits and _ (like my_bot)"
        )
    values = {
        "name": name,
        "cls": "".join(part.capitalize() for part in name.split("_")) or "Bot",
        "title": name.replace("_", " ").capitalize(),
    }
    return {
        f"{name}.py": BOT.format(**values),
        f"{name}.toml": RULES.format(**values),
        f"test_{name}.py": TEST.format(**values),
    }


def init(args: argparse.Namespace) -> int:
    """``cantata init NAME``: writes the scaffold; returns the exit status.

    Raises:
        BotError: a bad name, or ``NAME/`` exists already.
    """
    where = Path(args.directory or ".") / args.name
    written = files(args.name)
    if where.exists():
        raise BotError(f"{where} exists already; pick another name, or remove it first")
    where.mkdir(parents=True)
    for file, text in written.items():
        (where / file).write_text(text, encoding="utf-8")
    print(f"Wrote {where}/: {', '.join(written)}.")
    print(f"Try it: cd {where} && cantata run {args.name}.py --say 'What time is it?'")
    print(f"Test it: python -m pytest {where}")
    return 0
