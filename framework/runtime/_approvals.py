"""Approvals: request and reply, with a deadline.

A call that needs approval becomes an :class:`ApprovalRequest`. The decision
comes, in this order, from a sticky "always allow / always deny" recorded for
the tool, from a plugin's approval policy, from the agent's
``approve_tool_call`` hook, or from the application (``session.approve`` /
``session.reject``). No decision by the deadline is a rejection, with a
reason the model can read. One model serves function tools, local MCP tools
and hosted MCP tools (``kind``).

:class:`Approvals` belongs to the ToolExecutionActor, which asks; the
application's ``Session`` handle only answers (``decide``), which wakes the
call waiting for it. Requests are removed when answered or timed out, so it
holds no more than the calls waiting now, plus one sticky entry per tool.
:class:`Waiting` is that request/reply flow alone; the questions tools ask
the user (``_elicitation``) take it too.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, Literal, TypeAlias, TypeVar

import attrs
import orjson
import trio

__all__ = ["ApprovalHook", "ApprovalRequest", "Approvals", "Decision", "Waiting"]


@attrs.frozen(kw_only=True, eq=False)
class ApprovalRequest:
    """A tool call waiting for a yes or no.

    Attributes:
        call_id: the call's id (the protocol's ``call_id``).
        tool: the tool's name (``server.tool`` for hosted MCP tools).
        arguments: the arguments as the model sent them (JSON text).
        deadline: when no answer becomes a rejection (trio clock seconds).
        kind: ``"function"`` for function tools, ``"mcp"`` for MCP tools.
        values: for a function tool, the arguments as the tool will receive
            them (converted to its parameter types): what is approved is
            exactly what runs. ``None`` for MCP tools.
    """

    call_id: str
    tool: str
    arguments: str
    deadline: float
    kind: Literal["function", "mcp"] = "function"
    values: Mapping[str, object] | None = None

    @property
    def parsed_arguments(self) -> dict[str, object] | None:
        """The arguments decoded from JSON (``None`` when they are not a JSON object)."""
        try:
            decoded: object = orjson.loads(self.arguments)
        except orjson.JSONDecodeError:
            return None
        return decoded if isinstance(decoded, dict) else None


@attrs.frozen
class Decision:
    """The answer to an :class:`ApprovalRequest`."""

    approved: bool
    reason: str | None = None
    always: bool = False
    """Remember it for every later call of the same tool in this session."""


ApprovalHook: TypeAlias = Callable[[ApprovalRequest], Awaitable["bool | Decision | None"]]
"""The agent's hook or a plugin's policy: a decision, or ``None`` for no opinion."""


_Request = TypeVar("_Request")
_Answer = TypeVar("_Answer")


@attrs.define
class _Slot(Generic[_Request, _Answer]):
    request: _Request
    answered: trio.Event = attrs.Factory(trio.Event)
    answer: _Answer | None = None


@attrs.define
class Waiting(Generic[_Request, _Answer]):
    """Requests waiting for the application's answer, each until its deadline.

    The one request/reply flow of approvals and of tools' questions
    (elicitations): the asker waits in :meth:`wait`, the application answers
    with :meth:`decide`. It holds only the requests waiting now.

    Attributes:
        what: What a request is, for the error of an answer nobody waits for.
    """

    what: str
    slots: dict[str, _Slot[_Request, _Answer]] = attrs.Factory(dict)

    @property
    def pending(self) -> list[_Request]:
        """The requests waiting, oldest first."""
        return [slot.request for slot in self.slots.values()]

    def decide(self, key: str, answer: _Answer) -> None:
        """Answers the request waiting under ``key``.

        Raises:
            KeyError: nothing waits under ``key`` (already answered, timed out,
                or never asked).
        """
        slot = self.slots.get(key)
        if slot is None or slot.answered.is_set():
            raise KeyError(f"no {self.what} is waiting under {key!r}")
        slot.answer = answer
        slot.answered.set()

    async def wait(
        self, key: str, request: _Request, deadline: float, announce: Callable[[_Request], None]
    ) -> _Answer | None:
        """Announces ``request`` and waits for its answer; ``None`` past ``deadline``."""
        slot = _Slot[_Request, _Answer](request)
        self.slots[key] = slot
        try:
            announce(request)
            with trio.move_on_at(deadline):
                await slot.answered.wait()
        finally:
            del self.slots[key]
        return slot.answer


@attrs.define
class Approvals:
    """A session's approval state: sticky decisions and the requests waiting."""

    sticky: dict[str, bool] = attrs.Factory(dict)
    waiting: Waiting[ApprovalRequest, Decision] = attrs.Factory(lambda: Waiting("approval"))

    @property
    def pending(self) -> list[ApprovalRequest]:
        """The requests waiting for the application, oldest first."""
        return self.waiting.pending

    def decide(self, request: ApprovalRequest | str, decision: Decision) -> None:
        """Answers a waiting request (by the request or its call id).

        Raises:
            KeyError: nothing is waiting under that call id (already answered,
                timed out, or never asked).
        """
        self.waiting.decide(request if isinstance(request, str) else request.call_id, decision)

    async def ask(
        self,
        request: ApprovalRequest,
        *,
        hook: ApprovalHook | None,
        announce: Callable[[ApprovalRequest], None],
        policies: Sequence[ApprovalHook] = (),
    ) -> Decision:
        """The decision on ``request``; never raises for a missing answer.

        Sticky decisions first, then ``policies`` (plugins), then ``hook`` (the
        agent's), then the application until the deadline.
        """
        if request.tool in self.sticky:
            approved = self.sticky[request.tool]
            return Decision(approved, None if approved else "always denied for this session")
        for source in (*policies, hook):
            if source is None:
                continue
            answer = await source(request)
            if answer is not None:
                decision = answer if isinstance(answer, Decision) else Decision(bool(answer))
                return self._remember(request, decision)
        answered = await self.waiting.wait(request.call_id, request, request.deadline, announce)
        if answered is None:
            if math.isinf(request.deadline):
                return Decision(False, "the approval was abandoned")
            return Decision(False, "nobody approved the call in time")
        return self._remember(request, answered)

    def _remember(self, request: ApprovalRequest, decision: Decision) -> Decision:
        if decision.always:
            self.sticky[request.tool] = decision.approved
        return decision
