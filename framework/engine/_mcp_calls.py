"""A response's hosted MCP outputs: calls the engine runs, and approval requests.

When the brain calls a hosted MCP tool, the server's ``require_approval``
decides: an ``mcp_approval_request`` item ends the response's part in it (the
client answers with an ``mcp_approval_response`` and a new
``response.create``), or the engine runs the call at once as an ``mcp_call``
item: its arguments streamed, ``response.mcp_call.in_progress``, the call
(inside the response's task, so a cancel stops it), then ``.completed`` or
``.failed`` and the item with its output or error. Approved requests run at
the start of the next response whose context holds the approval; one that
already has its ``mcp_call`` is not run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from framework.protocol import (
    McpListedTool,
    RealtimeMcpApprovalRequest,
    RealtimeMcpApprovalResponse,
    RealtimeMcpToolCall,
    RealtimeMcpToolExecutionError,
    ResponseMcpCallArgumentsDelta,
    ResponseMcpCallArgumentsDone,
    ResponseMcpCallCompleted,
    ResponseMcpCallFailed,
    ResponseMcpCallInProgress,
)

from ._brain import CallMcp
from ._hosted_mcp import McpCallResult, needs_approval
from ._outputs import ARGUMENT_CHUNK
from ._stored_item import StoredItem
from ._usage import text_tokens

if TYPE_CHECKING:
    from ._response import Response


@attrs.define(kw_only=True, eq=False)
class McpCallOutput:
    """An ``mcp_call`` in progress: arguments streaming, ready, then calling."""

    response: Response
    index: int
    item: RealtimeMcpToolCall
    stored: StoredItem | None
    arguments: str = ""
    stage: str = "arguments"  # "arguments" (streaming), "ready" (done sent), "calling"
    result: McpCallResult | None = None

    def _base(self) -> dict[str, Any]:
        return {"item_id": self.item.id, "output_index": self.index}

    async def run(self, call: CallMcp) -> None:
        """Streams the arguments and runs the call."""
        response = self.response
        outbox = response.services.outbox
        for start in range(0, len(call.arguments), ARGUMENT_CHUNK):
            delta = call.arguments[start : start + ARGUMENT_CHUNK]
            await outbox.emit(
                ResponseMcpCallArgumentsDelta(
                    event_id=outbox.new_id("event"),
                    response_id=response.id,
                    delta=delta,
                    **self._base(),
                )
            )
            self.arguments += delta
        response.output_tokens_text += text_tokens(call.arguments) + 2
        await outbox.emit(
            ResponseMcpCallArgumentsDone(
                event_id=outbox.new_id("event"),
                response_id=response.id,
                arguments=call.arguments,
                **self._base(),
            )
        )
        self.stage = "ready"
        await outbox.emit(
            ResponseMcpCallInProgress(event_id=outbox.new_id("event"), **self._base())
        )
        self.stage = "calling"
        tool = response.params.mcp.get(call.server_label)
        if tool is None:
            self.result = McpCallResult.tool_error(
                f"No MCP server labelled '{call.server_label}' is among this response's tools."
            )
        else:
            self.result = await response.services.mcp.call(tool, call.name, call.arguments)

    async def close(self, status: str) -> None:
        """The call's remaining events (also after a cancel), then the item done."""
        response = self.response
        outbox = response.services.outbox
        if self.stage == "arguments":
            await outbox.emit(
                ResponseMcpCallArgumentsDone(
                    event_id=outbox.new_id("event"),
                    response_id=response.id,
                    arguments=self.arguments,
                    **self._base(),
                )
            )
        result = self.result or McpCallResult(
            error=RealtimeMcpToolExecutionError(
                message="The call was cancelled with its response before it finished."
            )
        )
        if self.stage == "calling":
            done_event = ResponseMcpCallCompleted if result.error is None else ResponseMcpCallFailed
            await outbox.emit(done_event(event_id=outbox.new_id("event"), **self._base()))
        if result.error is None:
            done = attrs.evolve(self.item, arguments=self.arguments, output=result.output or "")
        else:
            done = attrs.evolve(self.item, arguments=self.arguments, error=result.error)
        await response.finish_output(self.index, done, self.stored)


@attrs.define(kw_only=True, eq=False)
class ApprovalRequestOutput:
    """An ``mcp_approval_request``: announced, then done at once."""

    response: Response
    index: int
    item: RealtimeMcpApprovalRequest
    stored: StoredItem | None

    async def close(self, status: str) -> None:
        await self.response.finish_output(self.index, self.item, self.stored)


async def stream_mcp(response: Response, call: CallMcp) -> bool:
    """A call the brain made: asks for approval, or runs it; True when it ran."""
    tool = response.params.mcp.get(call.server_label)
    # A tool not (or no longer) listed has no annotations: only its name can waive approval.
    listed = response.services.mcp.listed(call.server_label, call.name) or McpListedTool(
        name=call.name, input_schema={}
    )
    if tool is not None and needs_approval(tool, listed):
        item = RealtimeMcpApprovalRequest(
            id=response.services.outbox.new_id("mcpr"),
            server_label=call.server_label,
            name=call.name,
            arguments=call.arguments,
        )
        response.remember(item.id, call.context)
        index, stored = await response.add_output(item)
        response.open = ApprovalRequestOutput(
            response=response, index=index, item=item, stored=stored
        )
        response.output_tokens_text += text_tokens(call.arguments) + 2
        await response.close_open("completed")
        return False
    await _run_call(response, call)
    return True


async def _run_call(
    response: Response, call: CallMcp, *, approval_request_id: str | None = None
) -> None:
    item = RealtimeMcpToolCall(
        id=response.services.outbox.new_id("mcp"),
        server_label=call.server_label,
        name=call.name,
        arguments="",
        approval_request_id=approval_request_id,
    )
    response.remember(item.id, call.context)
    index, stored = await response.add_output(item)
    output = McpCallOutput(response=response, index=index, item=item, stored=stored)
    response.open = output
    await output.run(call)
    await response.close_open("completed")


async def run_approved(response: Response) -> None:
    """Runs the calls the client approved since they were asked for (§7.6)."""
    items = response.items()
    requests = {i.id: i for i in items if isinstance(i, RealtimeMcpApprovalRequest)}
    ran = {i.approval_request_id for i in items if isinstance(i, RealtimeMcpToolCall)}
    for item in items:
        if not isinstance(item, RealtimeMcpApprovalResponse) or not item.approve:
            continue
        request = requests.get(item.approval_request_id)
        if request is None or request.id in ran:
            continue
        ran.add(request.id)
        context = response.services.memory.get("calls", {}).get(request.id, {})
        call = CallMcp(request.server_label, request.name, request.arguments, context)
        await _run_call(response, call, approval_request_id=request.id)
