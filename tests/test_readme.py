"""The README's claims, checked where they can be.

Its two commands (CI runs the test command verbatim), the quickstart, the
first-bot steps as written, every ``cantata`` command line it shows, the
banner it quotes, the layout against the tree, and the examples' own headers.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Run it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(.+?)\n```", section, re.S)


def test_readme_has_exactly_two_commands() -> None:
    commands = _commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert all(c.startswith("python3 -m venv .venv && ") for c in commands)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _commands()[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_quickstart_runs() -> None:
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    section = text.split("## Writing an agent", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("In Paris it is sunny.")


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _blocks(text: str, language: str | None = "") -> list[str]:
    """The fenced code blocks of ``text`` in ``language`` (``""``: none; ``None``: any)."""
    blocks, current, kind = [], list[str](), None
    for line in text.splitlines():
        if line.startswith("```"):
            if kind is None:
                kind, current = line[3:].strip(), []
                continue
            if language is None or kind == language:
                blocks.append("\n".join(current))
            kind = None
        elif kind is not None:
            current.append(line)
    return blocks


def test_every_cantata_command_shown_parses() -> None:
    import shlex

    from framework.apps.cli import COMMANDS, parser

    text = (ROOT / "README.md").read_text()
    shown = [
        line.strip()
        for block in _blocks(text)
        for line in block.splitlines()
        if line.strip().startswith("cantata ") and "[" not in line  # not a usage synopsis
    ]
    shown += re.findall(r"`(cantata [^`]+)`", " ".join(text.split()))
    assert len(shown) >= 20
    names = {command.name for command in COMMANDS}
    failed = []
    for line in shown:
        words = shlex.split(line)[1:]
        if len(words) == 1 and words[0] in names:
            continue  # the command named in prose, not a command line
        try:
            args = parser().parse_args(words)
        except SystemExit as exit:
            if exit.code != 0:  # --version and --help exit 0
                failed.append(line)
            continue
        assert args.command in line
    assert failed == []


def test_the_first_bot_steps_work_as_written(tmp_path: Path) -> None:
    import os
    import shlex
    import subprocess
    import sys

    (block,) = _blocks(_section("Your first bot"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    where = tmp_path
    outputs = []
    for line in block.splitlines():
        words = shlex.split(line)
        if words[0] == "cd":
            where = where / words[1]
            continue
        command = {
            "cantata": [sys.executable, "-m", "framework.apps.cli"],
            "python": [sys.executable],
        }
        done = subprocess.run(
            [
                *command[words[0]],
                *words[1:],
                *(["-p", "no:cacheprovider"] if "pytest" in words else []),
            ],
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
        outputs.append(done.stdout)
    assert "It is " in outputs[1] and "2 passed" in outputs[2]


def test_the_voice_sections_phrases_are_what_the_banner_says() -> None:
    from framework.engine import Rules
    from plugins.speech import PocketsphinxTranscriber

    section = _section("Voice")
    (toml,) = _blocks(section, "toml")
    phrases = Rules.from_toml(toml).phrases
    banner = PocketsphinxTranscriber().with_phrases(phrases).description
    assert f"`transcriber {banner}`" in " ".join(section.split())


def test_the_layout_is_the_tree() -> None:
    (block,) = _blocks(_section("Layout"))
    named = [line.split()[0] for line in block.splitlines() if not line.startswith(" ")]
    for path in named:
        assert (ROOT / path).exists(), path
    tree = {
        f"{top}/{entry.name}{'/' if entry.is_dir() else ''}"
        for top in ("framework", "plugins")
        for entry in (ROOT / top).iterdir()
        if entry.name != "__pycache__"
    }
    tree |= {f"{e.name}/" for e in ROOT.iterdir() if e.is_dir() and not e.name.startswith(".")}
    tree.discard("framework/")
    tree.discard("plugins/")
    listed = set(named) | {p.split("/")[0] + "/" for p in named}
    assert tree - listed == set()
    apps = block.split("framework/apps/", 1)[1].split("\nplugins/", 1)[0]
    for module in (ROOT / "framework" / "apps").glob("*.py"):
        if module.stem != "__init__":
            assert module.stem in apps, module.stem


def test_each_example_says_how_to_run_it_as_the_readme_sets_up() -> None:
    for example in sorted((ROOT / "examples").glob("*.py")):
        header = example.read_text().split('"""')[1]
        assert f"    .venv/bin/python examples/{example.name}\n" in header, example.name
