"""The ToolExecutionActor: every function call, in its own nursery.

Inbox: ``response.function_call_arguments.done`` (a call to run),
``response.output_item.done`` with an ``mcp_approval_request`` (a hosted MCP
call the server wants approved), ``response.done`` (the set of calls of a
response is complete) and :class:`BargedIn`. Each call runs in its own task and cancel scope:
approval (if the tool needs it), then the tool with its timeout.

Hosted MCP approval requests go through the same approval flow as local
tools and get exactly one ``mcp_approval_response``.

**Every call gets exactly one** ``function_call_output``: success, tool
error, bad arguments, unknown tool, rejection, timeout or cancellation each
become model-visible text, sent from a shielded, bounded ``finally``. When
every call of a response has its output, exactly one ``response.create``
follows, unless every call was told to finish silently by a barge-in.

Barge-in applies each tool's ``on_interrupt`` policy: ``cancel`` (the call
stops, its output says so), ``finish_silently`` (it finishes, its output is
delivered, no reply is asked for it) or ``finish_and_speak``.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import trio

from framework.approval import ApprovalRequest, Decision
from framework.events import ApprovalRequested, HandedOff, ToolCallFinished, ToolCallStarted
from framework.protocol import (
    UNSET,
    ConversationItemCreateEvent,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeMcpApprovalRequest,
    RealtimeMcpApprovalResponse,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemDoneEvent,
    SessionUpdateEvent,
)
from framework.tools import ToolArgumentsError
from framework.transport import ConnectionClosed

from ._messages import BargedIn, CreateResponse
from ._runtime import Runtime

_log = logging.getLogger("cantata.tools")

DELIVERY_TIMEOUT_S = 5.0
"""How long a call's output may take to reach the outbox when the call is torn down."""


@attrs.define(kw_only=True, eq=False)
class _Call:
    call_id: str
    name: str
    arguments: str
    response_id: str
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    interrupted: bool = False
    speak: bool = True
    delivered: bool = False
    status: str = "pending"
    output: str = ""
    mcp_label: str | None = None  # a hosted MCP approval request, from this server


@attrs.define(kw_only=True)
class _Batch:
    """The calls of one response."""

    calls: list[_Call] = attrs.Factory(list)
    response_done: bool = False
    settled: bool = False


class ToolExecutionActor:
    """Runs function calls and sends their outputs (see the module docstring)."""

    def __init__(self, runtime: Runtime, inbox: trio.MemoryReceiveChannel[Any]) -> None:
        self.rt = runtime
        self.inbox = inbox
        self.batches: dict[str, _Batch] = {}
        self.running: dict[str, _Call] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            async with self.inbox:
                async for message in self.inbox:
                    await self.handle(message)
            nursery.cancel_scope.cancel()

    async def handle(self, message: Any) -> None:
        if isinstance(message, ResponseFunctionCallArgumentsDoneEvent):
            self._start(message)
        elif isinstance(message, ResponseOutputItemDoneEvent) and isinstance(
            message.item, RealtimeMcpApprovalRequest
        ):
            request = message.item
            self._launch(
                _Call(
                    call_id=request.id,
                    name=request.name,
                    arguments=request.arguments,
                    response_id=message.response_id,
                    mcp_label=request.server_label,
                )
            )
        elif isinstance(message, ResponseDoneEvent):
            response_id = message.response.id
            if isinstance(response_id, str) and response_id in self.batches:
                self.batches[response_id].response_done = True
                await self._settle(response_id)
        elif isinstance(message, BargedIn):
            self._barge_in()

    def _start(self, event: ResponseFunctionCallArgumentsDoneEvent) -> None:
        name = event.name if isinstance(event.name, str) else ""
        call = _Call(
            call_id=event.call_id,
            name=name,
            arguments=event.arguments,
            response_id=event.response_id,
        )
        self._launch(call)

    def _launch(self, call: _Call) -> None:
        self.batches.setdefault(call.response_id, _Batch()).calls.append(call)
        self.running[call.call_id] = call
        assert self._nursery is not None
        self._nursery.start_soon(self._execute, call, name=f"tool {call.name} {call.call_id}")

    def _barge_in(self) -> None:
        for call in self.running.values():
            policy = self._tool_policy(call.name)
            if policy == "cancel":
                call.interrupted = True
                call.scope.cancel()
            elif policy == "finish_silently":
                call.speak = False

    def _tool_policy(self, name: str) -> str:
        tool = self.rt.find_tool(name)
        return str(getattr(tool, "on_interrupt", "cancel")) if tool is not None else "cancel"

    # --- one call ----------------------------------------------------------------------

    async def _execute(self, call: _Call) -> None:
        handoff: Any = None
        try:
            with call.scope:
                status, output, handoff = await self._outcome(call)
                call.status, call.output = status, output
            if call.scope.cancelled_caught and call.status == "pending":
                call.status = "cancelled"
                call.output = (
                    "The call was cancelled because the user interrupted."
                    if call.interrupted
                    else "The call was cancelled."
                )
        finally:
            if call.status == "pending":  # torn down from outside (session ending)
                call.status, call.output = "cancelled", "The call was cancelled."
            with trio.CancelScope(shield=True), trio.move_on_after(DELIVERY_TIMEOUT_S):
                try:
                    if handoff is not None:
                        await self._hand_off(handoff)
                    await self._deliver(call)
                except ConnectionClosed:
                    pass  # the session is gone: there is nobody left to tell
        await self._settle(call.response_id)

    async def _outcome(self, call: _Call) -> tuple[str, str, Any]:
        """Runs the call; returns ``(status, output, agent to hand off to)``."""
        agent = self.rt.agent
        if call.mcp_label is not None:
            decision = await self._approve(call)
            if decision.approved:
                return "approved", "", None
            return "rejected", decision.reason or "", None
        tool = self.rt.find_tool(call.name)
        if tool is None:
            names = ", ".join(self.rt.tools()) or "none"
            return (
                "unknown_tool",
                f"Error: there is no tool named {call.name!r}. Available tools: {names}.",
                None,
            )
        try:
            parsed: dict[str, Any] | None = tool.parse_arguments(call.arguments)
        except ToolArgumentsError:
            parsed = None  # nothing to approve: invoke() reports the bad arguments
        if parsed is not None and await tool.needs_approval_for(parsed):
            decision = await self._approve(call)
            if not decision.approved:
                reason = f" Reason: {decision.reason}" if decision.reason else ""
                return "rejected", f"The call was not approved, so it did not run.{reason}", None
        self.rt.publish(
            ToolCallStarted(call_id=call.call_id, name=call.name, arguments=call.arguments)
        )
        self.rt.call_hook("on_tool_call", call.name, call.arguments)
        outcome = await tool.invoke(call.arguments, default_timeout=agent.tool_timeout)
        from framework.agent import Agent

        if isinstance(outcome.value, Agent):
            target = outcome.value
            return "ok", f"Transferred to {target.name}. Continue the conversation.", target
        return outcome.status, outcome.output, None

    async def _approve(self, call: _Call) -> Decision:
        agent = self.rt.agent
        request = ApprovalRequest(
            call_id=call.call_id,
            tool=f"{call.mcp_label}.{call.name}" if call.mcp_label is not None else call.name,
            arguments=call.arguments,
            deadline=trio.current_time() + agent.approval_timeout,
            kind="mcp" if call.mcp_label is not None else "function",
        )
        return await self.rt.approvals.ask(
            request,
            hook=agent.approve_tool_call,
            announce=lambda r: self.rt.publish(ApprovalRequested(request=r)),
            policies=[c.approve for _, c in self.rt.contributions if c.approve is not None],
        )

    async def _hand_off(self, target: Any) -> None:
        # Sent before the call's output, so the follow-up response is the new agent's.
        previous = self.rt.agent
        self.rt.agent = target
        config = self.rt.session_config(handoff=True)
        await self.rt.outbox.send(
            SessionUpdateEvent(event_id=self.rt.outbox.next_id("handoff"), session=config)
        )
        self.rt.publish(HandedOff(from_agent=previous.name, to_agent=target.name))

    async def _deliver(self, call: _Call) -> None:
        if call.delivered:
            return
        call.delivered = True
        self.running.pop(call.call_id, None)
        item: RealtimeMcpApprovalResponse | RealtimeConversationItemFunctionCallOutput
        if call.mcp_label is not None:
            approved = call.status == "approved"
            item = RealtimeMcpApprovalResponse(
                id=self.rt.outbox.next_id("mcpr"),
                approval_request_id=call.call_id,
                approve=approved,
                reason=call.output if not approved and call.output else UNSET,
            )
        else:
            item = RealtimeConversationItemFunctionCallOutput(
                call_id=call.call_id, output=call.output
            )
        await self.rt.outbox.send(
            ConversationItemCreateEvent(event_id=self.rt.outbox.next_id("output"), item=item)
        )
        self.rt.publish(
            ToolCallFinished(
                call_id=call.call_id,
                name=call.name,
                arguments=call.arguments,
                status=call.status,
                output=call.output,
            )
        )

    async def _settle(self, response_id: str) -> None:
        """Once a response is done and all its calls delivered: one follow-up."""
        batch = self.batches.get(response_id)
        if batch is None or batch.settled or not batch.response_done:
            return
        if not all(c.delivered for c in batch.calls):
            return
        batch.settled = True
        del self.batches[response_id]
        if any(c.speak for c in batch.calls):
            self.rt.activity.up()  # before the calls count down: never quiet in between
            await self.rt.response_inbox.send(CreateResponse(reason="tool outputs"))
        for _ in batch.calls:
            self.rt.activity.down()
