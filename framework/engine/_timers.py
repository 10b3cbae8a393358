"""The session's clocks: the idle-timeout deadline and the session's maximum duration.

Both run on trio's clock (``MockClock`` in tests); VAD and buffer offsets
never do. The idle timeout's policy (when it is armed, what it commits) is
the input's, in :mod:`._input`; this module only watches the deadline.

Bound: a session lasts at most ``max_session_s`` seconds (3600 by default,
the hosted API's 60 minutes; ``math.inf`` for never). Then, as the hosted API
does, the engine sends an ``error`` (``session_expired``) and closes the
WebSocket with code 1001 and the same reason; ``session.created`` reports the
moment as ``expires_at``. The expiry is a :class:`Deadline`, so a test (or the
operator interface) can bring it forward: a session that ends before the
moment it announced is what a client's continuity must survive.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio

from ._config import RequestError
from ._outbox import Outbox

MAX_SESSION_S = 3600.0


class Deadline:
    """A deadline that can be moved at any time, and a task that acts when it passes."""

    def __init__(self) -> None:
        self.at = math.inf
        self._scope: trio.CancelScope | None = None

    def set(self, at: float) -> None:
        """Moves the deadline (``math.inf``: disarmed)."""
        self.at = at
        if self._scope is not None:
            self._scope.deadline = at

    def set_in(self, seconds: float) -> None:
        """Arms the deadline ``seconds`` from now."""
        self.set(trio.current_time() + seconds)

    async def run(self, passed: Callable[[], Awaitable[None]]) -> None:
        """Calls ``passed`` each time the deadline passes (disarming it first)."""
        while True:
            with trio.CancelScope(deadline=self.at) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            if trio.current_time() < self.at:
                continue  # moved later while we slept
            self.at = math.inf
            await passed()


async def expire(outbox: Outbox, seconds: float) -> None:
    """Ends the session now, as the hosted API ends one at its limit of ``seconds``."""
    minutes = seconds / 60
    shown = f"{minutes:g} minutes" if minutes >= 1 else f"{seconds:g} seconds"
    reason = (
        f"Your session hit the maximum duration of {shown}."
        if not math.isinf(seconds)
        else "Your session was ended by the server."  # brought forward by the operator
    )
    await outbox.error(RequestError(reason, code="session_expired", type="invalid_request_error"))
    # Queued behind the error, so the client reads it before the close frame.
    await outbox.close(1001, reason)
