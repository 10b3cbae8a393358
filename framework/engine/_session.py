"""One Realtime session of the local engine, behind one connection.

Tasks (all in the session's nursery, all gone when the connection is):

* the *reader* (the session's own task) parses each client frame and handles
  it; handling only updates state and queues events, so a slow brain or a long
  response never delays the next client event;
* the *writer* owns the connection's send side: it serializes queued events
  in order (the queue is bounded, so a client that stops reading slows the
  session down instead of growing memory);
* one task per *response*, inside its own cancel scope, so ``response.cancel``
  and barge-in stop it between two events and it then closes what it had open
  (``*.done`` events, ``response.done`` with ``cancelled``);
* one task per *transcription*, one per hosted-MCP *listing* (its events
  are queued in the handler up to ``mcp_list_tools.in_progress``, the rest
  when the server answers; responses that offer its tools wait for it);
  and the *idle* and *expiry* timers.

A hosted MCP call runs inside its response's task, so a cancel stops it too.

VAD and buffer offsets are counted in samples, never read from a clock; only
the idle timeout and the session expiry use trio's clock (``MockClock`` in
tests).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio

from framework.protocol import (
    UNSET,
    AssistantMessageContent,
    ContentPart,
    ConversationItem,
    ConversationItemAdded,
    ConversationItemCreateEvent,
    ConversationItemDeletedEvent,
    ConversationItemDeleteEvent,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    ConversationItemRetrieved,
    ConversationItemRetrieveEvent,
    ConversationItemTruncatedEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    InputAudioBufferTimeoutTriggered,
    McpListedTool,
    McpListToolsCompleted,
    McpListToolsFailed,
    McpListToolsInProgress,
    McpTool,
    OutputAudioBufferClearEvent,
    ProtocolError,
    RateLimit,
    RateLimitsUpdatedEvent,
    RealtimeAudioConfig,
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeMcpApprovalRequest,
    RealtimeMcpApprovalResponse,
    RealtimeMcpListTools,
    RealtimeMcpToolCall,
    RealtimeMcpToolExecutionError,
    RealtimeResponse,
    RealtimeResponseCreateAudioOutput,
    RealtimeResponseCreateParams,
    RealtimeResponseStatus,
    RealtimeResponseUsage,
    RealtimeResponseUsageInputTokenDetails,
    RealtimeResponseUsageOutputTokenDetails,
    RealtimeSessionCreateRequest,
    ResponseAudio,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioOutput,
    ResponseAudioOutputParams,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCancelEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseCreateEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseItemReference,
    ResponseMcpCallArgumentsDelta,
    ResponseMcpCallArgumentsDone,
    ResponseMcpCallCompleted,
    ResponseMcpCallFailed,
    ResponseMcpCallInProgress,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseStatusError,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    SemanticVad,
    ServerEvent,
    ServerVad,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
    TranscriptionDurationUsage,
    TranscriptionError,
    TranscriptionSessionUpdate,
    UnknownClientEvent,
    UnknownItem,
    UserMessageContent,
    parse_client_event,
    to_json,
)
from framework.protocol import (
    RealtimeTranscriptionSessionCreateRequest as TranscriptionConfig,
)

from ._audio import InputBuffer, Samples, WireFormat, wire_format
from ._brain import Brain, BrainRequest, CallFunction, CallMcp, Say
from ._config import (
    MergeContext,
    RequestError,
    check_format,
    check_max_output_tokens,
    check_modalities,
    check_tool_choice,
    check_tools,
    check_voice,
    default_session,
    default_transcription_session,
    invalid_value,
    merge_session,
    transcription_update,
    transcription_view,
    unknown_parameter,
)
from ._hosted_mcp import (
    CALL_TIMEOUT_S,
    LIST_TIMEOUT_S,
    TIMED_OUT,
    HostedMcpClient,
    McpCallResult,
    McpListError,
    NoMcpClient,
    installed_mcp_client,
    is_allowed,
    needs_approval,
)
from ._speech import Synthesizer, Transcriber, TranscriptionUnavailable
from ._vad import (
    SEMANTIC_SILENCE_MS,
    ClassifierFactory,
    EnergyClassifier,
    SpeechStarted,
    VoiceActivityDetector,
)

MAX_AUDIO_BYTES = 15 * 1024 * 1024
MIN_COMMIT_MS = 100
AUDIO_CHUNK_MS = 100
MAX_TOOL_ROUNDS = 8  # brain turns in one response after MCP calls it made itself
_TOKEN = re.compile(r"\w+|[^\w\s]")
_AUDIO_TOKENS_PER_S = 20  # one audio token per 50 ms, both directions


class Disconnected(Exception):
    """The client went away (or the connection was dropped on purpose)."""


class Connection(Protocol):
    """What a session needs from its transport."""

    async def receive(self) -> str | bytes:
        """The next frame; raises :class:`Disconnected` when the client is gone."""
        ...

    async def send(self, text: str) -> None:
        """Sends one text frame; raises :class:`Disconnected` when the client is gone."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Closes the connection with a WebSocket close code."""
        ...

    async def abort(self) -> None:
        """Drops the connection without a closing handshake."""
        ...


@attrs.define(kw_only=True)
class SessionOptions:
    """Plug-ins and test knobs shared by every session of an engine."""

    brain: Brain
    transcriber: Transcriber
    synthesizer: Synthesizer
    vad: ClassifierFactory = EnergyClassifier
    """Builds each input's VAD frame classifier (energy by default)."""
    model: str = "gpt-realtime"
    max_session_s: float | None = None
    latency_ms: int = 0
    drop_after_events: int | None = None
    max_frame_bytes: int = 16 * 1024 * 1024
    send_buffer: int = 64
    mcp_client: HostedMcpClient | None = None
    """Runs hosted MCP tools; default: the installed plugins' ``mcp_client`` part."""


def text_tokens(text: str) -> int:
    """Deterministic token count of a text: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def audio_tokens(ms: int) -> int:
    return math.ceil(ms * _AUDIO_TOKENS_PER_S / 1000)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _strip_audio(item: ConversationItem) -> ConversationItem:
    """The item as events show it: audio bytes left out (retrieve includes them)."""
    messages = (RealtimeConversationItemUserMessage, RealtimeConversationItemAssistantMessage)
    if isinstance(item, messages) and any(p.audio not in (UNSET, None) for p in item.content):
        content = [attrs.evolve(p, audio=UNSET) for p in item.content]
        return attrs.evolve(item, content=content)  # type: ignore[arg-type]
    return item


@attrs.frozen
class _Close:
    """Tells the writer to close the connection once what is queued before it is sent."""

    code: int
    reason: str


@attrs.define(kw_only=True)
class _Stored:
    """An item in the default conversation, with what events do not show."""

    item: ConversationItem
    audio_format: WireFormat | None = None
    transcribed: trio.Event | None = None  # set when its input transcription settles


@attrs.define(kw_only=True, eq=False)
class _McpServer:
    """One hosted MCP server's listing, shared by the responses that offer its tools."""

    tool: McpTool
    key: tuple[object, ...]  # what the listing depends on: a change lists again
    item_id: str
    listed: trio.Event = attrs.Factory(trio.Event)
    ok: bool = False
    tools: list[McpListedTool] = attrs.Factory(list)  # the allowed ones


def _listing_key(tool: McpTool) -> tuple[object, ...]:
    headers = tool.headers
    return (
        tool.server_url,
        tool.connector_id,
        tool.tunnel_id,
        tool.authorization,
        tuple(sorted(headers.items())) if isinstance(headers, Mapping) else headers,
        tool.allowed_tools
        if not isinstance(tool.allowed_tools, list)
        else tuple(tool.allowed_tools),
    )


@attrs.define(kw_only=True)
class _Response:
    """A response in flight: its parameters, output and cancellation."""

    id: str
    in_conversation: bool
    instructions: str
    tools: list[Any]
    tool_choice: Any
    modalities: list[str]
    mcp: dict[str, McpTool] = attrs.Factory(dict)  # its hosted MCP servers, by label
    voice: Any
    out_format: Any
    max_output_tokens: Any
    metadata: Any
    context: list[ConversationItem]
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    cancel_reason: str | None = None
    output: list[ConversationItem] = attrs.Factory(list)
    output_tokens_text: int = 0
    output_tokens_audio: int = 0
    audio_ms: int = 0
    status: str = "in_progress"
    incomplete_reason: str | None = None
    failure: str | None = None
    # What is open when a cancel lands, to close it properly.
    open_item: Any = None
    open_index: int = -1
    open_part: str | None = None  # "audio" or "text"
    text_so_far: str = ""
    audio_so_far: bytearray = attrs.Factory(bytearray)
    truncated: bool = False  # the client truncated the open message while it streamed
    # An open mcp_call: "arguments" (streaming), "ready" (done sent), "calling".
    mcp_stage: str = ""
    mcp_result: McpCallResult | None = None


class EngineSession:
    """Serves the Realtime protocol to one client connection."""

    def __init__(
        self,
        options: SessionOptions,
        connection: Connection,
        *,
        model: str | None = None,
        config: RealtimeSessionCreateRequest | None = None,
        session_id: str | None = None,
        transcription: bool = False,
    ) -> None:
        """A session that starts from the engine's defaults, or from ``config``
        (a client secret's or an accepted call's), under ``session_id`` if given.

        With ``transcription`` it is a transcription session (``type:
        "transcription"``): committed audio is transcribed and never answered.
        """
        self.options = options
        self.conn = connection
        self._nonce = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self.id = session_id or f"sess_{secrets.token_hex(8)}"
        now = int(time.time())
        self.transcription = transcription
        make_default = default_transcription_session if transcription else default_session
        self.config: RealtimeSessionCreateRequest = make_default(
            model or options.model, session_id=self.id, expires_at=now + 3600
        )
        if config is not None:
            self.config = attrs.evolve(config, extra=self.config.extra)
        # A URL without ?model= leaves the choice to the first session.update.
        self._model_chosen = model is not None or config is not None
        self.items: list[_Stored] = []
        self.memory: dict[str, Any] = {}
        self.responses: dict[str, _Response] = {}
        self.active_default: _Response | None = None
        self.audio_produced = False
        self.buffer = InputBuffer()
        self.vad: VoiceActivityDetector | None = None
        self._vad_item_id: str | None = None
        self._configure_input()
        self._send_channel, self._receive_channel = trio.open_memory_channel[ServerEvent | _Close](
            options.send_buffer
        )
        self._nursery: trio.Nursery | None = None
        self._idle_scope: trio.CancelScope | None = None
        self._idle_deadline = math.inf
        self._idle_from = 0  # buffer offset where an idle segment starts
        self._idle_playing = False  # the deadline is the end of a reply's playback
        self._idle_timeout_s = 0.0
        self._rate_used = 0
        self._last_input_tokens = 0
        self.sent = 0
        self._latency = options.latency_ms / 1000
        self.mcp: dict[str, _McpServer] = {}
        self._mcp_client: HostedMcpClient | None = options.mcp_client
        self._approvals_run: set[str] = set()
        self._turn_waiting = False  # a VAD turn to answer when the cancelled reply is done

    # --- plumbing -----------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{self._nonce}{next(self._counter):06d}"

    async def emit(self, event: ServerEvent) -> None:
        # The latency knob delays the producer, not the writer: a response then
        # really is still streaming when a cancel or a barge-in arrives, as it is
        # on a slow hosted model, instead of sitting finished in the send queue.
        if self._latency:
            await trio.sleep(self._latency)
        await self._send_channel.send(event)

    def error_event(
        self, error: RequestError, client_event_id: object = None
    ) -> RealtimeErrorEvent:
        return RealtimeErrorEvent(
            event_id=self._id("event"),
            error=RealtimeError(
                type=error.type,
                code=error.code,
                message=error.message,
                param=error.param,
                event_id=client_event_id if isinstance(client_event_id, str) else None,
            ),
        )

    async def run(self) -> None:
        """Serves the connection until the client leaves or the session ends.

        A departing client shows up as :class:`Disconnected` in the reader or
        writer and as a broken channel in tasks still queueing events; all of
        them just end the session.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._writer)
                self._rearm_idle()  # a starting config may carry an idle timeout
                nursery.start_soon(self._idle_watcher)
                if self.options.max_session_s is not None:
                    nursery.start_soon(self._expiry, self.options.max_session_s)
                await self.emit(
                    SessionCreatedEvent(event_id=self._id("event"), session=self._shown_config())
                )
                # A session may start with MCP tools (a client secret's configuration).
                await self._import_mcp(self._session_tools(), "session.tools")
                await self._reader()
        except* (Disconnected, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _writer(self) -> None:
        drop_after = self.options.drop_after_events
        async with self._receive_channel:
            async for event in self._receive_channel:
                if isinstance(event, _Close):
                    await self.conn.close(event.code, event.reason)
                    raise Disconnected
                await self.conn.send(to_json(event))
                self.sent += 1
                if drop_after is not None and self.sent >= drop_after:
                    await self.conn.abort()
                    raise Disconnected

    async def _expiry(self, seconds: float) -> None:
        await trio.sleep(seconds)
        minutes = seconds / 60
        shown = f"{minutes:g} minutes" if minutes >= 1 else f"{seconds:g} seconds"
        reason = f"Your session hit the maximum duration of {shown}."
        await self.emit(
            self.error_event(
                RequestError(reason, code="session_expired", type="invalid_request_error")
            )
        )
        # Queued behind the error, so the client reads it before the close frame.
        await self._send_channel.send(_Close(1001, reason))

    async def _reader(self) -> None:
        while True:
            frame = await self.conn.receive()
            await self.handle_frame(frame)

    # --- frames -----------------------------------------------------------------------

    async def handle_frame(self, frame: str | bytes) -> None:
        """Parses and handles one client frame; every failure becomes an error event."""
        if isinstance(frame, bytes):
            await self.emit(
                self.error_event(
                    RequestError(
                        "Binary WebSocket frames are not supported; send each event as a JSON "
                        "text frame.",
                        code="invalid_frame",
                    )
                )
            )
            return
        if len(frame) > self.options.max_frame_bytes:
            await self.emit(
                self.error_event(
                    RequestError(
                        f"The event is too large ({len(frame)} bytes); the maximum is "
                        f"{self.options.max_frame_bytes} bytes.",
                        code="message_too_large",
                    )
                )
            )
            return
        try:
            event = parse_client_event(frame)
        except ProtocolError as e:
            await self.emit(self.error_event(_protocol_error(e), _event_id_of(frame)))
            return
        client_event_id = (
            event.raw.get("event_id")
            if isinstance(event, UnknownClientEvent)
            else getattr(event, "event_id", None)
        )
        try:
            await self._dispatch(event)
        except RequestError as e:
            await self.emit(self.error_event(e, client_event_id))

    async def _dispatch(self, event: object) -> None:
        if isinstance(event, InputAudioBufferAppendEvent):
            await self._append(event)
        elif isinstance(event, SessionUpdateEvent):
            await self._session_update(event)
        elif isinstance(event, ResponseCreateEvent):
            await self._response_create(event)
        elif isinstance(event, ResponseCancelEvent):
            await self._response_cancel(event)
        elif isinstance(event, ConversationItemCreateEvent):
            await self._item_create(event)
        elif isinstance(event, ConversationItemDeleteEvent):
            await self._item_delete(event)
        elif isinstance(event, ConversationItemRetrieveEvent):
            await self._item_retrieve(event)
        elif isinstance(event, ConversationItemTruncateEvent):
            await self._item_truncate(event)
        elif isinstance(event, InputAudioBufferCommitEvent):
            await self._commit_manual()
        elif isinstance(event, InputAudioBufferClearEvent):
            self.buffer.clear()
            if self.vad is not None:
                self.vad.reset(self.buffer.end)
            self._vad_item_id = None
            await self.emit(InputAudioBufferClearedEvent(event_id=self._id("event")))
        elif isinstance(event, OutputAudioBufferClearEvent):
            raise RequestError(
                "output_audio_buffer.clear is only supported on WebRTC and SIP connections; "
                "on a WebSocket the client owns playback (use response.cancel and "
                "conversation.item.truncate).",
                code="invalid_value",
                param="type",
            )
        elif isinstance(event, TranscriptionSessionUpdate):
            raise RequestError(
                "The 'transcription_session.update' event was removed from the GA Realtime "
                "API; send 'session.update' with a session of type 'transcription' instead.",
                code="invalid_value",
                param="type",
            )
        elif isinstance(event, UnknownClientEvent):
            raise invalid_value("type", event.type, _CLIENT_TYPES)
        else:
            raise RequestError(
                f"The event type '{getattr(event, 'type', '?')}' is not supported by this engine.",
                code="invalid_value",
                param="type",
            )

    # --- session ----------------------------------------------------------------------

    def _configure_input(self) -> None:
        audio = self.config.audio
        assert isinstance(audio, RealtimeAudioConfig)
        audio_in = audio.input
        assert isinstance(audio_in, RealtimeAudioConfigInput)
        fmt = wire_format(audio_in.format)
        if fmt != self.buffer.fmt:
            # Audio already buffered in the old format cannot be read in the new one.
            self.buffer = InputBuffer(
                fmt=fmt, start=self.buffer.end * fmt.rate // self.buffer.fmt.rate
            )
        td = audio_in.turn_detection
        if isinstance(td, ServerVad):
            assert isinstance(td.threshold, float | int)
            self.vad = VoiceActivityDetector(
                samples_per_ms=fmt.samples_per_ms,
                classifier=self.options.vad(fmt.rate),
                threshold=float(td.threshold),
                prefix_padding_ms=td.prefix_padding_ms
                if isinstance(td.prefix_padding_ms, int)
                else 300,
                silence_duration_ms=(
                    td.silence_duration_ms if isinstance(td.silence_duration_ms, int) else 500
                ),
            )
        elif isinstance(td, SemanticVad):
            self.vad = VoiceActivityDetector(
                samples_per_ms=fmt.samples_per_ms,
                classifier=self.options.vad(fmt.rate),
                silence_duration_ms=SEMANTIC_SILENCE_MS.get(str(td.eagerness), 700),
            )
        else:
            self.vad = None
        if self.vad is not None:
            self.vad.reset(self.buffer.end)
        self._vad_item_id = None

    @property
    def turn_detection(self) -> ServerVad | SemanticVad | None:
        audio = self.config.audio
        assert isinstance(audio, RealtimeAudioConfig) and isinstance(
            audio.input, RealtimeAudioConfigInput
        )
        td = audio.input.turn_detection
        return td if isinstance(td, (ServerVad, SemanticVad)) else None

    @property
    def output_config(self) -> RealtimeAudioConfigOutput:
        audio = self.config.audio
        assert isinstance(audio, RealtimeAudioConfig) and isinstance(
            audio.output, RealtimeAudioConfigOutput
        )
        return audio.output

    def _shown_config(self) -> Any:
        """The session object events show: a transcription session shows its own kind."""
        return transcription_view(self.config) if self.transcription else self.config

    async def _session_update(self, event: SessionUpdateEvent) -> None:
        session = event.session
        if self.transcription:
            if isinstance(session, RealtimeSessionCreateRequest):
                raise RequestError(
                    "Cannot change a transcription session into a realtime session; open a "
                    "new session without ?intent=transcription for a realtime session.",
                    code="invalid_value",
                    param="session.type",
                )
            if isinstance(session, TranscriptionConfig):
                session = transcription_update(session)
        if isinstance(session, TranscriptionConfig):
            raise RequestError(
                "Cannot change a realtime session into a transcription session; connect with "
                "?intent=transcription for a transcription session.",
                code="invalid_value",
                param="session.type",
            )
        if not isinstance(session, RealtimeSessionCreateRequest):
            raise invalid_value(
                "session.type", getattr(session, "type", None), ["realtime", "transcription"]
            )
        context = MergeContext(
            audio_produced=self.audio_produced,
            response_active=self.active_default is not None,
            model_chosen=self._model_chosen,
        )
        before = self.config
        self.config = merge_session(before, session, context)
        if isinstance(session.model, str):
            self._model_chosen = True
        if self.config.audio != before.audio:
            self._configure_input()
            self._rearm_idle()
        await self.emit(
            SessionUpdatedEvent(event_id=self._id("event"), session=self._shown_config())
        )
        tools = self._session_tools()
        # A server the session no longer has is forgotten: offered again, it is listed again.
        labels = {t.server_label for t in tools if isinstance(t, McpTool)}
        for label in [label for label in self.mcp if label not in labels]:
            del self.mcp[label]
        await self._import_mcp(tools, "session.tools")

    # --- input audio --------------------------------------------------------------------

    async def _append(self, event: InputAudioBufferAppendEvent) -> None:
        try:
            data = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(
                "Invalid 'audio': the value is not valid base64.",
                code="invalid_value",
                param="audio",
            ) from None
        if len(data) > MAX_AUDIO_BYTES:
            raise RequestError(
                f"Invalid 'audio': {len(data)} bytes is more than the 15 MiB allowed per event.",
                code="invalid_value",
                param="audio",
            )
        samples = self.buffer.fmt.decode(data)
        self.buffer.append(samples, data)
        if self.vad is None:
            return
        for verdict in self.vad.feed(samples, self.buffer.start):
            if isinstance(verdict, SpeechStarted):
                await self._speech_started(verdict.start_sample)
            else:
                await self._speech_stopped(verdict.end_sample)

    async def _speech_started(self, start: int) -> None:
        self.buffer.drop_before(start)
        self._vad_item_id = self._id("item")
        self._disarm_idle()
        await self.emit(
            InputAudioBufferSpeechStartedEvent(
                event_id=self._id("event"),
                audio_start_ms=self.buffer.fmt.ms(start),
                item_id=self._vad_item_id,
            )
        )
        # A turn that ended while the last reply was closing is superseded by this one.
        self._turn_waiting = False
        td = self.turn_detection
        active = self.active_default
        if active is not None and td is not None and td.interrupt_response is not False:
            self._cancel(active, "turn_detected")

    async def _speech_stopped(self, end: int) -> None:
        item_id = self._vad_item_id or self._id("item")
        self._vad_item_id = None
        await self.emit(
            InputAudioBufferSpeechStoppedEvent(
                event_id=self._id("event"), audio_end_ms=self.buffer.fmt.ms(end), item_id=item_id
            )
        )
        await self._commit(item_id, until=end)
        td = self.turn_detection
        answer = td is not None and td.create_response is not False and not self.transcription
        active = self.active_default
        if answer and active is None:
            await self._start_response(RealtimeResponseCreateParams(), automatic=True)
        elif answer and active is not None and active.cancel_reason is not None:
            # The barge-in's reply is still closing: answer once it is done.
            self._turn_waiting = True
        else:
            # No reply is coming (or one is still running): the user's silence
            # counts from here, or from the end of that reply.
            self._rearm_idle()

    async def _commit_manual(self) -> None:
        fmt = self.buffer.fmt
        have_ms = self.buffer.length / fmt.samples_per_ms
        if have_ms < MIN_COMMIT_MS:
            raise RequestError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {have_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        item_id = self._id("item")
        if self.vad is not None:
            self.vad.reset(self.buffer.end)
        self._vad_item_id = None
        await self._commit(item_id, until=self.buffer.end)

    async def _commit(self, item_id: str, *, until: int) -> None:
        """Turns buffered audio into a user message and starts its transcription."""
        fmt = self.buffer.fmt
        samples, raw = self.buffer.take(until)
        previous = self._last_id()
        await self.emit(
            InputAudioBufferCommittedEvent(
                event_id=self._id("event"), item_id=item_id, previous_item_id=previous
            )
        )
        item = RealtimeConversationItemUserMessage(
            id=item_id,
            object="realtime.item",
            status="completed",
            content=[UserMessageContent(type="input_audio", audio=_b64(raw), transcript=None)],
        )
        stored = _Stored(item=item, audio_format=fmt)
        transcription = self._transcription_config()
        if transcription is not None:
            stored.transcribed = trio.Event()
        await self._insert(stored, previous)
        if transcription is not None:
            assert self._nursery is not None
            self._nursery.start_soon(self._transcribe, stored, samples, fmt, transcription)

    def _transcription_config(self) -> Any:
        audio = self.config.audio
        assert isinstance(audio, RealtimeAudioConfig) and isinstance(
            audio.input, RealtimeAudioConfigInput
        )
        tr = audio.input.transcription
        return tr if tr not in (None, UNSET) else None

    async def _transcribe(
        self, stored: _Stored, samples: Samples, fmt: WireFormat, config: Any
    ) -> None:
        item_id = stored.item.id
        assert isinstance(item_id, str)
        try:
            try:
                deltas = await self.options.transcriber.transcribe(
                    samples,
                    rate=fmt.rate,
                    language=config.language if isinstance(config.language, str) else None,
                    prompt=config.prompt if isinstance(config.prompt, str) else None,
                )
            except Exception as e:  # a failing transcriber fails this transcription only
                reason = (
                    str(e)
                    if isinstance(e, TranscriptionUnavailable)
                    else f"The transcriber failed: {type(e).__name__}: {e}"
                )
                await self.emit(
                    ConversationItemInputAudioTranscriptionFailedEvent(
                        event_id=self._id("event"),
                        item_id=item_id,
                        content_index=0,
                        error=TranscriptionError(
                            type="transcription_error",
                            code=(
                                "transcriber_unavailable"
                                if isinstance(e, TranscriptionUnavailable)
                                else "transcriber_error"
                            ),
                            message=reason,
                            param=None,
                        ),
                    )
                )
                return
            text = ""
            for delta in deltas:
                text += delta
                await self.emit(
                    ConversationItemInputAudioTranscriptionDeltaEvent(
                        event_id=self._id("event"), item_id=item_id, content_index=0, delta=delta
                    )
                )
            item = stored.item
            assert isinstance(item, RealtimeConversationItemUserMessage)
            stored.item = attrs.evolve(
                item, content=[attrs.evolve(item.content[0], transcript=text), *item.content[1:]]
            )
            await self.emit(
                ConversationItemInputAudioTranscriptionCompletedEvent(
                    event_id=self._id("event"),
                    item_id=item_id,
                    content_index=0,
                    transcript=text,
                    usage=TranscriptionDurationUsage(seconds=round(len(samples) / fmt.rate, 3)),
                )
            )
        finally:
            if stored.transcribed is not None:
                stored.transcribed.set()

    # --- conversation -------------------------------------------------------------------

    def _last_id(self) -> str | None:
        return _id_of(self.items[-1].item) if self.items else None

    def _find(self, item_id: str) -> int:
        for index, stored in enumerate(self.items):
            if stored.item.id == item_id:
                return index
        return -1

    async def _insert(
        self, stored: _Stored, previous_item_id: str | None, *, done: bool = True
    ) -> None:
        """Adds an item after ``previous_item_id`` (None: at the start) and announces it."""
        index = 0 if previous_item_id is None else self._find(previous_item_id) + 1
        self.items.insert(index, stored)
        shown = _strip_audio(stored.item)
        await self.emit(
            ConversationItemAdded(
                event_id=self._id("event"), item=shown, previous_item_id=previous_item_id
            )
        )
        if done:
            await self.emit(
                ConversationItemDone(
                    event_id=self._id("event"), item=shown, previous_item_id=previous_item_id
                )
            )

    def _accept_client_item(self, item: ConversationItem, param: str) -> _Stored:
        """Validates an item a client creates and completes its server fields."""
        if isinstance(item, UnknownItem):
            raise invalid_value(
                f"{param}.type",
                item.type,
                ["message", "function_call", "function_call_output", "mcp_approval_response"],
            )
        found = unknown_parameter(item, param)
        if found:
            raise RequestError(
                f"Unknown parameter: '{found}'.", code="unknown_parameter", param=found
            )
        if isinstance(item, RealtimeMcpApprovalResponse):
            return self._accept_approval(item, param)
        if not isinstance(
            item,
            (
                RealtimeConversationItemSystemMessage,
                RealtimeConversationItemUserMessage,
                RealtimeConversationItemAssistantMessage,
                RealtimeConversationItemFunctionCall,
                RealtimeConversationItemFunctionCallOutput,
            ),
        ):
            raise RequestError(
                f"Items of type '{item.type}' are created by the server, not by clients.",
                code="invalid_value",
                param=f"{param}.type",
            )
        allowed = {
            RealtimeConversationItemSystemMessage: ["input_text"],
            RealtimeConversationItemUserMessage: ["input_text", "input_audio", "input_image"],
            RealtimeConversationItemAssistantMessage: ["output_text"],
        }.get(type(item))
        audio_format = None
        if allowed is not None:
            assert isinstance(
                item,
                (
                    RealtimeConversationItemSystemMessage,
                    RealtimeConversationItemUserMessage,
                    RealtimeConversationItemAssistantMessage,
                ),
            )
            for index, part in enumerate(item.content):
                kind = getattr(part, "type", None)
                if kind not in allowed:
                    if kind == "output_audio":
                        raise RequestError(
                            "Assistant audio messages cannot be created by the client; add the "
                            "text as 'output_text' instead.",
                            code="invalid_value",
                            param=f"{param}.content[{index}].type",
                        )
                    raise invalid_value(f"{param}.content[{index}].type", kind, allowed)
                if kind == "input_audio":
                    audio = getattr(part, "audio", None)
                    try:
                        base64.b64decode(audio or "", validate=True)
                    except (binascii.Error, ValueError):
                        raise RequestError(
                            "Invalid 'audio': the value is not valid base64.",
                            code="invalid_value",
                            param=f"{param}.content[{index}].audio",
                        ) from None
                    audio_format = self.buffer.fmt
        item_id = item.id if isinstance(item.id, str) and item.id else self._id("item")
        if self._find(item_id) >= 0:
            raise RequestError(
                f"Item with id '{item_id}' already exists.",
                code="item_id_already_exists",
                param=f"{param}.id",
            )
        completed = attrs.evolve(item, id=item_id, object="realtime.item", status="completed")
        if isinstance(completed, RealtimeConversationItemFunctionCall) and not isinstance(
            completed.call_id, str
        ):
            completed = attrs.evolve(completed, call_id=self._id("call"))
        return _Stored(item=completed, audio_format=audio_format)

    def _accept_approval(self, item: RealtimeMcpApprovalResponse, param: str) -> _Stored:
        """An ``mcp_approval_response``: it must answer a request, and only once."""
        if not item.id:
            raise RequestError(
                f"Missing required parameter: '{param}.id'.",
                code="missing_required_parameter",
                param=f"{param}.id",
            )
        if self._find(item.id) >= 0:
            raise RequestError(
                f"Item with id '{item.id}' already exists.",
                code="item_id_already_exists",
                param=f"{param}.id",
            )
        request_id = item.approval_request_id
        position = self._find(request_id)
        if position < 0 or not isinstance(self.items[position].item, RealtimeMcpApprovalRequest):
            raise RequestError(
                f"MCP approval request with id '{request_id}' not found.",
                code="item_not_found",
                param=f"{param}.approval_request_id",
            )
        for stored in self.items:
            answer = stored.item
            if (
                isinstance(answer, RealtimeMcpApprovalResponse)
                and answer.approval_request_id == request_id
            ):
                raise RequestError(
                    f"MCP approval request '{request_id}' already has a response: '{answer.id}'.",
                    code="invalid_value",
                    param=f"{param}.approval_request_id",
                )
        return _Stored(item=item)

    async def _item_create(self, event: ConversationItemCreateEvent) -> None:
        stored = self._accept_client_item(event.item, "item")
        previous = event.previous_item_id
        if previous in (UNSET, None):
            previous_id = self.items[-1].item.id if self.items else None
        elif previous == "root":
            previous_id = None
        else:
            assert isinstance(previous, str)
            if self._find(previous) < 0:
                raise RequestError(
                    f"Error adding item: the previous item with id '{previous}' does not exist.",
                    code="item_not_found",
                    param="previous_item_id",
                )
            previous_id = previous
        await self._insert(stored, previous_id)  # type: ignore[arg-type]

    def _existing(self, item_id: str) -> tuple[int, _Stored]:
        index = self._find(item_id)
        if index < 0:
            raise RequestError(
                f"Item with item_id not found: {item_id}", code="item_not_found", param="item_id"
            )
        return index, self.items[index]

    async def _item_delete(self, event: ConversationItemDeleteEvent) -> None:
        index, _ = self._existing(event.item_id)
        del self.items[index]
        await self.emit(
            ConversationItemDeletedEvent(event_id=self._id("event"), item_id=event.item_id)
        )

    async def _item_retrieve(self, event: ConversationItemRetrieveEvent) -> None:
        _, stored = self._existing(event.item_id)
        await self.emit(ConversationItemRetrieved(event_id=self._id("event"), item=stored.item))

    async def _item_truncate(self, event: ConversationItemTruncateEvent) -> None:
        _, stored = self._existing(event.item_id)
        item = stored.item
        if not isinstance(item, RealtimeConversationItemAssistantMessage):
            raise RequestError(
                "Only assistant messages can be truncated.", code="invalid_value", param="item_id"
            )
        index = event.content_index
        live = next(
            (
                r
                for r in self.responses.values()
                if r.open_item is not None and r.open_item.id == event.item_id
            ),
            None,
        )
        if live is not None:
            # Still streaming: truncate what the client has received so far; the
            # message keeps the cut (and loses its transcript) when it closes.
            if index != 0 or live.open_part != "audio":
                raise RequestError(
                    f"Content part {index} of item {event.item_id} is not an audio part.",
                    code="invalid_value",
                    param="content_index",
                )
            live_fmt = wire_format(live.out_format)
            streamed = live.audio_so_far
            _check_audio_end(
                event.audio_end_ms,
                len(streamed) // live_fmt.bytes_per_sample // live_fmt.samples_per_ms,
            )
            del streamed[live_fmt.byte_count(event.audio_end_ms) :]
            live.truncated = True
            await self.emit(
                ConversationItemTruncatedEvent(
                    event_id=self._id("event"),
                    item_id=event.item_id,
                    content_index=index,
                    audio_end_ms=event.audio_end_ms,
                )
            )
            return
        if not 0 <= index < len(item.content) or item.content[index].type != "output_audio":
            raise RequestError(
                f"Content part {index} of item {event.item_id} is not an audio part.",
                code="invalid_value",
                param="content_index",
            )
        part = item.content[index]
        fmt = stored.audio_format
        assert fmt is not None
        audio = base64.b64decode(part.audio) if isinstance(part.audio, str) else b""
        _check_audio_end(
            event.audio_end_ms, len(audio) // fmt.bytes_per_sample // fmt.samples_per_ms
        )
        kept = audio[: fmt.byte_count(event.audio_end_ms)]
        # What the user did not hear must not stay in the context: the transcript goes.
        new_part = attrs.evolve(part, audio=_b64(kept), transcript="")
        content = [*item.content[:index], new_part, *item.content[index + 1 :]]
        stored.item = attrs.evolve(item, content=content)
        await self.emit(
            ConversationItemTruncatedEvent(
                event_id=self._id("event"),
                item_id=event.item_id,
                content_index=index,
                audio_end_ms=event.audio_end_ms,
            )
        )

    # --- responses ------------------------------------------------------------------------

    async def _response_create(self, event: ResponseCreateEvent) -> None:
        if self.transcription:
            raise RequestError(
                "Responses are not supported in transcription sessions: a session of type "
                "'transcription' only transcribes input audio. Open a realtime session to "
                "generate responses.",
                code="invalid_value",
                param="type",
            )
        params = (
            event.response if isinstance(event.response, RealtimeResponseCreateParams) else None
        )
        await self._start_response(params or RealtimeResponseCreateParams(), automatic=False)

    async def _start_response(
        self, params: RealtimeResponseCreateParams, *, automatic: bool
    ) -> None:
        found = unknown_parameter(params, "response")
        if found:
            raise RequestError(
                f"Unknown parameter: '{found}'.", code="unknown_parameter", param=found
            )
        conversation = params.conversation if params.conversation not in (UNSET, None) else "auto"
        if conversation not in ("auto", "none"):
            raise invalid_value("response.conversation", conversation, ["auto", "none"])
        in_conversation = conversation == "auto"
        if in_conversation and self.active_default is not None:
            raise RequestError(
                "Conversation already has an active response in progress: "
                f"{self.active_default.id}. Wait until the response is finished before creating "
                "a new one.",
                code="conversation_already_has_active_response",
            )
        config = self.config
        out = self.output_config
        tools = (
            check_tools(params.tools, "response.tools")
            if isinstance(params.tools, (list, tuple))
            else list(config.tools)
            if isinstance(config.tools, (list, tuple))
            else []
        )
        tool_choice = (
            check_tool_choice(params.tool_choice, tools, "response.tool_choice")
            if params.tool_choice not in (UNSET, None)
            else config.tool_choice
        )
        modalities = (
            check_modalities(params.output_modalities, "response.output_modalities")
            if params.output_modalities not in (UNSET, None)
            else list(config.output_modalities)
            if isinstance(config.output_modalities, (list, tuple))
            else ["audio"]
        )
        max_tokens = (
            check_max_output_tokens(params.max_output_tokens, "response.max_output_tokens")
            if params.max_output_tokens not in (UNSET, None)
            else config.max_output_tokens
        )
        voice: object = out.voice
        out_format: object = out.format
        audio = params.audio
        if isinstance(audio, RealtimeResponseCreateAudioOutput) and isinstance(
            audio.output, ResponseAudioOutputParams
        ):
            if audio.output.voice not in (UNSET, None):
                voice = check_voice(audio.output.voice, "response.audio.output.voice")
            if audio.output.format not in (UNSET, None):
                out_format = check_format(audio.output.format, "response.audio.output.format")
        metadata = params.metadata if params.metadata not in (UNSET,) else None
        if isinstance(metadata, dict):
            if len(metadata) > 16:
                raise RequestError(
                    "Invalid 'response.metadata': at most 16 key-value pairs are allowed.",
                    code="invalid_value",
                    param="response.metadata",
                )
            for key, value in metadata.items():
                if len(key) > 64 or len(value) > 512:
                    raise RequestError(
                        "Invalid 'response.metadata': keys are at most 64 characters and values "
                        "at most 512.",
                        code="invalid_value",
                        param=f"response.metadata.{key}",
                    )
        if isinstance(params.input, (list, tuple)):
            context = self._response_input(params.input)
        else:
            context = [s.item for s in self.items] if in_conversation else []
        instructions = (
            params.instructions if isinstance(params.instructions, str) else config.instructions
        )
        response = _Response(
            id=self._id("resp"),
            in_conversation=in_conversation,
            instructions=instructions if isinstance(instructions, str) else "",
            tools=tools,
            tool_choice=tool_choice,
            modalities=modalities,
            voice=voice,
            out_format=out_format,
            max_output_tokens=max_tokens,
            metadata=metadata,
            context=context,
            mcp={t.server_label: t for t in tools if isinstance(t, McpTool)},
        )
        self.responses[response.id] = response
        if in_conversation:
            self.active_default = response
            self._disarm_idle()
        if isinstance(params.tools, (list, tuple)):
            await self._import_mcp(tools, "response.tools")
        assert self._nursery is not None
        self._nursery.start_soon(self._run_response, response)

    def _response_input(self, entries: Sequence[object]) -> list[ConversationItem]:
        context: list[ConversationItem] = []
        for index, entry in enumerate(entries):
            param = f"response.input[{index}]"
            if isinstance(entry, ResponseItemReference):
                position = self._find(entry.id)
                if position < 0:
                    raise RequestError(
                        f"Item with item_id not found: {entry.id}",
                        code="item_not_found",
                        param=f"{param}.id",
                    )
                context.append(self.items[position].item)
            else:
                stored = self._accept_client_item(entry, param)  # type: ignore[arg-type]
                context.append(stored.item)
        return context

    async def _response_cancel(self, event: ResponseCancelEvent) -> None:
        if isinstance(event.response_id, str):
            response = self.responses.get(event.response_id)
        else:
            response = self.active_default
        if response is None or response.status != "in_progress" or response.cancel_reason:
            raise RequestError(
                "Cancellation failed: no active response found", code="response_cancel_not_active"
            )
        self._cancel(response, "client_cancelled")

    def _cancel(self, response: _Response, reason: str) -> None:
        if response.cancel_reason is None:
            response.cancel_reason = reason
            response.scope.cancel()

    def _snapshot(self, response: _Response, status: str) -> RealtimeResponse:
        fmt = response.out_format
        return RealtimeResponse(
            id=response.id,
            object="realtime.response",
            status=status,
            status_details=None,
            output=[_strip_audio(i) for i in response.output],
            conversation_id=f"conv_{self._nonce}" if response.in_conversation else None,
            output_modalities=response.modalities,
            max_output_tokens=response.max_output_tokens,
            audio=ResponseAudio(
                output=ResponseAudioOutput(
                    format=fmt,
                    voice=response.voice if isinstance(response.voice, str) else response.voice.id,
                )
            ),
            usage=None,
            metadata=response.metadata,
        )

    async def _run_response(self, response: _Response) -> None:
        try:
            # response.created comes first even when a cancel is already waiting.
            await self.emit(
                ResponseCreatedEvent(
                    event_id=self._id("event"), response=self._snapshot(response, "in_progress")
                )
            )
            with response.scope:
                try:
                    await self._stream_response(response)
                except Exception as e:  # a failing brain or synthesizer fails the response only
                    response.failure = f"{type(e).__name__}: {e}"
            if response.failure is not None:
                await self._close_open_output(response)
                response.status = "failed"
            elif response.scope.cancelled_caught:
                await self._close_open_output(response)
                response.status = "cancelled"
            elif response.incomplete_reason:
                response.status = "incomplete"
            else:
                response.status = "completed"
            await self._finish_response(response)
        finally:
            if self.active_default is response:
                self.active_default = None
            self.responses.pop(response.id, None)
        if self._turn_waiting and response.in_conversation:
            self._turn_waiting = False
            with contextlib.suppress(RequestError):  # the client's own response came first
                await self._start_response(RealtimeResponseCreateParams(), automatic=True)

    async def _stream_response(self, response: _Response) -> None:
        self._rate_used += 1
        await self.emit(
            RateLimitsUpdatedEvent(
                event_id=self._id("event"),
                rate_limits=[
                    RateLimit(
                        name="requests",
                        limit=5000,
                        remaining=max(0, 5000 - self._rate_used),
                        reset_seconds=0.012,
                    ),
                    RateLimit(
                        name="tokens", limit=40000, remaining=40000 - 4096, reset_seconds=6.144
                    ),
                ],
            )
        )
        # Input transcriptions the brain should read must settle first.
        for stored in self.items:
            if stored.transcribed is not None and stored.item in response.context:
                await stored.transcribed.wait()
        # So do the listings of its MCP servers: the model sees their tools.
        for label in response.mcp:
            server = self.mcp.get(label)
            if server is not None:
                await server.listed.wait()
        if response.in_conversation:
            response.context = [s.item for s in self.items]
        await self._run_approved(response)
        budget = response.max_output_tokens if isinstance(response.max_output_tokens, int) else None
        for _ in range(MAX_TOOL_ROUNDS):
            request = BrainRequest(
                instructions=response.instructions,
                items=self._context(response),
                tools=response.tools,
                tool_choice=response.tool_choice,
                memory=self.memory,
                mcp_tools={
                    label: server.tools
                    for label in response.mcp
                    if (server := self.mcp.get(label)) is not None and server.ok
                },
            )
            outputs = await self.options.brain.respond(request)
            called = False
            for output in outputs:
                if budget is not None and self._spent(response) >= budget:
                    response.incomplete_reason = "max_output_tokens"
                    return
                if isinstance(output, Say):
                    await self._stream_message(response, output.text, budget)
                elif isinstance(output, CallFunction):
                    await self._stream_call(response, output)
                elif isinstance(output, CallMcp):
                    called = await self._stream_mcp(response, output) or called
            # After MCP calls the engine ran itself the model goes on in this response.
            if not called:
                break

    def _spent(self, response: _Response) -> int:
        return response.output_tokens_text + response.output_tokens_audio

    async def _add_output(self, response: _Response, item: ConversationItem) -> int:
        index = len(response.output)
        response.output.append(item)
        await self.emit(
            ResponseOutputItemAddedEvent(
                event_id=self._id("event"), response_id=response.id, output_index=index, item=item
            )
        )
        if response.in_conversation:
            previous = self.items[-1].item.id if self.items else None
            self.items.append(_Stored(item=item, audio_format=wire_format(response.out_format)))
            await self.emit(
                ConversationItemAdded(
                    event_id=self._id("event"), item=item, previous_item_id=previous
                )
            )
        return index

    async def _done_output(self, response: _Response, index: int, item: ConversationItem) -> None:
        response.output[index] = item
        shown = _strip_audio(item)
        await self.emit(
            ResponseOutputItemDoneEvent(
                event_id=self._id("event"), response_id=response.id, output_index=index, item=shown
            )
        )
        if response.in_conversation:
            position = self._find(item.id)  # type: ignore[arg-type]
            if position >= 0:
                self.items[position].item = item
                previous = self.items[position - 1].item.id if position > 0 else None
                await self.emit(
                    ConversationItemDone(
                        event_id=self._id("event"), item=shown, previous_item_id=previous
                    )
                )

    async def _stream_message(self, response: _Response, text: str, budget: int | None) -> None:
        audio_out = "audio" in response.modalities
        words = text.split(" ")
        if budget is not None:
            # Cut the text (and so the audio) to what the token budget allows.
            fmt = wire_format(response.out_format)
            while (
                words
                and self._cost(" ".join(words), audio_out, fmt) + self._spent(response) > budget
            ):
                words.pop()
                response.incomplete_reason = "max_output_tokens"
            text = " ".join(words)
        item_id = self._id("item")
        item = RealtimeConversationItemAssistantMessage(
            id=item_id, object="realtime.item", status="in_progress", content=[]
        )
        index = await self._add_output(response, item)
        response.open_item, response.open_index = item, index
        part_kind = "audio" if audio_out else "text"
        response.open_part = part_kind
        response.text_so_far = ""
        response.audio_so_far = bytearray()
        response.truncated = False
        part = (
            ContentPart(type="audio", transcript="")
            if audio_out
            else ContentPart(type="text", text="")
        )
        await self.emit(
            ResponseContentPartAddedEvent(
                event_id=self._id("event"),
                response_id=response.id,
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=part,
            )
        )
        if audio_out:
            await self._stream_audio(response, item_id, index, text)
        else:
            for n, word in enumerate(text.split(" ") if text else []):
                delta = word if n == 0 else " " + word
                await self.emit(
                    ResponseTextDeltaEvent(
                        event_id=self._id("event"),
                        response_id=response.id,
                        item_id=item_id,
                        output_index=index,
                        content_index=0,
                        delta=delta,
                    )
                )
                response.text_so_far += delta
        await self._close_open_output(response, status="completed")

    def _cost(self, text: str, audio_out: bool, fmt: WireFormat) -> int:
        tokens = text_tokens(text)
        if audio_out:
            # The tone synthesizer's length follows the text; estimate from characters.
            tokens += audio_tokens(60 * len(text))
        return tokens

    async def _stream_audio(self, response: _Response, item_id: str, index: int, text: str) -> None:
        fmt = wire_format(response.out_format)
        voice = response.voice if isinstance(response.voice, str) else "custom"
        samples = await self.options.synthesizer.synthesize(text, rate=fmt.rate, voice=voice)
        audio = fmt.encode(samples)
        chunk = fmt.byte_count(AUDIO_CHUNK_MS)
        chunks = [audio[i : i + chunk] for i in range(0, len(audio), chunk)] or [b""]
        words = text.split(" ") if text else []
        said = 0
        # What was streamed is recorded only once its event is queued: a cancel
        # landing inside emit() means that delta never left, and the done
        # events and the stored item must hold exactly what the client got.
        for n, piece in enumerate(chunks):
            await self.emit(
                ResponseAudioDeltaEvent(
                    event_id=self._id("event"),
                    response_id=response.id,
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    delta=_b64(piece),
                )
            )
            if not response.truncated:  # what follows a truncation is not kept
                response.audio_so_far += piece
            self.audio_produced = True
            # The transcript keeps pace with the audio: words in proportion to time.
            due = math.ceil(len(words) * (n + 1) / len(chunks))
            while said < due:
                delta = words[said] if said == 0 else " " + words[said]
                said += 1
                await self.emit(
                    ResponseAudioTranscriptDeltaEvent(
                        event_id=self._id("event"),
                        response_id=response.id,
                        item_id=item_id,
                        output_index=index,
                        content_index=0,
                        delta=delta,
                    )
                )
                response.text_so_far += delta

    async def _close_open_output(self, response: _Response, status: str = "incomplete") -> None:
        """Sends the done events of the item being produced (also after a cancel)."""
        item = response.open_item
        if item is None:
            return
        response.open_item = None
        index = response.open_index
        base = {"response_id": response.id, "item_id": item.id, "output_index": index}
        # Shielded so that a cancel landing mid-way cannot leave an item half-closed;
        # bounded because the client may have stopped reading.
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            if isinstance(item, (RealtimeMcpToolCall, RealtimeMcpApprovalRequest)):
                await self._close_mcp_output(response, item)
                return
            if isinstance(item, RealtimeConversationItemFunctionCall):
                arguments = response.text_so_far
                await self.emit(
                    ResponseFunctionCallArgumentsDoneEvent(
                        event_id=self._id("event"),
                        call_id=item.call_id if isinstance(item.call_id, str) else "",
                        name=item.name,
                        arguments=arguments,
                        **base,
                    )
                )
                done_item: ConversationItem = attrs.evolve(item, arguments=arguments, status=status)
            else:
                text = response.text_so_far
                if response.open_part == "audio":
                    fmt = wire_format(response.out_format)
                    audio = bytes(response.audio_so_far)
                    ms = len(audio) // fmt.bytes_per_sample // fmt.samples_per_ms
                    response.audio_ms += ms
                    response.output_tokens_audio += audio_tokens(ms)
                    await self.emit(
                        ResponseAudioDoneEvent(event_id=self._id("event"), content_index=0, **base)
                    )
                    await self.emit(
                        ResponseAudioTranscriptDoneEvent(
                            event_id=self._id("event"), content_index=0, transcript=text, **base
                        )
                    )
                    part = ContentPart(type="audio", transcript=text)
                    # A message truncated while it streamed drops the transcript the
                    # user never heard, as a truncation after it finished does.
                    kept = "" if response.truncated else text
                    content = AssistantMessageContent(
                        type="output_audio", transcript=kept, audio=_b64(audio)
                    )
                else:
                    await self.emit(
                        ResponseTextDoneEvent(
                            event_id=self._id("event"), content_index=0, text=text, **base
                        )
                    )
                    part = ContentPart(type="text", text=text)
                    content = AssistantMessageContent(type="output_text", text=text)
                response.output_tokens_text += text_tokens(text)
                await self.emit(
                    ResponseContentPartDoneEvent(
                        event_id=self._id("event"), content_index=0, part=part, **base
                    )
                )
                done_item = attrs.evolve(item, status=status, content=[content])
            await self._done_output(response, index, done_item)

    async def _stream_call(self, response: _Response, call: CallFunction) -> None:
        item_id, call_id = self._id("item"), self._id("call")
        self.memory.setdefault("calls", {})[call_id] = dict(call.context)
        item = RealtimeConversationItemFunctionCall(
            id=item_id,
            object="realtime.item",
            status="in_progress",
            name=call.name,
            call_id=call_id,
            arguments="",
        )
        index = await self._add_output(response, item)
        response.open_item, response.open_index, response.open_part = item, index, None
        response.text_so_far = ""
        for start in range(0, len(call.arguments), 16):
            delta = call.arguments[start : start + 16]
            await self.emit(
                ResponseFunctionCallArgumentsDeltaEvent(
                    event_id=self._id("event"),
                    response_id=response.id,
                    item_id=item_id,
                    output_index=index,
                    call_id=call_id,
                    delta=delta,
                )
            )
            response.text_so_far += delta
        response.output_tokens_text += text_tokens(call.arguments) + 2
        await self._close_open_output(response, status="completed")

    async def _finish_response(self, response: _Response) -> None:
        input_text = text_tokens(response.instructions) + sum(
            text_tokens(_item_text(i)) for i in response.context
        )
        input_audio = sum(audio_tokens(_item_audio_ms(i, self)) for i in response.context)
        total_in = input_text + input_audio
        cached = min(self._last_input_tokens, total_in) // 64 * 64
        self._last_input_tokens = total_in if response.in_conversation else self._last_input_tokens
        out_total = self._spent(response)
        status = response.status
        details = None
        if status == "cancelled":
            details = RealtimeResponseStatus(type="cancelled", reason=response.cancel_reason)
        elif status == "incomplete":
            details = RealtimeResponseStatus(type="incomplete", reason=response.incomplete_reason)
        elif status == "failed":
            details = RealtimeResponseStatus(
                type="failed",
                error=ResponseStatusError(
                    type="server_error", code="engine_error", message=response.failure
                ),
            )
        snapshot = attrs.evolve(
            self._snapshot(response, status),
            status_details=details,
            usage=RealtimeResponseUsage(
                total_tokens=total_in + out_total,
                input_tokens=total_in,
                output_tokens=out_total,
                input_token_details=RealtimeResponseUsageInputTokenDetails(
                    text_tokens=input_text,
                    audio_tokens=input_audio,
                    image_tokens=0,
                    cached_tokens=cached,
                ),
                output_token_details=RealtimeResponseUsageOutputTokenDetails(
                    text_tokens=response.output_tokens_text,
                    audio_tokens=response.output_tokens_audio,
                ),
            ),
        )
        await self.emit(ResponseDoneEvent(event_id=self._id("event"), response=snapshot))
        if response.in_conversation:
            self.active_default = None
            self._rearm_idle(playback_ms=response.audio_ms)

    # --- hosted MCP --------------------------------------------------------------------

    async def _hosted_mcp(self) -> HostedMcpClient:
        if self._mcp_client is None:
            # Finding it imports the installed plugins (and the MCP SDK, which takes
            # a while): not on the event loop.
            found = await trio.to_thread.run_sync(installed_mcp_client)
            self._mcp_client = found or NoMcpClient()
        return self._mcp_client

    def _session_tools(self) -> Sequence[object]:
        tools = self.config.tools
        return tools if isinstance(tools, (list, tuple)) else []

    async def _import_mcp(self, tools: Sequence[object], param: str) -> None:
        """Starts listing each MCP server that is new or changed (§7.6 tool import)."""
        for index, tool in enumerate(tools):
            if not isinstance(tool, McpTool):
                continue
            key = _listing_key(tool)
            known = self.mcp.get(tool.server_label)
            if known is not None and known.key == key:
                known.tool = tool  # the approval policy may have changed; no new listing
                continue
            server = _McpServer(tool=tool, key=key, item_id=self._id("mcpl"))
            self.mcp[tool.server_label] = server
            item = RealtimeMcpListTools(id=server.item_id, server_label=tool.server_label, tools=[])
            await self._insert(_Stored(item=item), self._last_id(), done=False)
            await self.emit(
                McpListToolsInProgress(event_id=self._id("event"), item_id=server.item_id)
            )
            assert self._nursery is not None
            self._nursery.start_soon(self._list_mcp, server, f"{param}[{index}]")

    async def _list_mcp(self, server: _McpServer, param: str) -> None:
        label = server.tool.server_label
        reason = None
        try:
            try:
                with trio.fail_after(LIST_TIMEOUT_S):
                    client = await self._hosted_mcp()
                    listed = await client.list_tools(server.tool)
            except McpListError as e:
                reason = str(e)
            except trio.TooSlowError:
                reason = f"The MCP server did not answer within {LIST_TIMEOUT_S:g} seconds."
            except Exception as e:  # a failing client fails this listing only
                reason = f"The engine's MCP client failed: {type(e).__name__}: {e}"
            else:
                server.tools = [t for t in listed if is_allowed(server.tool, t)]
                server.ok = True
            done_event = McpListToolsCompleted if server.ok else McpListToolsFailed
            await self.emit(done_event(event_id=self._id("event"), item_id=server.item_id))
            item = RealtimeMcpListTools(id=server.item_id, server_label=label, tools=server.tools)
            position = self._find(server.item_id)
            previous = None
            if position >= 0:
                self.items[position].item = item
                previous = _id_of(self.items[position - 1].item) if position > 0 else None
            await self.emit(
                ConversationItemDone(
                    event_id=self._id("event"), item=item, previous_item_id=previous
                )
            )
            if reason is not None:
                # mcp_list_tools.failed carries only the item id; this says why.
                await self.emit(
                    self.error_event(
                        RequestError(
                            f"Error retrieving tool list from MCP server: '{label}'. {reason}",
                            code="mcp_list_tools_failed",
                            param=param,
                        )
                    )
                )
        finally:
            server.listed.set()

    async def _run_approved(self, response: _Response) -> None:
        """Runs the calls the client approved since they were asked for (§7.6)."""
        context = self._context(response)
        requests = {i.id: i for i in context if isinstance(i, RealtimeMcpApprovalRequest)}
        for item in context:
            if not isinstance(item, RealtimeMcpApprovalResponse) or not item.approve:
                continue
            request = requests.get(item.approval_request_id)
            if request is None or request.id in self._approvals_run:
                continue
            self._approvals_run.add(request.id)
            context_of = self.memory.get("calls", {}).get(request.id, {})
            call = CallMcp(request.server_label, request.name, request.arguments, context_of)
            await self._stream_mcp_call(response, call, approval_request_id=request.id)

    def _context(self, response: _Response) -> list[ConversationItem]:
        """What the brain sees now: the conversation, or the input and what was output."""
        if response.in_conversation:
            return [s.item for s in self.items]
        return [*response.context, *response.output]

    def _listed(self, label: str, name: str) -> McpListedTool | None:
        server = self.mcp.get(label)
        if server is None:
            return None
        return next((t for t in server.tools if t.name == name), None)

    async def _stream_mcp(self, response: _Response, call: CallMcp) -> bool:
        """A call the brain made: asks for approval, or runs it; True when it ran."""
        tool = response.mcp.get(call.server_label)
        # A tool not (or no longer) listed has no annotations: only its name can waive approval.
        listed = self._listed(call.server_label, call.name) or McpListedTool(
            name=call.name, input_schema={}
        )
        if tool is not None and needs_approval(tool, listed):
            item_id = self._id("mcpr")
            self.memory.setdefault("calls", {})[item_id] = dict(call.context)
            item = RealtimeMcpApprovalRequest(
                id=item_id, server_label=call.server_label, name=call.name, arguments=call.arguments
            )
            index = await self._add_output(response, item)
            response.open_item, response.open_index, response.open_part = item, index, None
            response.output_tokens_text += text_tokens(call.arguments) + 2
            await self._close_open_output(response)
            return False
        await self._stream_mcp_call(response, call)
        return True

    async def _stream_mcp_call(
        self, response: _Response, call: CallMcp, *, approval_request_id: str | None = None
    ) -> None:
        item_id = self._id("mcp")
        calls = self.memory.setdefault("calls", {})
        calls[item_id] = dict(call.context)
        item = RealtimeMcpToolCall(
            id=item_id,
            server_label=call.server_label,
            name=call.name,
            arguments="",
            approval_request_id=approval_request_id,
        )
        index = await self._add_output(response, item)
        response.open_item, response.open_index, response.open_part = item, index, None
        response.text_so_far, response.mcp_stage, response.mcp_result = "", "arguments", None
        base: dict[str, Any] = {"item_id": item_id, "output_index": index}
        for start in range(0, len(call.arguments), 16):
            delta = call.arguments[start : start + 16]
            await self.emit(
                ResponseMcpCallArgumentsDelta(
                    event_id=self._id("event"), response_id=response.id, delta=delta, **base
                )
            )
            response.text_so_far += delta
        response.output_tokens_text += text_tokens(call.arguments) + 2
        await self.emit(
            ResponseMcpCallArgumentsDone(
                event_id=self._id("event"),
                response_id=response.id,
                arguments=call.arguments,
                **base,
            )
        )
        response.mcp_stage = "ready"
        await self.emit(ResponseMcpCallInProgress(event_id=self._id("event"), **base))
        response.mcp_stage = "calling"
        response.mcp_result = await self._call_mcp(response, call)
        await self._close_open_output(response)

    async def _call_mcp(self, response: _Response, call: CallMcp) -> McpCallResult:
        tool = response.mcp.get(call.server_label)
        if tool is None:
            return McpCallResult.tool_error(
                f"No MCP server labelled '{call.server_label}' is among this response's tools."
            )
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            return McpCallResult.protocol_error(
                -32602, "Invalid params: the arguments are not a JSON object."
            )
        with trio.move_on_after(CALL_TIMEOUT_S):
            client = await self._hosted_mcp()
            try:
                return await client.call_tool(tool, call.name, arguments)
            except Exception as e:  # a failing client fails this call only
                return McpCallResult.protocol_error(
                    -32603, f"The engine's MCP client failed: {type(e).__name__}: {e}"
                )
        return McpCallResult.http_error(
            TIMED_OUT, f"The MCP server did not answer within {CALL_TIMEOUT_S:g} seconds."
        )

    async def _close_mcp_output(
        self, response: _Response, item: RealtimeMcpToolCall | RealtimeMcpApprovalRequest
    ) -> None:
        """The done events of an MCP item (shielded by the caller), also after a cancel."""
        index = response.open_index
        if isinstance(item, RealtimeMcpApprovalRequest):
            await self._done_output(response, index, item)
            return
        base: dict[str, Any] = {"item_id": item.id, "output_index": index}
        arguments = response.text_so_far
        if response.mcp_stage == "arguments":
            await self.emit(
                ResponseMcpCallArgumentsDone(
                    event_id=self._id("event"),
                    response_id=response.id,
                    arguments=arguments,
                    **base,
                )
            )
        result = response.mcp_result
        if result is None:
            result = McpCallResult(
                error=RealtimeMcpToolExecutionError(
                    message="The call was cancelled with its response before it finished."
                )
            )
        if response.mcp_stage == "calling":
            done_event = ResponseMcpCallCompleted if result.error is None else ResponseMcpCallFailed
            await self.emit(done_event(event_id=self._id("event"), **base))
        if result.error is None:
            done = attrs.evolve(item, arguments=arguments, output=result.output or "")
        else:
            done = attrs.evolve(item, arguments=arguments, error=result.error)
        response.mcp_stage, response.mcp_result = "", None
        await self._done_output(response, index, done)

    # --- idle timeout -------------------------------------------------------------------

    def _idle_timeout_ms(self) -> int | None:
        td = self.turn_detection
        if isinstance(td, ServerVad) and isinstance(td.idle_timeout_ms, int):
            return td.idle_timeout_ms
        return None

    def _rearm_idle(self, playback_ms: int = 0) -> None:
        timeout = self._idle_timeout_ms()
        if timeout is None or self.active_default is not None:
            self._set_idle(math.inf)
            return
        # The timer starts once the reply's audio has played (response.done +
        # its duration); the idle segment is the audio written after that.
        self._idle_timeout_s = timeout / 1000
        self._idle_playing = playback_ms > 0
        if self._idle_playing:
            self._set_idle(trio.current_time() + playback_ms / 1000)
        else:
            self._idle_from = self.buffer.end
            self._set_idle(trio.current_time() + self._idle_timeout_s)

    def _disarm_idle(self) -> None:
        self._set_idle(math.inf)

    def _set_idle(self, deadline: float) -> None:
        self._idle_deadline = deadline
        if self._idle_scope is not None:
            self._idle_scope.deadline = deadline

    async def _idle_watcher(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._idle_deadline) as scope:
                self._idle_scope = scope
                await trio.sleep_forever()
            self._idle_scope = None
            if trio.current_time() < self._idle_deadline:
                continue
            if self._idle_playing:
                # Playback is over: the idle segment starts here.
                self._idle_playing = False
                self._idle_from = self.buffer.end
                self._idle_deadline = trio.current_time() + self._idle_timeout_s
                continue
            self._idle_deadline = math.inf
            await self._idle_fired()

    async def _idle_fired(self) -> None:
        if self.active_default is not None or (self.vad is not None and self.vad.speaking):
            return
        item_id = self._id("item")
        fmt = self.buffer.fmt
        start = max(self._idle_from, self.buffer.start)
        end = self.buffer.end
        await self.emit(
            InputAudioBufferTimeoutTriggered(
                event_id=self._id("event"),
                item_id=item_id,
                audio_start_ms=fmt.ms(start),
                audio_end_ms=fmt.ms(end),
            )
        )
        self.buffer.drop_before(start)
        if self.vad is not None:
            self.vad.reset(end)
        await self._commit(item_id, until=end)
        with contextlib.suppress(RequestError):  # a response began meanwhile: nothing to prompt
            await self._start_response(RealtimeResponseCreateParams(), automatic=True)


_CLIENT_TYPES = [
    "conversation.item.create",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "input_audio_buffer.append",
    "input_audio_buffer.clear",
    "input_audio_buffer.commit",
    "output_audio_buffer.clear",
    "response.cancel",
    "response.create",
    "session.update",
]


def _check_audio_end(end_ms: int, duration_ms: int) -> None:
    if end_ms < 0 or end_ms > duration_ms:
        raise RequestError(
            f"Audio content of {duration_ms}ms is shorter than {end_ms}ms.",
            code="invalid_value",
            param="audio_end_ms",
        )


def _protocol_error(error: ProtocolError) -> RequestError:
    """The hosted API's error for a frame our parser refused."""
    reason, path = error.reason, error.path or None
    if reason.startswith(("malformed JSON", "expected a JSON object")):
        return RequestError(
            f"We could not parse the JSON body of your event: {reason}.", code="invalid_json"
        )
    if reason.startswith("missing required field"):
        return RequestError(
            f"Missing required parameter: '{path}'.", code="missing_required_parameter", param=path
        )
    if reason.startswith(("unknown type", "unknown role")):
        return RequestError(
            f"Invalid value at '{path}': {reason}.", code="invalid_value", param=path
        )
    return RequestError(f"Invalid type for '{path}': {reason}.", code="invalid_type", param=path)


def _event_id_of(frame: str) -> str | None:
    """The client's event_id of a frame that did not parse, when it can be read."""
    try:
        import orjson

        data = orjson.loads(frame)
    except ValueError:
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _item_text(item: ConversationItem) -> str:
    if isinstance(
        item,
        (
            RealtimeConversationItemSystemMessage,
            RealtimeConversationItemUserMessage,
            RealtimeConversationItemAssistantMessage,
        ),
    ):
        parts = []
        for part in item.content:
            for name in ("text", "transcript"):
                value = getattr(part, name, None)
                if isinstance(value, str):
                    parts.append(value)
        return " ".join(parts)
    if isinstance(item, RealtimeConversationItemFunctionCall):
        return f"{item.name} {item.arguments}"
    if isinstance(item, RealtimeConversationItemFunctionCallOutput):
        return item.output
    if isinstance(item, RealtimeMcpToolCall):
        result = item.output if isinstance(item.output, str) else ""
        return f"{item.name} {item.arguments} {result}"
    if isinstance(item, RealtimeMcpApprovalRequest):
        return f"{item.name} {item.arguments}"
    if isinstance(item, RealtimeMcpListTools):
        return " ".join(t.name for t in item.tools)
    return ""


def _item_audio_ms(item: ConversationItem, session: EngineSession) -> int:
    if not isinstance(
        item, (RealtimeConversationItemUserMessage, RealtimeConversationItemAssistantMessage)
    ):
        return 0
    fmt = session.buffer.fmt
    total = 0
    for part in item.content:
        if isinstance(part.audio, str):
            size = len(part.audio) * 3 // 4
            total += size // fmt.bytes_per_sample // fmt.samples_per_ms
    return total


def _id_of(item: ConversationItem) -> str | None:
    value = item.id
    return value if isinstance(value, str) else None
