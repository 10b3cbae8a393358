"""Continuity: what a session needs to outlive its connection.

The SessionActor does the work (reconnect, rollover, failover: see its
module); this module holds the parts it works with, none of which runs on
its own:

* :class:`Endpoint`, where a session may connect (a URL with its key and
  model, or a dialer of any wire), and :class:`Continuity`, the policy: how
  often and how long to dial again, when to roll over, how much user audio
  to hold while the line is down;
* :class:`Line`, one open connection, held open by a task of its own
  (:func:`hold_line`) so that connections can overlap during a rollover;
* :func:`backoff`, the jittered exponential schedule of a reconnect;
* :func:`replay_items`, the history mirror as the conversation items that
  rebuild it on a new connection: messages as text, function calls with their
  outputs, audio as its transcript (an assistant's cut where the user stopped
  hearing it);
* :class:`Checkpoint`, the same, plus the calls and approvals still open, as a
  value that serializes to JSON: another worker opens a session from it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal, TypeAlias

import attrs
import cattrs
import orjson
import trio

from framework.errors import ConnectionClosed, HandshakeRefused, SessionRefused
from framework.protocol import (
    AssistantMessageContent,
    ConversationItem,
    ConversationItemCreateEvent,
    ProtocolError,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    UserMessageContent,
    parse_client_event,
    to_dict,
)
from framework.transport import Framing, RealtimeConnection, open_connection

from ._contracts import Wire
from ._history import History, HistoryItem

_log = logging.getLogger("cantata.session")

Dialer: TypeAlias = Callable[[], AbstractAsyncContextManager[Wire]]
"""Opens a wire for the duration of a block (``framework.testing`` has in-memory ones)."""

UNHEARD = "[The user spoke here; no transcript of it was kept.]"
"""What stands in for user audio that was never transcribed, when it is replayed."""


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where a session may connect.

    Args:
        url: a Realtime URL (``None``: the hosted API).
        api_key: its key (for the hosted API, ``OPENAI_API_KEY`` by default).
        model: the model there; it replaces the agent's in the session's
            configuration (failing over to another model).
        dial: opens the wire some other way (then ``url`` and ``api_key`` are unused).
        name: how events name it (default: the URL).
        framing: what frames its WebSocket (see ``open_connection``).
    """

    url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    model: str | None = None
    dial: Dialer | None = attrs.field(default=None, eq=False, repr=False)
    name: str = ""
    framing: Framing = "trio-websocket"

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.dial is not None:
            return "a custom dialer"
        return self.url or "the hosted API"

    def open(self, default_model: str | None) -> AbstractAsyncContextManager[Wire]:
        """Opens a connection to it."""
        if self.dial is not None:
            return self.dial()
        return open_connection(
            self.url, api_key=self.api_key, model=self.model or default_model, framing=self.framing
        )


@attrs.frozen(kw_only=True)
class Continuity:
    """How a session survives drops, expiries and failing endpoints.

    Args:
        reconnect: dial again when the connection drops (a close that is not
            an orderly one by either side) or the server's session expires.
        attempts: dials per endpoint in one outage before failing over to the next.
        give_up_after_s: an outage longer than this ends the session.
        backoff_s: the first wait before dialing again; it doubles each attempt ...
        max_backoff_s: ... up to this;
        jitter: ... and each wait is drawn at random from its last ``jitter``
            fraction (0: no randomness).
        rollover: move to a fresh connection before the server's ``expires_at``.
        rollover_lead_s: open the next connection this long before the expiry
            (at most half the session's lifetime) ...
        rollover_margin_s: ... and switch at the next quiet moment, or at this
            long before the expiry, quiet or not.
        hold_audio_s: user audio held while the line is down; older is dropped.
        seed: seeds the jitter (for tests that want the same waits every run).
    """

    reconnect: bool = True
    attempts: int = 4
    give_up_after_s: float = 60.0
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0
    jitter: float = 0.5
    rollover: bool = True
    rollover_lead_s: float = 120.0
    rollover_margin_s: float = 10.0
    hold_audio_s: float = 10.0
    seed: int | None = None


def backoff(policy: Continuity) -> Iterator[float]:
    """The waits before each dial of one outage: 0 first, then jittered, doubling."""
    rng = random.Random(policy.seed)
    yield 0.0
    base = policy.backoff_s
    while True:
        top = min(policy.max_backoff_s, base)
        yield top * (1 - policy.jitter * rng.random())
        base *= 2


def retryable(error: BaseException) -> bool:
    """Whether dialing the same endpoint again may help (else: fail over at once)."""
    if isinstance(error, HandshakeRefused):
        # A bad key, a wrong path, a refused model: the same again would fail the same.
        return error.code >= 500 or error.code in (408, 429)
    return not isinstance(error, SessionRefused)


LINE_CLOSE_S = 5.0
"""How long a line being let go may take to close."""

FAILURES = (ConnectionClosed, SessionRefused, trio.TooSlowError, OSError)
"""What a dial or a handshake can fail with and the session survives (it tries again)."""


@attrs.define(eq=False)
class Line:
    """One connection of a session, held open by :func:`hold_line` until released."""

    wire: Wire
    endpoint: int
    """Its index in the session's endpoints (-1: the connection the session was given)."""
    released: trio.Event = attrs.Factory(trio.Event)
    closed: trio.Event = attrs.Factory(trio.Event)
    session_id: str = ""
    expires_at: float | None = None
    """The server's expiry on trio's clock, from ``session.created``."""
    expired: bool = False
    """The server said ``session_expired``: its coming close is not the user's wish."""
    switching: bool = False
    last_create: str | None = None
    """The event id of the last ``response.create`` written to it."""
    replayed: set[str] = attrs.Factory(set)
    """Items re-created on it as text: their audio is not on its server."""
    writing: trio.StrictFIFOLock = attrs.Factory(trio.StrictFIFOLock)
    """Held while a frame is written on it in service, by the writer or at once
    (:meth:`~._session_actor.SessionActor.write_now`): one frame at a time, in order."""
    whole_frames: bool = attrs.field(init=False)
    """Its wire writes a frame whole even when the writer is cancelled (a Realtime
    connection does); any other wire is shielded by whoever writes at once."""
    reading: trio.CancelScope = attrs.Factory(trio.CancelScope)
    listening: trio.CancelScope | None = None
    waiting: trio.CancelScope | None = None
    rolling: trio.CancelScope = attrs.Factory(trio.CancelScope)

    def __attrs_post_init__(self) -> None:
        self.whole_frames = isinstance(self.wire, RealtimeConnection)

    def stop(self) -> None:
        """Stops its reader and its writer, each between two events (for a switch)."""
        self.switching = True
        for scope in (self.listening, self.waiting):
            if scope is not None:
                scope.cancel()

    async def close(self) -> None:
        """Releases it; returns once it is closed, or after :data:`LINE_CLOSE_S`."""
        self.released.set()
        self.rolling.cancel()
        with trio.move_on_after(LINE_CLOSE_S):
            await self.closed.wait()


async def hold_line(
    opener: AbstractAsyncContextManager[Wire],
    endpoint: int,
    *,
    task_status: trio.TaskStatus[Line] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Opens a connection and holds it open until its line is released.

    Errors before it is open reach the caller of ``nursery.start``; after, they
    are logged: a connection that fails while closing is no reason to end the
    session.
    """
    line: Line | None = None
    try:
        async with opener as wire:
            line = Line(wire=wire, endpoint=endpoint)
            task_status.started(line)
            await line.released.wait()
    except Exception as error:
        if line is None:
            raise
        _log.debug("a connection failed while closing: %s", error)
    finally:
        if line is not None:
            line.closed.set()


def given_line(wire: Wire) -> Line:
    """A line for a connection the session was given: it is never closed by the session."""
    line = Line(wire=wire, endpoint=-1)
    line.closed.set()
    return line


def expiry_on_clock(expires_at: object) -> float | None:
    """``expires_at`` (epoch seconds) as a time on trio's clock."""
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float) or expires_at <= 0:
        return None
    return trio.current_time() + (float(expires_at) - time.time())


# --- replay --------------------------------------------------------------------------


def _heard(item: HistoryItem, bytes_per_ms: int) -> str:
    """An assistant item's words, cut in proportion to where the user stopped hearing it."""
    text = item.text
    if item.truncated_ms is None or item.audio_bytes <= 0:
        return text
    fraction = min(1.0, item.truncated_ms * bytes_per_ms / item.audio_bytes)
    words = text.split()
    kept = " ".join(words[: math.floor(len(words) * fraction)])
    return f"{kept} [interrupted]" if kept else "[interrupted before it was heard]"


def replay_item(item: HistoryItem, bytes_per_ms: int) -> ConversationItem | None:
    """The item that re-creates ``item`` on a new connection (``None``: none can)."""
    known = item.item
    status = "completed" if item.final else "incomplete"
    if isinstance(known, RealtimeConversationItemUserMessage):
        parts = [
            UserMessageContent(type="input_text", text=p.text)
            if p.type == "input_text"
            else UserMessageContent(
                type="input_text",
                text=p.transcript if isinstance(p.transcript, str) and p.transcript else UNHEARD,
            )
            if p.type == "input_audio"
            else p
            for p in known.content
        ]
        if item.text and all(p.type == "input_audio" for p in known.content):
            parts = [UserMessageContent(type="input_text", text=item.text)]
        return RealtimeConversationItemUserMessage(id=item.id, content=parts)
    if isinstance(known, RealtimeConversationItemAssistantMessage):
        if not item.text:
            return None  # cut before it said anything
        return RealtimeConversationItemAssistantMessage(
            id=item.id,
            status=status,
            content=[AssistantMessageContent(type="output_text", text=_heard(item, bytes_per_ms))],
        )
    if isinstance(known, RealtimeConversationItemSystemMessage):
        return RealtimeConversationItemSystemMessage(id=item.id, content=known.content)
    if isinstance(known, RealtimeConversationItemFunctionCall):
        if not item.final:
            return None  # its arguments never arrived whole: it was never called
        return RealtimeConversationItemFunctionCall(
            id=item.id, call_id=known.call_id, name=known.name, arguments=known.arguments
        )
    if isinstance(known, RealtimeConversationItemFunctionCallOutput):
        return RealtimeConversationItemFunctionCallOutput(
            id=item.id, call_id=known.call_id, output=known.output
        )
    return None  # hosted MCP listings, calls and approvals: the server makes those


def replay_items(
    history: History, unconfirmed: Sequence[ConversationItem], bytes_per_ms: int
) -> tuple[list[ConversationItem], int]:
    """The items that rebuild the conversation, in order, and how many could not be.

    The mirror's items first, then what the client created that the server
    never confirmed (they may not have reached it).
    """
    items: list[ConversationItem] = []
    skipped = 0
    for known in history.items:
        replayed = replay_item(known, bytes_per_ms)
        if replayed is None:
            skipped += 1
        else:
            items.append(replayed)
    seen = {getattr(i, "id", None) for i in items}
    items.extend(i for i in unconfirmed if getattr(i, "id", None) not in seen)
    return items, skipped


# --- checkpoints -------------------------------------------------------------------------


CallState: TypeAlias = Literal["running", "awaiting_approval"]


@attrs.frozen(kw_only=True)
class PendingCall:
    """A function call without its output when the checkpoint was taken."""

    call_id: str
    name: str
    arguments: str
    state: CallState


@attrs.frozen(kw_only=True)
class Checkpoint:
    """What another worker needs to take a session over, as plain values.

    Take one with ``session.checkpoint()`` (at a turn end there are no
    ``calls``) and open a session from it with ``open_session(resume=...)``:
    the conversation is replayed on the new connection; a call still open is
    answered once there, saying it was interrupted by the move (a call that
    was running may or may not have finished; one that waited for approval
    did not run); sticky approvals carry over.

    Attributes:
        session_id: the server's id of the session it was taken from.
        agent: the name of the agent in charge then.
        items: the conversation, as the wire objects that re-create it.
        calls: function calls that had no output yet.
        sticky: "always allow / always deny" decisions, by tool.
        taken_at: when (epoch seconds).
    """

    version: int = 1
    session_id: str
    agent: str
    items: tuple[Mapping[str, object], ...]
    calls: tuple[PendingCall, ...] = ()
    sticky: Mapping[str, bool] = attrs.field(factory=dict)
    taken_at: float = attrs.field(factory=time.time)

    def to_json(self) -> str:
        return orjson.dumps(_converter.unstructure(self)).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Reads a checkpoint back.

        Raises:
            ValueError: the text is not a checkpoint, or an item in it is not a
                conversation item (the message names the path).
        """
        try:
            value = orjson.loads(text)
            if not isinstance(value, dict):
                raise ValueError(f"a JSON object was expected, not {type(value).__name__}")
            checkpoint = _converter.structure(value, cls)
        except (ValueError, cattrs.BaseValidationError) as e:  # JSONDecodeError is one
            detail = (
                "; ".join(cattrs.transform_error(e))
                if isinstance(e, cattrs.BaseValidationError)
                else str(e)
            )
            raise ValueError(f"not a session checkpoint: {detail}") from None
        try:
            checkpoint.conversation()  # each item must be one the protocol can send
        except ProtocolError as e:
            raise ValueError(f"not a session checkpoint: in its items, {e}") from None
        return checkpoint

    def conversation(self) -> list[ConversationItem]:
        """The items, as protocol objects."""
        items = []
        for item in self.items:
            # Read as the client event that carries it: the protocol's tagged union.
            event = parse_client_event({"type": "conversation.item.create", "item": dict(item)})
            assert isinstance(event, ConversationItemCreateEvent)
            items.append(event.item)
        return items


def wire_items(items: Sequence[ConversationItem]) -> tuple[Mapping[str, object], ...]:
    return tuple(to_dict(item) for item in items)


_converter = cattrs.Converter()
# The items are JSON objects of the protocol, kept as they are (the protocol's own
# converter reads them, in ``conversation``).
_converter.register_structure_hook_func(lambda kind: kind is object, lambda value, _: value)
