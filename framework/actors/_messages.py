"""The messages the actors exchange, and the little state they share.

Commands are imperative (``CreateResponse``), events past tense
(``CallsSettled``). Every message is a frozen attrs class. The only shared
mutable state is bookkeeping that must change in the same step as a routing
decision: :class:`Activity` (is anything still going on?) and the
:class:`Outbox` every actor sends client events through.
"""

from __future__ import annotations

import attrs
import trio

from framework.protocol import ClientEvent, RealtimeResponseCreateParams
from framework.transport import ConnectionClosed

# --- commands ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateResponse:
    """Ask the server for a response (queued while another is in flight)."""

    params: RealtimeResponseCreateParams | None = None
    reason: str = "app"


@attrs.frozen(kw_only=True)
class Interrupt:
    """Stop the assistant now (the application's barge-in)."""


@attrs.frozen(kw_only=True)
class SendAudio:
    """Append audio (in the session's input format) to the input buffer."""

    audio: bytes


@attrs.frozen(kw_only=True)
class CommitAudio:
    """Commit the input buffer as a user turn (manual turns, push-to-talk)."""

    respond: bool = True


# --- events --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class BargedIn:
    """The user started speaking over the assistant (from server VAD)."""

    audio_start_ms: int


# --- shared bookkeeping --------------------------------------------------------------


class Activity:
    """Counts what is still going on in a session: responses and tool calls.

    Whoever starts something calls :meth:`up` in the same step in which it
    decides to (so the count never touches zero between a response that
    asked for tools and the tools starting), and :meth:`down` when it ends.
    ``wait_quiet`` returns once the count is zero.
    """

    def __init__(self) -> None:
        self.count = 0
        self._quiet = trio.Event()
        self._quiet.set()
        self.failure: BaseException | None = None

    def up(self) -> None:
        if self.count == 0:
            self._quiet = trio.Event()
        self.count += 1

    def down(self) -> None:
        if self.count <= 0:
            raise RuntimeError("activity count went below zero")
        self.count -= 1
        if self.count == 0:
            self._quiet.set()

    def fail(self, error: BaseException) -> None:
        """Wakes every waiter: the session is over (``wait_quiet`` raises ``error``)."""
        self.failure = error
        self._quiet.set()

    async def wait_quiet(self) -> None:
        while True:
            await self._quiet.wait()
            if self.failure is not None:
                raise self.failure
            if self.count == 0:
                return


class Outbox:
    """The send side every actor uses to reach the SessionActor's writer.

    Control events are never dropped: ``send`` waits for room. The channel
    is bounded, so a stalled socket slows the actors down instead of
    growing memory.
    """

    def __init__(self, channel: trio.MemorySendChannel[ClientEvent]) -> None:
        self._channel = channel
        self._ids = 0

    def next_id(self, prefix: str = "evt") -> str:
        """A client event id, unique in this session."""
        self._ids += 1
        return f"{prefix}_{self._ids:06d}"

    async def send(self, event: ClientEvent) -> None:
        """Queues a client event for the writer.

        Raises:
            ConnectionClosed: the session's writer is gone (the session ended).
        """
        try:
            await self._channel.send(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectionClosed(1006, "the session has ended") from None
