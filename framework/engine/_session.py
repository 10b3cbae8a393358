"""One Realtime session of the local engine, behind one connection.

A session is a few parts, one per seam of the protocol; each client event is
handled by one of them, through the table in :meth:`EngineSession._handler_table`:

=====================  ====================  ==========================================
part                   module                client events
=====================  ====================  ==========================================
configuration          ``_session_config``   ``session.update`` (checks in ``_config``)
conversation           ``_conversation``     ``conversation.item.create`` / ``delete`` /
                                             ``retrieve`` / ``truncate``; items in
                                             ``_stored_item``, checks in ``_client_items``
input audio            ``_input``            ``input_audio_buffer.append`` / ``commit`` /
                                             ``clear``; VAD (``_vad``), transcription
                                             (``_transcription``), the idle timeout
responses              ``_responses``        ``response.create`` / ``cancel``; one
                                             ``_response`` object per response, its
                                             outputs in ``_outputs`` and ``_mcp_calls``
hosted MCP             ``_mcp``              (listings, when tools arrive; the client
                                             interface and policy in ``_hosted_mcp``)
timers, usage, outbox  ``_timers``,          (the idle deadline and the session's
                       ``_usage``,           expiry; usage and rate limits; ids, the
                       ``_outbox``           send queue and its writer)
=====================  ====================  ==========================================

Tasks (all in the session's nursery, all gone when the connection is): the
*reader* (the session's own task) parses and handles each client frame;
handling only updates state and queues events, so a slow brain or a long
response never delays the next client event. The *writer* owns the
connection's send side. One task per *response* (in its own cancel scope),
per *transcription* and per hosted-MCP *listing*; the *idle* deadline and the
session's *expiry*. A departing client shows up as :class:`Disconnected` in
the reader or writer, or as a broken queue in a task still emitting: each
just ends the session.

Bounds: a client frame is at most ``max_frame_bytes`` (16 MiB; a larger one
gets an ``error`` event and is dropped); the session's duration, its queue,
its conversation and its input buffer are bounded in the modules that own
them (``_timers``, ``_outbox``, ``_conversation``, ``_input``).
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import orjson
import trio

from framework.protocol import (
    ConversationItemCreateEvent,
    ConversationItemDeleteEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    OutputAudioBufferClearEvent,
    ProtocolError,
    RealtimeSessionCreateRequest,
    ResponseCancelEvent,
    ResponseCreateEvent,
    ServerEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
    TranscriptionSessionUpdate,
    UnknownClientEvent,
    parse_client_event,
)

from ._brain import Brain
from ._config import RequestError, invalid_value
from ._conversation import Conversation, ConversationLimits, ConversationStatistics
from ._hosted_mcp import HostedMcpClient, NoMcpClient
from ._input import InputAudio, InputStatistics
from ._mcp import McpServers
from ._network import Link
from ._outbox import Connection as Connection
from ._outbox import Disconnected as Disconnected
from ._outbox import Outbox
from ._response import ResponseServices
from ._responses import Responses
from ._session_config import SessionConfig
from ._speech import Synthesizer, Transcriber
from ._timers import MAX_SESSION_S, Deadline, expire
from ._transcription import Transcriptions
from ._usage import SessionUsage
from ._vad import ClassifierFactory, EnergyClassifier

MAX_FRAME_BYTES = 16 * 1024 * 1024


def _session_limit(value: float | None) -> float:
    return MAX_SESSION_S if value is None else float(value)


@attrs.define(kw_only=True)
class SessionOptions:
    """Plug-ins, limits and test knobs shared by every session of an engine."""

    brain: Brain
    transcriber: Transcriber
    synthesizer: Synthesizer
    vad: ClassifierFactory = EnergyClassifier
    """Builds each input's VAD frame classifier (energy by default)."""
    model: str = "gpt-realtime"
    max_session_s: float = attrs.field(default=MAX_SESSION_S, converter=_session_limit)
    """How long a session may last: None is the hosted API's 60 minutes, ``math.inf`` never."""
    latency_ms: int = 0
    """Test knob: a delay before every event the engine sends."""
    drop_after_events: int | None = None
    """Test knob: the connection is dropped after this many events."""
    max_frame_bytes: int = MAX_FRAME_BYTES
    send_buffer: int = 64
    """Events that may wait to be written before emitting waits."""
    conversation: ConversationLimits = attrs.Factory(ConversationLimits)
    mcp_client: HostedMcpClient | None = None
    """Runs hosted MCP tools; None: none (every listing fails, saying so)."""


@attrs.frozen(kw_only=True)
class SessionStatistics:
    """What a session holds now: its own memory accounting."""

    conversation: ConversationStatistics
    input: InputStatistics
    events_sent: int


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

        ``model`` is the one the URL named; with neither it nor ``config``, the
        first ``session.update`` naming a model chooses it. With
        ``transcription`` it is a transcription session (``type:
        "transcription"``): committed audio is transcribed and never answered.
        """
        self.options = options
        self.conn = connection
        self.id = session_id or f"sess_{secrets.token_hex(8)}"
        limit = options.max_session_s
        self.outbox = Outbox(send_buffer=options.send_buffer, latency_ms=options.latency_ms)
        self.config = SessionConfig(
            model=model,
            default_model=options.model,
            session_id=self.id,
            expires_at=None if math.isinf(limit) else int(time.time() + limit),
            initial=config,
            transcription=transcription,
        )
        self.conversation = Conversation(self.outbox, self.config, options.conversation)
        self.mcp = McpServers(
            outbox=self.outbox,
            conversation=self.conversation,
            client=options.mcp_client or NoMcpClient(),
            spawn=self._spawn,
        )
        self.responses = Responses(
            config=self.config,
            services=ResponseServices(
                outbox=self.outbox,
                conversation=self.conversation,
                mcp=self.mcp,
                brain=options.brain,
                synthesizer=options.synthesizer,
                usage=SessionUsage(),
            ),
            observer=self,
            spawn=self._spawn,
        )
        self.input = InputAudio(
            outbox=self.outbox,
            config=self.config,
            conversation=self.conversation,
            transcriptions=Transcriptions(self.outbox, self.conversation, options.transcriber),
            turns=self.responses,
            vad=options.vad,
            spawn=self._spawn,
        )
        self.expiry = Deadline()
        """When the session ends itself (the operator may bring it forward)."""
        self.link: Link | None = None
        """The TCP connection under it, when served over the network (to drop it)."""
        self._nursery: trio.Nursery | None = None
        self._handlers = self._handler_table()

    # --- the public face ------------------------------------------------------------

    async def emit(self, event: ServerEvent) -> None:
        """Sends a server event to the client, in order with the session's own."""
        await self.outbox.emit(event)

    @property
    def sent(self) -> int:
        """Events written to the connection so far."""
        return self.outbox.sent

    def statistics(self) -> SessionStatistics:
        """What the session holds now, against the bounds its parts keep."""
        return SessionStatistics(
            conversation=self.conversation.statistics(),
            input=self.input.statistics(),
            events_sent=self.outbox.sent,
        )

    async def run(self) -> None:
        """Serves the connection until the client leaves or the session ends."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(
                    lambda: self.outbox.run_writer(
                        self.conn, drop_after=self.options.drop_after_events
                    )
                )
                self.input.rearm_idle()  # a starting config may carry an idle timeout
                nursery.start_soon(self.input.idle.run, self.input.idle_passed)
                if not math.isinf(limit := self.options.max_session_s):
                    self.expiry.set_in(limit)
                nursery.start_soon(self.expiry.run, self._expire)
                await self.emit(
                    SessionCreatedEvent(
                        event_id=self.outbox.new_id("event"), session=self.config.shown()
                    )
                )
                # A session may start with MCP tools (a client secret's configuration).
                await self.mcp.offer(self.config.tools, "session.tools")
                while True:
                    await self.handle_frame(await self.conn.receive())
        except* (Disconnected, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            # Now, not when the collector gets round to the session's cycles: a
            # storm of short sessions otherwise holds a model and audio for each.
            self.input.release()

    async def _expire(self) -> None:
        await expire(self.outbox, self.options.max_session_s)

    def expire_now(self) -> None:
        """Ends the session at once, as if it had reached its maximum duration."""
        self.expiry.set(trio.current_time())

    async def drop(self) -> None:
        """Drops the connection without a closing handshake (the client sees the line die)."""
        if self.link is not None:
            self.link.drop("dropped on purpose (operator interface)")
        else:
            await self.conn.abort()

    def _spawn(self, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        assert self._nursery is not None, "the session is not running"
        self._nursery.start_soon(fn, *args)

    # --- frames ---------------------------------------------------------------------

    async def handle_frame(self, frame: str | bytes) -> None:
        """Parses and handles one client frame; every failure becomes an error event."""
        if isinstance(frame, bytes):
            await self.outbox.error(
                RequestError(
                    "Binary WebSocket frames are not supported; send each event as a JSON "
                    "text frame.",
                    code="invalid_frame",
                )
            )
            return
        limit = self.options.max_frame_bytes
        if len(frame) > limit:
            await self.outbox.error(
                RequestError(
                    f"The event is too large ({len(frame)} bytes); the maximum is {limit} bytes.",
                    code="message_too_large",
                ),
                _leading_event_id(frame),
            )
            return
        try:
            event = parse_client_event(frame)
        except ProtocolError as e:
            await self.outbox.error(_protocol_error(e), _event_id_of(frame))
            return
        client_event_id = (
            event.raw.get("event_id")
            if isinstance(event, UnknownClientEvent)
            else getattr(event, "event_id", None)
        )
        handler = self._handlers.get(type(event), _unsupported)
        try:
            await handler(event)
        except RequestError as e:
            await self.outbox.error(e, client_event_id)

    def _handler_table(self) -> dict[type, Callable[[Any], Awaitable[None]]]:
        """Which part handles each client event type."""
        return {
            SessionUpdateEvent: self._session_update,
            InputAudioBufferAppendEvent: self.input.append,
            InputAudioBufferCommitEvent: self.input.commit,
            InputAudioBufferClearEvent: self.input.clear,
            ConversationItemCreateEvent: self.conversation.create,
            ConversationItemDeleteEvent: self.conversation.delete,
            ConversationItemRetrieveEvent: self.conversation.retrieve,
            ConversationItemTruncateEvent: self.conversation.truncate,
            ResponseCreateEvent: self.responses.create,
            ResponseCancelEvent: self.responses.cancel,
            OutputAudioBufferClearEvent: _output_buffer_clear,
            TranscriptionSessionUpdate: _legacy_session_update,
            UnknownClientEvent: _unknown_event,
        }

    async def _session_update(self, event: SessionUpdateEvent) -> None:
        """``session.update``: checks and merges the update (see ``_session_config``),
        then has the input follow a new format or turn detection, and lists the
        hosted MCP servers that are new (those dropped are forgotten)."""
        audio_changed = self.config.update(
            event.session,
            audio_produced=self.responses.services.audio_produced,
            response_active=self.responses.busy,
        )
        if audio_changed:
            self.input.configure()
            self.input.rearm_idle()
        await self.emit(
            SessionUpdatedEvent(event_id=self.outbox.new_id("event"), session=self.config.shown())
        )
        self.mcp.keep_only(self.config.tools)
        await self.mcp.offer(self.config.tools, "session.tools")

    # --- what the responses tell the input ------------------------------------------------

    def response_started(self) -> None:
        """A response began: the user's silence no longer counts."""
        self.input.disarm_idle()

    def response_done(self, playback_ms: int) -> None:
        """A response ended: the idle timeout starts once its audio has played."""
        self.input.rearm_idle(playback_ms)


# --- events the engine refuses ----------------------------------------------------------

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


async def _output_buffer_clear(event: OutputAudioBufferClearEvent) -> None:
    """``output_audio_buffer.clear``: refused, as the hosted API refuses it on a WebSocket."""
    raise RequestError(
        "output_audio_buffer.clear is only supported on WebRTC and SIP connections; "
        "on a WebSocket the client owns playback (use response.cancel and "
        "conversation.item.truncate).",
        code="invalid_value",
        param="type",
    )


async def _legacy_session_update(event: TranscriptionSessionUpdate) -> None:
    """``transcription_session.update``: refused; the GA protocol removed it."""
    raise RequestError(
        "The 'transcription_session.update' event was removed from the GA Realtime "
        "API; send 'session.update' with a session of type 'transcription' instead.",
        code="invalid_value",
        param="type",
    )


async def _unknown_event(event: UnknownClientEvent) -> None:
    """An event type the protocol does not have: the supported ones are listed."""
    raise invalid_value("type", event.type, _CLIENT_TYPES)


async def _unsupported(event: object) -> None:
    """A protocol event this engine does not serve."""
    raise RequestError(
        f"The event type '{getattr(event, 'type', '?')}' is not supported by this engine.",
        code="invalid_value",
        param="type",
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
    if reason.startswith("nested deeper than"):
        return RequestError(
            f"Invalid value at '{path}': {reason}, more than this server reads.",
            code="invalid_value",
            param=path,
        )
    return RequestError(f"Invalid type for '{path}': {reason}.", code="invalid_type", param=path)


_LEADING_EVENT_ID = re.compile(
    r'^\s*\{\s*(?:"type"\s*:\s*"[^"\\]{0,64}"\s*,\s*)?"event_id"\s*:\s*"([^"\\]{1,512})"'
)


def _leading_event_id(frame: str) -> str | None:
    """The event_id of a frame too large to parse, when it is one of its first two keys.

    An error names the client event that caused it; clients (ours among them)
    match a refused ``conversation.item.create`` to its call by that id. Only
    the frame's head is read, so refusing a huge frame stays cheap.
    """
    found = _LEADING_EVENT_ID.match(frame[:1024])
    return found.group(1) if found else None


def _event_id_of(frame: str) -> str | None:
    """The client's event_id of a frame that did not parse, when it can be read."""
    try:
        data = orjson.loads(frame)
    except ValueError:
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
