"""Elicitation: a question for the user, asked by a tool (an MCP server), with a deadline.

An MCP server may ask the user for information mid-call: a form described by
a JSON schema (form mode), or a URL the user opens to finish something out
of band, a login or a payment (URL mode). It reaches the session as an
:class:`ElicitationRequest` and takes the approvals' path: the agent's
``answer_elicitation`` hook, then the application
(``session.answer_elicitation`` with the form's content,
``session.decline_elicitation``, ``session.cancel_elicitation``), until the
deadline; no answer by then is a decline, and the server is told so.

:class:`Elicitations` belongs to the session; plugins ask through
:meth:`Elicitations.ask` (handed to them in their ``PluginContext``), the
application answers through the ``Session`` handle. It holds only the
questions waiting now.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, TypeAlias

import attrs
import trio

from ._approvals import Waiting

__all__ = ["ElicitationAnswer", "ElicitationHook", "ElicitationRequest", "Elicitations"]

ElicitationAction: TypeAlias = Literal["accept", "decline", "cancel"]


@attrs.frozen(kw_only=True, eq=False)
class ElicitationRequest:
    """A question for the user, from a tool.

    Attributes:
        id: How the application answers it (``session.answer_elicitation(id, ...)``).
        source: Who asks: the MCP server's name.
        message: The question, as the server words it.
        mode: ``"form"``: answer with ``content`` matching ``schema``;
            ``"url"``: send the user to ``url``, then accept (no content).
        schema: The requested form (a flat JSON schema object), in form mode.
        url: The page to open, in URL mode.
        call_id: The tool call it belongs to, when known.
        deadline: When no answer becomes a decline (trio clock seconds).
    """

    id: str = ""
    source: str
    message: str
    mode: Literal["form", "url"] = "form"
    schema: Mapping[str, object] | None = None
    url: str | None = None
    call_id: str | None = None
    deadline: float = math.inf


@attrs.frozen
class ElicitationAnswer:
    """The answer to an :class:`ElicitationRequest`.

    ``accept`` carries the form's ``content`` (none in URL mode); ``decline``
    is "no"; ``cancel`` is "not now" (the user dismissed it).
    """

    action: ElicitationAction
    content: Mapping[str, object] | None = None
    reason: str | None = None
    """Why it was declined, for logs (a timeout, say); not sent to the server."""


ElicitationHook: TypeAlias = Callable[[ElicitationRequest], Awaitable["ElicitationAnswer | None"]]
"""The agent's hook: an answer, or ``None`` to leave the question to the application."""


@attrs.define
class Elicitations:
    """A session's questions waiting for the user (see the module docstring).

    Attributes:
        timeout: Seconds a question waits for an answer.
        hook: Returns the agent in charge's hook (it changes at a handoff).
        announce: Tells the application a question waits (an event).
    """

    timeout: Callable[[], float]
    hook: Callable[[], ElicitationHook | None]
    announce: Callable[[ElicitationRequest], None]
    waiting: Waiting[ElicitationRequest, ElicitationAnswer] = attrs.Factory(
        lambda: Waiting("elicitation")
    )
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))

    @property
    def pending(self) -> list[ElicitationRequest]:
        """The questions waiting for the application, oldest first."""
        return self.waiting.pending

    def decide(self, request: ElicitationRequest | str, answer: ElicitationAnswer) -> None:
        """Answers a waiting question (by the request or its id).

        Raises:
            KeyError: nothing waits under that id (answered, timed out, never asked).
        """
        self.waiting.decide(request if isinstance(request, str) else request.id, answer)

    async def ask(self, question: ElicitationRequest) -> ElicitationAnswer:
        """The user's answer to ``question``; a decline when nobody answers in time.

        The question gets its id and deadline here; the agent's hook is asked
        first, then the application. Never raises for a missing answer.
        """
        request = attrs.evolve(
            question,
            id=f"elicit_{next(self._ids):06d}",
            deadline=trio.current_time() + self.timeout(),
        )
        hook = self.hook()
        if hook is not None:
            with trio.move_on_at(request.deadline):
                answer = await hook(request)
                if answer is not None:
                    return answer
        answer = await self.waiting.wait(request.id, request, request.deadline, self.announce)
        return answer or ElicitationAnswer("decline", reason="nobody answered in time")
