"""How long the event loop goes without looking at I/O: the worker's loop lag.

A trio process serves every call on one thread. When one batch of task steps
runs long (a big JSON parse, a collection, too many calls), every other call's
audio waits for it. :class:`LoopLag` is a trio instrument that times each
batch, from the moment the loop comes back from waiting for I/O to the moment
it waits again, and keeps the longest since it was last read: the worst delay
an arriving frame could have met. The hooks run once per loop iteration, not
per task step, so the measure costs next to nothing.
"""

from __future__ import annotations

import contextlib
import time

import trio


class LoopLag(trio.abc.Instrument):
    """The longest busy stretch of the run loop since the last :meth:`take`.

    Install it with ``trio.lowlevel.add_instrument(lag)`` (or the
    :meth:`installed` context manager) from inside the run.
    """

    def __init__(self) -> None:
        self._busy_since: float | None = None
        self._longest = 0.0

    def after_io_wait(self, timeout: float) -> None:
        self._busy_since = time.perf_counter()

    def before_io_wait(self, timeout: float) -> None:
        if self._busy_since is not None:
            busy = time.perf_counter() - self._busy_since
            if busy > self._longest:
                self._longest = busy
            self._busy_since = None

    def take(self) -> float:
        """The longest busy stretch in seconds since the last call; starts over."""
        longest, self._longest = self._longest, 0.0
        return longest

    def install(self) -> None:
        """Adds the instrument to the running trio loop."""
        trio.lowlevel.add_instrument(self)

    def remove(self) -> None:
        """Takes the instrument off the running loop (nothing if it is not on)."""
        with contextlib.suppress(KeyError):
            trio.lowlevel.remove_instrument(self)
