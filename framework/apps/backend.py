"""Where a command's session runs, with which key, and which engine parts.

Every command that connects (``run``, ``console``, ``transcribe``) picks its
server the same way:

* ``--url URL``: that server (a ``cantata serve``, an Azure-style deployment,
  any Realtime endpoint);
* ``--engine openai``, or ``auto`` with a key for it: the hosted OpenAI API;
* otherwise (``--engine local``, or ``auto`` with no key): the local engine,
  started in-process.

And sends a key by one rule, the same for every command (``cantata ring``,
``dtmf`` and ``calls`` included):

1. ``--api-key KEY``, when given;
2. for the hosted API (no ``--url``, or a URL on ``api.openai.com``):
   ``OPENAI_API_KEY``;
3. for any other server: ``CANTATA_API_KEY``, the variable ``cantata serve``
   takes its own key from (an OpenAI key is never sent to another host);
4. the local engine started in-process needs none.

The local engine's parts default to the installed plugins' (the speech
plugin's transcriber, synthesizer and VAD when the ``speech`` extra is
installed); ``--transcriber``, ``--synthesizer`` and ``--vad`` name others.
The engine is given its parts here; it never looks them up itself.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import attrs

from framework.engine import Engine, Rules, described, open_engine
from framework.errors import PluginError, single_errors
from framework.plugin import ChosenPart, choose_engine_parts
from framework.testing import InstalledMcpClient

HOSTED_KEY = "OPENAI_API_KEY"
ENGINE_KEY = "CANTATA_API_KEY"
HOSTED_HOST = "api.openai.com"

EngineChoice = Literal["auto", "local", "openai"]
PART_KINDS = ("transcriber", "synthesizer", "vad")
"""The engine parts a command may name; the brain is the rules' scripted model."""


def is_hosted(url: str | None) -> bool:
    """Whether ``url`` is the hosted OpenAI API (``None`` is)."""
    return url is None or urlsplit(url).hostname == HOSTED_HOST


def key_variable(url: str | None) -> str:
    """The environment variable a key for ``url`` comes from."""
    return HOSTED_KEY if is_hosted(url) else ENGINE_KEY


def api_key(url: str | None, given: str | None) -> str | None:
    """The key to send to ``url`` (``None``: the hosted API), by the module's rule."""
    return given or os.environ.get(key_variable(url)) or None


class NoKey(ValueError):
    """The hosted API was chosen and there is no key for it."""

    def __init__(self) -> None:
        super().__init__(
            f"the hosted API needs a key: set {HOSTED_KEY} or pass --api-key "
            "(or --engine local for the local engine, which needs none)"
        )


@attrs.frozen(kw_only=True)
class Backend:
    """Where a session runs.

    Attributes:
        url: the Realtime URL to dial; ``None`` is the hosted API.
        api_key: the key to send, if any.
        described: one line for the user: the server, and the engine's parts
            when the engine is local.
    """

    url: str | None
    api_key: str | None
    described: str


@attrs.frozen(kw_only=True)
class BackendChoice:
    """What a command line says about where to run.

    Attributes:
        engine: ``auto``, ``local`` or ``openai``.
        url: ``--url``.
        api_key: ``--api-key``.
        parts: the engine parts named on the command line, by kind (``None``:
            the installed default).
    """

    engine: EngineChoice = "auto"
    url: str | None = None
    api_key: str | None = None
    parts: Mapping[str, str | None] = attrs.Factory(lambda: dict.fromkeys(PART_KINDS))

    @property
    def where(self) -> Literal["url", "hosted", "local"]:
        if self.url:
            return "url"
        if self.engine == "openai":
            return "hosted"
        if self.engine == "auto" and api_key(None, self.api_key):
            return "hosted"
        return "local"

    def remote(self) -> Backend | None:
        """The server to dial, or ``None`` when the engine runs in-process.

        Raises:
            NoKey: the hosted API, and no key for it.
        """
        where = self.where
        if where == "local":
            return None
        url = self.url if where == "url" else None
        key = api_key(url, self.api_key)
        if where == "hosted":
            if key is None:
                raise NoKey()
            return Backend(url=None, api_key=key, described="the hosted OpenAI Realtime API")
        return Backend(url=url, api_key=key, described=f"the server at {url}")

    def local_parts(self, phrases: Sequence[str] = ()) -> list[ChosenPart]:
        """The engine parts of a local engine: each named one, else the installed default;
        a transcriber that can be is limited to the rules' ``phrases``.

        Raises:
            PluginError: a named part that no installed plugin provides.
        """
        return choose_engine_parts(self.parts, phrases=phrases)


def describe_engine(engine: Engine, rules_source: str | None, kinds: Sequence[str]) -> str:
    """One line naming a local engine's brain (with its rules) and its parts of ``kinds``."""
    options = engine.options
    parts = ", ".join(f"{kind} {described(getattr(options, kind))}" for kind in kinds)
    if rules_source is None:
        return f"the local engine; {parts}"
    return f"the local engine, {rules_source} ({options.brain.description}); {parts}"


def rules_source(rules: str | Path | Rules | None) -> str:
    """How the user knows where a local engine's rules came from."""
    if isinstance(rules, Path):
        return f"rules {rules.name}"
    if rules:
        return "the bot's rules"
    return "built-in rules"


@asynccontextmanager
async def open_backend(
    choice: BackendChoice,
    *,
    rules: str | Path | Rules | None = None,
    require: Sequence[str] = (),
    answers: bool = True,
) -> AsyncIterator[Backend]:
    """The backend a command uses, for the block: a server to dial, or a local engine.

    Args:
        choice: what the command line said.
        rules: the local engine's rules (a path, TOML text, or parsed).
        require: kinds of part the local engine must have (``"transcriber"``
            for ``cantata transcribe``); a missing one is an error here, not
            a silent failure later.
        answers: whether the session gets answers (its description names the
            brain and the voice); a transcription session does not.

    Raises:
        NoKey: the hosted API, and no key for it.
        PluginError: a named part no installed plugin provides, or a required
            kind that nothing installed provides.
        RulesError: the rules do not load.
    """
    remote = choice.remote()
    if remote is not None:
        yield remote
        return
    loaded = Rules.load(rules) if rules is not None else None
    chosen = {c.kind: c.part for c in choice.local_parts(loaded.phrases if loaded else ())}
    for kind in require:
        if kind not in chosen:
            raise PluginError(
                f"the local engine has no {kind}: install the speech extra "
                "(pip install 'cantata[speech]'), or pass --url of a server that has one"
            )
    engine = Engine(
        rules=loaded,
        # The installed MCP plugin's client runs hosted MCP tools; the engine never looks.
        mcp_client=InstalledMcpClient(),
        **chosen,
    )
    with single_errors():
        async with open_engine(engine) as running:
            if answers:
                described = describe_engine(engine, rules_source(rules), PART_KINDS)
            else:
                described = describe_engine(
                    engine, None, [k for k in PART_KINDS if k in choice.parts]
                )
            yield Backend(url=running.url, api_key=None, described=described)
