"""The tools a session offers: computed once, again only when something changed.

The SessionActor holds one :class:`Toolset` and rebuilds it when the session
starts, at a handoff, and when a plugin says its tools changed; each call is
told the tool it names (and the context it runs in) from the one current now,
so no lookup rebuilds anything per call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import attrs

from framework.errors import PluginError
from framework.protocol import RealtimeToolsConfigUnion
from framework.tools import FunctionTool, resolve_names

from ._contracts import AgentLike, Contribution, SessionPlugin
from ._messages import CallContext

_log = logging.getLogger("cantata.session")


@attrs.frozen(kw_only=True, eq=False)
class Toolset:
    """The function tools by name, their wire definitions and the calls' context.

    Attributes:
        tools: every function tool offered, by the name the model calls.
        definitions: what goes in ``session.tools``: function tools, then hosted ones.
        context: what each call of this toolset runs with.
        instructions: the plugins' additions to the agent's instructions.
    """

    tools: Mapping[str, FunctionTool]
    definitions: tuple[RealtimeToolsConfigUnion, ...]
    context: CallContext
    instructions: str = ""

    @classmethod
    def build(
        cls,
        agent: AgentLike,
        plugins: Sequence[tuple[SessionPlugin, Contribution]],
        *,
        strict: bool = False,
    ) -> Toolset:
        """The agent's tools, then its plugins'.

        The agent's tools keep their names; a plugin tool whose name is shared
        (with the agent or another plugin) is offered as ``<plugin>_<name>``,
        fitted to the protocol by the tools package's one naming policy. When
        even that name is taken (two plugins of one name), the tool cannot be
        offered: with ``strict`` (the session's start) that is an error, later
        (a tool list that changed) it is left out and logged.

        Raises:
            PluginError: ``strict``, and a tool would be left out; the message
                names the plugins.
        """
        found = {t.name: t for t in agent.all_tools()}
        offered = [(p.name, t) for p, c in plugins for t in c.tools()]
        names = resolve_names(found, [(owner, t.name) for owner, t in offered])
        for (owner, tool), name in zip(offered, names, strict=True):
            if name is None:
                if strict:
                    raise PluginError(
                        f"two plugins are named {owner!r}, so tool {tool.name!r} of one would "
                        "hide the other's; give them different names (an MCP server's name=)"
                    )
                _log.warning(
                    "tool %s of plugin %s is left out: its name is taken", tool.name, owner
                )
                continue
            found[name] = tool if name == tool.name else attrs.evolve(tool, name=name)
        definitions: list[RealtimeToolsConfigUnion] = [t.definition() for t in found.values()]
        definitions.extend(agent.hosted_tools)
        for _, contribution in plugins:
            definitions.extend(contribution.hosted_tools)
        policies = tuple(c.approve for _, c in plugins if c.approve is not None)
        return cls(
            tools=found,
            definitions=tuple(definitions),
            context=CallContext(agent=agent, policies=policies, tool_names=tuple(found)),
            instructions="\n\n".join(c.instructions for _, c in plugins if c.instructions),
        )
