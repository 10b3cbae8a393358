"""One response: it asks the brain, streams what the brain decides, and closes.

A :class:`Response` runs in a task of its own, inside its own cancel scope:
``response.cancel`` and barge-in stop it between two events, and it then
closes what it had open (the ``*.done`` events, shielded and bounded) and
sends ``response.done`` with ``cancelled``. Its outputs are in
:mod:`._outputs` (messages, function calls) and :mod:`._mcp_calls` (hosted
MCP calls and approval requests), one object per output item, each owning
what it has streamed.

The brain may answer with several outputs: each ``Say`` becomes its own
assistant message (a short preamble, then the answer, as gpt-realtime-2
does), each call its own item. After MCP calls the engine ran itself the
brain is asked again, at most :data:`MAX_TOOL_ROUNDS` times per response.

A brain (or synthesizer) that raises fails this response only: it ends
``failed``, and an ``error`` event names the cause. A :class:`BrainError` is
the brain's own report of a mistake to fix (its message says which); any
other exception is unexpected, and its traceback is logged at debug level.

Bounds: the output token budget (``max_output_tokens``, which cuts the text
and so the audio, ending the response ``incomplete``); the brain rounds; the
call contexts kept for the brain (:data:`MAX_CALL_CONTEXTS`, oldest forgotten).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol

import attrs
import trio

from framework.protocol import (
    ConversationItem,
    RealtimeResponse,
    RealtimeResponseStatus,
    ResponseAudio,
    ResponseAudioOutput,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseStatusError,
)

from ._brain import Brain, BrainError, BrainOutput, BrainRequest, CallFunction, CallMcp, Say
from ._config import RequestError
from ._conversation import Conversation
from ._mcp import McpServers
from ._mcp_calls import run_approved, stream_mcp
from ._outbox import Outbox
from ._outputs import stream_call, stream_message
from ._response_params import ResponseParams
from ._speech import Synthesizer
from ._stored_item import StoredItem
from ._usage import InputTokens, SessionUsage, text_tokens

MAX_TOOL_ROUNDS = 8
"""Brain turns in one response after MCP calls it made itself."""
MAX_CALL_CONTEXTS = 1024
"""Call contexts kept in the brain's memory (the oldest are forgotten)."""
CLOSE_TIMEOUT_S = 10.0
"""How long closing an output may take when the client has stopped reading."""

_log = logging.getLogger("cantata.engine")


class Output(Protocol):
    """An output item being produced: it can close, also after a cancel."""

    async def close(self, status: str) -> None:
        """Sends its done events and stores its final form."""
        ...


@attrs.define(kw_only=True)
class ResponseServices:
    """What responses use of their session."""

    outbox: Outbox
    conversation: Conversation
    mcp: McpServers
    brain: Brain
    synthesizer: Synthesizer
    usage: SessionUsage
    memory: MutableMapping[str, Any] = attrs.Factory(dict)
    """The brain's per-session scratch space (``memory["calls"]``: call contexts)."""
    audio_produced: bool = False
    """The model has spoken in this session (its voice can no longer change)."""


class _Failed(Exception):
    """The response cannot go on; the message is the cause the client is told."""


@attrs.define(kw_only=True, eq=False)
class Response:
    """A response in flight: its parameters, its output and its cancellation."""

    id: str
    params: ResponseParams
    services: ResponseServices
    context: list[StoredItem] = attrs.Factory(list)
    """What its brain read first (the conversation, or its own input)."""
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    cancel_reason: str | None = None
    output: list[ConversationItem] = attrs.Factory(list)
    output_tokens_text: int = 0
    output_tokens_audio: int = 0
    audio_ms: int = 0
    """Milliseconds of audio it streamed (the client plays them after response.done)."""
    incomplete_reason: str | None = None
    failure: str | None = None
    open: Output | None = None

    @property
    def spent(self) -> int:
        return self.output_tokens_text + self.output_tokens_audio

    @property
    def closing(self) -> bool:
        """Cancelled, and still closing what it had open."""
        return self.cancel_reason is not None

    def remember(self, key: str, context: Mapping[str, Any]) -> None:
        """Keeps a call's context for the reply to its output (the brain's memory).

        At most :data:`MAX_CALL_CONTEXTS` are kept; the oldest go first.
        """
        calls = self.services.memory.setdefault("calls", {})
        calls[key] = dict(context)
        while len(calls) > MAX_CALL_CONTEXTS:
            del calls[next(iter(calls))]

    def cancel(self, reason: str) -> None:
        """Stops the response at its next event; it then closes and reports ``cancelled``."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
            self.scope.cancel()

    # --- the run ----------------------------------------------------------------------

    async def run(self) -> None:
        """Streams the response from ``response.created`` to ``response.done``."""
        outbox = self.services.outbox
        # response.created comes first even when a cancel is already waiting.
        await outbox.emit(
            ResponseCreatedEvent(
                event_id=outbox.new_id("event"), response=self._snapshot("in_progress")
            )
        )
        with self.scope:
            try:
                await self._stream()
            except _Failed as e:
                self.failure = str(e)
            except Exception as e:  # a failing synthesizer fails this response only
                _log.debug("response %s failed", self.id, exc_info=True)
                self.failure = f"The engine failed: {type(e).__name__}: {e}"
        if self.failure is not None or self.scope.cancelled_caught:
            await self.close_open("incomplete")
        if self.failure is not None:
            await outbox.error(
                RequestError(self.failure, code="response_failed", type="server_error")
            )
        await self._done()

    async def _stream(self) -> None:
        services = self.services
        outbox = services.outbox
        await outbox.emit(services.usage.rate_limits(outbox.new_id("event")))
        # What the model hears in input audio must settle first...
        if self.params.input is None and self.params.in_conversation:
            self.context = list(services.conversation)
        else:
            self.context = list(self.params.input or [])
        for stored in self.context:
            if stored.transcribed is not None:
                await stored.transcribed.wait()
        # ...and so do the listings of its MCP servers: the model sees their tools.
        await services.mcp.wait(self.params.mcp)
        if self.params.in_conversation and self.params.input is None:
            self.context = list(services.conversation)  # what arrived meanwhile counts too
        await run_approved(self)
        budget = self.params.budget
        for _ in range(MAX_TOOL_ROUNDS):
            outputs = await self._ask_brain()
            called = False
            for output in outputs:
                if budget is not None and self.spent >= budget:
                    self.incomplete_reason = "max_output_tokens"
                    return
                called = await self._produce(output) or called
            # After MCP calls the engine ran itself the model goes on in this response.
            if not called:
                break

    async def _ask_brain(self) -> list[BrainOutput]:
        services = self.services
        request = BrainRequest(
            instructions=self.params.instructions,
            items=self.items(),
            tools=self.params.tools,
            tool_choice=self.params.tool_choice,
            memory=services.memory,
            mcp_tools=services.mcp.tools(self.params.mcp),
        )
        try:
            return list(await services.brain.respond(request))
        except BrainError as e:
            raise _Failed(str(e)) from None
        except Exception as e:  # any brain may fail; the session lives on
            _log.debug("the brain failed in response %s", self.id, exc_info=True)
            raise _Failed(f"The brain failed: {type(e).__name__}: {e}") from None

    async def _produce(self, output: BrainOutput) -> bool:
        """Streams one output; True when it was an MCP call the engine ran."""
        if isinstance(output, Say):
            await stream_message(self, output.text)
        elif isinstance(output, CallFunction):
            await stream_call(self, output)
        elif isinstance(output, CallMcp):
            return await stream_mcp(self, output)
        return False

    def items(self) -> list[ConversationItem]:
        """What the brain sees now: the conversation, or the input and what was output."""
        if self.params.in_conversation and self.params.input is None:
            return self.services.conversation.items()
        return [*(stored.understood() for stored in self.context), *self.output]

    # --- output items -----------------------------------------------------------------

    async def add_output(self, item: ConversationItem) -> tuple[int, StoredItem | None]:
        """Announces a new output item; it joins the conversation when the response does."""
        outbox = self.services.outbox
        index = len(self.output)
        self.output.append(item)
        await outbox.emit(
            ResponseOutputItemAddedEvent(
                event_id=outbox.new_id("event"), response_id=self.id, output_index=index, item=item
            )
        )
        if not self.params.in_conversation:
            return index, None
        stored = StoredItem(item=item, audio_format=self.params.fmt)
        conversation = self.services.conversation
        await conversation.add(stored, conversation.last_id(), done=False)
        return index, stored

    async def finish_output(
        self, index: int, item: ConversationItem, stored: StoredItem | None
    ) -> None:
        """Announces an output item done, in the response and in the conversation."""
        outbox = self.services.outbox
        self.output[index] = item
        await outbox.emit(
            ResponseOutputItemDoneEvent(
                event_id=outbox.new_id("event"), response_id=self.id, output_index=index, item=item
            )
        )
        if stored is not None:
            await self.services.conversation.finish(stored, item)

    async def close_open(self, status: str) -> None:
        """Closes the output being produced, if any (also after a cancel)."""
        output, self.open = self.open, None
        if output is None:
            return
        # Shielded so that a cancel landing mid-way cannot leave an item half-closed;
        # bounded because the client may have stopped reading; a client already
        # gone (the session ends) leaves no one to close it for.
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(CLOSE_TIMEOUT_S),
            contextlib.suppress(trio.BrokenResourceError),
        ):
            await output.close(status)

    # --- the end ----------------------------------------------------------------------

    @property
    def status(self) -> str:
        if self.failure is not None:
            return "failed"
        if self.scope.cancelled_caught:
            return "cancelled"
        return "incomplete" if self.incomplete_reason else "completed"

    def _snapshot(self, status: str) -> RealtimeResponse:
        params = self.params
        return RealtimeResponse(
            id=self.id,
            object="realtime.response",
            status=status,
            status_details=None,
            output=list(self.output),
            conversation_id=(
                f"conv_{self.services.outbox.nonce}" if params.in_conversation else None
            ),
            output_modalities=params.modalities,
            max_output_tokens=params.max_output_tokens,
            audio=ResponseAudio(
                output=ResponseAudioOutput(format=params.out_format, voice=params.voice_name)
            ),
            usage=None,
            metadata=params.metadata,
        )

    async def _done(self) -> None:
        status = self.status
        details = None
        if status == "cancelled":
            details = RealtimeResponseStatus(type="cancelled", reason=self.cancel_reason)
        elif status == "incomplete":
            details = RealtimeResponseStatus(type="incomplete", reason=self.incomplete_reason)
        elif status == "failed":
            details = RealtimeResponseStatus(
                type="failed",
                error=ResponseStatusError(
                    type="server_error", code="response_failed", message=self.failure
                ),
            )
        read = InputTokens(
            text=text_tokens(self.params.instructions) + sum(s.tokens().text for s in self.context),
            audio=sum(s.tokens().audio for s in self.context),
        )
        usage = self.services.usage.usage(
            read,
            output_text=self.output_tokens_text,
            output_audio=self.output_tokens_audio,
            in_conversation=self.params.in_conversation,
        )
        snapshot = attrs.evolve(self._snapshot(status), status_details=details, usage=usage)
        outbox = self.services.outbox
        await outbox.emit(ResponseDoneEvent(event_id=outbox.new_id("event"), response=snapshot))
