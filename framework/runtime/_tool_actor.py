"""The ToolExecutionActor: every function call, each in its own task.

Inbox: :data:`ToolInbox`. A :class:`CallRequested` arrives once per call,
with the tool it names and the context it runs in; the call runs in its own
task and cancel scope: approval (if the tool needs it, on the arguments
parsed once: what is approved is what runs), then the tool with its timeout.
Hosted MCP approval requests take the same approval flow and get exactly one
``mcp_approval_response``.

**Every call gets exactly one output**: success, tool error, bad arguments,
unknown tool, rejection, timeout, cancellation, a refused output or the end
of the session each become model-visible text, sent from a shielded, bounded
``finally``. Then the ResponseActor is told (:class:`CallFinished`), which asks
for the follow-up once every call of the response has its output.

Outputs longer than the session's limit are cut, with a note saying so. An
output long enough that the server might refuse it is confirmed first: the
call counts as finished when the server has added the item, or, when it
answers with an ``error``, after a short output that tells the model the
result was too large (sent once: no loop).

Barge-in applies each tool's ``on_interrupt`` policy: ``cancel`` (the call
stops, its output says so), ``finish_silently`` (it finishes, its output is
delivered, no reply is asked for it) or ``finish_and_speak``.

Shutdown: when its inbox ends (the session is closing), running calls are
cancelled and deliver their outputs; then it closes its send ends. Bounds:
:data:`MAX_RUNNING_CALLS` calls running at once (one more is answered at once
that it did not run); outputs awaiting confirmation, at most those; the last
:data:`REMEMBERED_CALLS` call ids, so a call told twice runs once.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from typing import Literal

import attrs
import trio

from framework.protocol import (
    UNSET,
    ClientEvent,
    ConversationItemCreateEvent,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
    RealtimeMcpApprovalResponse,
    UserMessageContent,
)
from framework.tools import ProgressReport, ToolArgumentsError, ToolImage

from ._approvals import ApprovalRequest, Approvals, Decision
from ._contracts import AgentLike
from ._edge import post
from ._events import (
    ApprovalRequested,
    CallStatus,
    EventHub,
    ToolCallFinished,
    ToolCallStarted,
    ToolProgress,
)
from ._messages import (
    BargedIn,
    CallFinished,
    CallRequested,
    EventIds,
    HandOff,
    OutputAccepted,
    OutputRefused,
    ResponseInbox,
    SessionInbox,
    ToolInbox,
)

_log = logging.getLogger("cantata.tools")

DELIVERY_TIMEOUT_S = 5.0
"""How long a call's output may take to reach the outbox when the call is torn down."""
DEFAULT_OUTPUT_LIMIT = 1_000_000
"""Characters of a tool's output sent at most; the rest is cut, with a note."""
CONFIRM_OVER = 256 * 1024
"""Outputs longer than this wait for the server to accept them before the follow-up."""
CONFIRM_TIMEOUT_S = 30.0
"""How long an output waits for the server's answer before it counts as accepted."""
REMEMBERED_CALLS = 1024
"""Call ids remembered, so that a call the server repeats runs once."""
MAX_RUNNING_CALLS = 64
"""Calls running at once; past it a call is answered at once that it did not run."""

_EndedBy = Literal["interrupted", "session"]


@attrs.define(kw_only=True, eq=False)
class _Call:
    request: CallRequested
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    ended_by: _EndedBy | None = None
    speak: bool = True
    status: CallStatus | None = None
    output: str = ""
    handoff: AgentLike | None = None
    images: tuple[ToolImage, ...] = ()
    answered: trio.Event = attrs.Factory(trio.Event)
    refusal: OutputRefused | None = None

    @property
    def policy(self) -> str:
        tool = self.request.tool
        return tool.on_interrupt if tool is not None else "cancel"


class ToolExecutionActor:
    """Runs function calls and sends their outputs (see the module docstring).

    Args:
        inbox: its inbox.
        outbox: a send end of the outbox.
        to_responses: the ResponseActor's inbox.
        to_session: the SessionActor's inbox (for handoffs).
        events: where application events go.
        approvals: the session's approvals (the application answers there).
        output_limit: characters of an output sent at most.
    """

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[ToolInbox],
        *,
        outbox: trio.MemorySendChannel[ClientEvent],
        to_responses: trio.MemorySendChannel[ResponseInbox],
        to_session: trio.MemorySendChannel[SessionInbox],
        events: EventHub,
        approvals: Approvals,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._to_responses = to_responses
        self._to_session = to_session
        self._events = events
        self._approvals = approvals
        self._limit = output_limit
        self.running: dict[str, _Call] = {}
        self._confirming: dict[str, _Call] = {}  # by the event_id of the output's create
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._next_id = EventIds()
        self.stats = {"calls": 0, "outputs_refused": 0, "outputs_cut": 0}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._outbox, self._to_responses, self._to_session:
            async with trio.open_nursery() as calls:
                task_status.started()
                with self._inbox:
                    async for message in self._inbox:
                        if isinstance(message, CallRequested):
                            if self._first_time(message.call_id):
                                await self._start(calls, message)
                        elif isinstance(message, BargedIn):
                            self._barge_in()
                        elif isinstance(message, OutputAccepted):
                            self._accepted(message)
                        else:
                            self._refused(message)
                # Intake is over: the session is closing. Each call still running
                # is cancelled and delivers its output before the nursery exits;
                # none asks for a reply any more.
                self._to_responses.close()
                for call in self.running.values():
                    call.ended_by = call.ended_by or "session"
                    call.scope.cancel()
                for call in self._confirming.values():
                    call.answered.set()

    def _first_time(self, call_id: str) -> bool:
        if call_id in self._seen:
            _log.warning("call %s was requested twice; it runs once", call_id)
            return False
        self._seen[call_id] = None
        if len(self._seen) > REMEMBERED_CALLS:
            self._seen.popitem(last=False)
        return True

    async def _start(self, calls: trio.Nursery, request: CallRequested) -> None:
        call = _Call(request=request)
        if len(self.running) >= MAX_RUNNING_CALLS:
            # Still one output, sent from here: no task, so a flood of calls is
            # held back by this inbox instead of growing the nursery.
            call.status = "error"
            call.output = (
                f"Error: {MAX_RUNNING_CALLS} calls are running already; {request.name} did "
                "not run. Try again when they have finished."
            )
            await self._deliver(call)
            return
        self.running[request.call_id] = call
        self.stats["calls"] += 1
        calls.start_soon(self._execute, call, name=f"tool {request.name} {request.call_id}")

    def _barge_in(self) -> None:
        for call in self.running.values():
            if call.policy == "cancel":
                call.ended_by = call.ended_by or "interrupted"
                call.scope.cancel()
            elif call.policy == "finish_silently":
                call.speak = False

    # --- one call ----------------------------------------------------------------------

    async def _execute(self, call: _Call) -> None:
        try:
            with call.scope:
                call.status, call.output = await self._outcome(call)
        finally:
            if call.status is None:  # cancelled before it had an outcome
                call.status = "cancelled"
                call.output = {
                    "interrupted": "The call was cancelled because the user interrupted.",
                    "session": "The call was cancelled because the session ended.",
                    None: "The call was cancelled.",
                }[call.ended_by]
            # Shielded, bounded; a closed channel means the session is gone and
            # there is nobody left to tell.
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(DELIVERY_TIMEOUT_S),
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
            ):
                await self._deliver(call)
            self.running.pop(call.request.call_id, None)

    async def _outcome(self, call: _Call) -> tuple[CallStatus, str]:
        """Runs the call: its status and the model-visible output."""
        request = call.request
        if request.server_label is not None:
            decision = await self._approve(request)
            return ("approved", "") if decision.approved else ("rejected", decision.reason or "")
        tool = request.tool
        if tool is None:
            names = ", ".join(request.context.tool_names) or "none"
            return (
                "unknown_tool",
                f"Error: there is no tool named {request.name!r}. Available tools: {names}.",
            )
        try:
            values = tool.parse_arguments(request.arguments)
        except ToolArgumentsError as e:
            return "bad_arguments", str(e)
        if await tool.needs_approval_for(values):
            decision = await self._approve(request, values)
            if not decision.approved:
                reason = f" Reason: {decision.reason}" if decision.reason else ""
                return "rejected", f"The call was not approved, so it did not run.{reason}"
        self._events.publish(
            ToolCallStarted(call_id=request.call_id, name=request.name, arguments=request.arguments)
        )
        agent = request.context.agent

        def progressed(report: ProgressReport) -> None:
            self._events.publish(
                ToolProgress(
                    call_id=request.call_id,
                    name=request.name,
                    progress=report.progress,
                    total=report.total,
                    message=report.message,
                )
            )

        outcome = await tool.run(
            values,
            default_timeout=agent.tool_timeout,
            call_id=request.call_id,
            on_progress=progressed,
        )
        call.images = outcome.images
        target = agent.handoff_target(outcome.value) if outcome.ok else None
        if target is not None:
            call.handoff = target
            return "ok", f"Transferred to {target.name}. Continue the conversation."
        return outcome.status, outcome.output

    async def _approve(
        self, request: CallRequested, values: dict[str, object] | None = None
    ) -> Decision:
        agent = request.context.agent
        label = request.server_label
        asked = ApprovalRequest(
            call_id=request.call_id,
            tool=f"{label}.{request.name}" if label is not None else request.name,
            arguments=request.arguments,
            deadline=trio.current_time() + agent.approval_timeout,
            kind="mcp" if label is not None else "function",
            values=values,
        )
        return await self._approvals.ask(
            asked,
            hook=agent.approve_tool_call,
            announce=self._announce,
            policies=request.context.policies,
        )

    def _announce(self, request: ApprovalRequest) -> None:
        """Offers ``request`` to the application, and says so at once when nothing reads.

        An application that never iterates the session would otherwise wait
        out the whole deadline without a word.
        """
        self._events.publish(ApprovalRequested(request=request))
        if not self._events.read:
            _log.warning(
                "tool %r needs approval (call %s) and nothing reads this session's events: "
                "answer with session.approve() or session.reject() within %.0f s, "
                "or it is rejected",
                request.tool,
                request.call_id,
                request.deadline - trio.current_time(),
            )

    # --- delivery ------------------------------------------------------------------------

    async def _deliver(self, call: _Call) -> None:
        if call.handoff is not None:
            # The new agent's session.update goes out before this output.
            applied = trio.Event()
            await self._to_session.send(HandOff(target=call.handoff, applied=applied))
            await applied.wait()
        request = call.request
        if request.server_label is not None:
            approved = call.status == "approved"
            await self._send_item(
                RealtimeMcpApprovalResponse(
                    id=self._next_id("mcpr"),
                    approval_request_id=request.call_id,
                    approve=approved,
                    reason=call.output if not approved and call.output else UNSET,
                ),
                "mcpr",
            )
        else:
            call.output = output = self._fit(call.output)
            event_id = await self._send_item(
                RealtimeConversationItemFunctionCallOutput(call_id=request.call_id, output=output),
                "output",
            )
            if len(output) > CONFIRM_OVER:
                await self._confirm(call, event_id)
            if call.images and call.status == "ok":
                await self._show_images(call)
        self._events.publish(
            ToolCallFinished(
                call_id=request.call_id,
                name=request.name,
                arguments=request.arguments,
                status=call.status or "cancelled",
                output=call.output,
            )
        )
        await post(self._to_responses, CallFinished(call_id=request.call_id, speak=call.speak))

    async def _show_images(self, call: _Call) -> None:
        """Adds a call's images after its output, for the follow-up response to see.

        A function's output is text only (the protocol's ``function_call_output``),
        so the images go in a user message of ``input_image`` parts; the output
        says they follow.
        """
        parts = [
            UserMessageContent(
                type="input_text",
                text=f"The images {call.request.name} returned (call {call.request.call_id}):",
            ),
            *(UserMessageContent(type="input_image", image_url=i.data_url) for i in call.images),
        ]
        await self._send_item(RealtimeConversationItemUserMessage(content=parts), "image")

    async def _send_item(
        self,
        item: RealtimeConversationItemFunctionCallOutput
        | RealtimeMcpApprovalResponse
        | RealtimeConversationItemUserMessage,
        prefix: str,
    ) -> str:
        event_id = self._next_id(prefix)
        await self._outbox.send(ConversationItemCreateEvent(event_id=event_id, item=item))
        return event_id

    def _fit(self, output: str) -> str:
        if len(output) <= self._limit:
            return output
        self.stats["outputs_cut"] += 1
        note = (
            f"\n[Cut: the result was {len(output)} characters; "
            f"only the first {self._limit} are shown.]"
        )
        return output[: max(0, self._limit - len(note))] + note

    async def _confirm(self, call: _Call, event_id: str) -> None:
        """Waits for the server to take a long output; tells the model if it refused it."""
        self._confirming[event_id] = call
        try:
            with trio.move_on_after(CONFIRM_TIMEOUT_S):
                await call.answered.wait()
        finally:
            del self._confirming[event_id]
        refusal = call.refusal
        if refusal is None:
            return
        self.stats["outputs_refused"] += 1
        _log.warning("the server refused the output of %s: %s", call.request.name, refusal.message)
        call.status = "refused"
        call.output = (
            f"The result of {call.request.name} was too large to send ({len(call.output)} "
            f"characters), so the server refused it: {refusal.message}"
        )
        # Sent once, without waiting for it: a short output is not refused for its size.
        await self._send_item(
            RealtimeConversationItemFunctionCallOutput(
                call_id=call.request.call_id, output=call.output
            ),
            "output",
        )

    def _accepted(self, message: OutputAccepted) -> None:
        for call in self._confirming.values():
            if call.request.call_id == message.call_id:
                call.answered.set()
                return

    def _refused(self, message: OutputRefused) -> None:
        if message.event_id is not None:
            call = self._confirming.get(message.event_id)
        else:
            # No event id to match: the oldest output still waiting for its answer.
            call = next(iter(self._confirming.values()), None)
        if call is None:
            return
        call.refusal = message
        call.answered.set()
