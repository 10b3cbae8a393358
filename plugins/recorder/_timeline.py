"""Two channels on one clock: the user as the session took them, the assistant as played.

:class:`Timeline` places audio by the time it passed the session's taps, in
frames from its origin. The user's chunks follow one another, each no earlier
than when it arrived; the assistant's play as a sink plays them: each after
the one before, or when it arrived if playback had gone quiet. A barge-in
cuts the item that was playing where the user stopped hearing it, and drops
what was queued after it. Frames before "now" can no longer change: they are
taken (:meth:`Timeline.take`) and written out, so only what is still to be
played is held.

Bounds: assistant audio queued further ahead than :data:`MAX_AHEAD_S` is
dropped (``dropped_ms`` counts it); the start of the last :data:`KEPT_ITEMS`
items is remembered, to cut them.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

MAX_AHEAD_S = 600
"""How far ahead of the clock assistant audio may be queued for playback."""
KEPT_ITEMS = 64

Frames = npt.NDArray[np.int16]


class _Channel:
    """One channel's frames from ``start`` (absolute) on, and where its audio ends."""

    def __init__(self) -> None:
        self.frames: Frames = np.zeros(0, dtype=np.int16)
        self.end = 0

    def put(self, at: int, start: int, samples: Frames) -> None:
        offset = at - start
        needed = offset + len(samples)
        if needed > len(self.frames):
            self.frames = np.concatenate(
                [self.frames, np.zeros(needed - len(self.frames), dtype=np.int16)]
            )
        self.frames[offset:needed] = samples
        self.end = at + len(samples)

    def silence_from(self, at: int, start: int) -> None:
        offset = max(0, at - start)
        self.frames = self.frames[:offset].copy()

    def take(self, count: int) -> Frames:
        head = self.frames[:count]
        if len(head) < count:
            head = np.concatenate([head, np.zeros(count - len(head), dtype=np.int16)])
        self.frames = self.frames[count:]
        return head


class Timeline:
    """The call's two channels, placed on one clock (see the module docstring).

    Args:
        rate: frames per second.
        origin: the clock time of frame 0 (trio clock seconds).
    """

    def __init__(self, rate: int, origin: float) -> None:
        self.rate = rate
        self.origin = origin
        self.taken = 0
        """Frames already taken (they can no longer change)."""
        self.dropped_ms = 0
        self._user = _Channel()
        self._assistant = _Channel()
        self._items: OrderedDict[str, int] = OrderedDict()  # first frame of each item

    def frame(self, at: float) -> int:
        return max(0, round((at - self.origin) * self.rate))

    def user(self, at: float, samples: Frames) -> None:
        """User audio that arrived at ``at``: after what came before, never earlier."""
        start = max(self.frame(at), self._user.end, self.taken)
        self._user.put(start, self.taken, samples)

    def assistant(self, at: float, item_id: str, samples: Frames) -> None:
        """Assistant audio that went to playback at ``at``: after what is queued."""
        now = self.frame(at)
        start = max(now, self._assistant.end, self.taken)
        if start - now > MAX_AHEAD_S * self.rate:
            self.dropped_ms += len(samples) * 1000 // self.rate
            return
        if item_id not in self._items:
            self._items[item_id] = start
            if len(self._items) > KEPT_ITEMS:
                self._items.popitem(last=False)
        self._assistant.put(start, self.taken, samples)

    def stopped(self, at: float, item_id: str | None, played_ms: int) -> None:
        """Playback stopped at ``at``: ``played_ms`` of ``item_id`` were heard, no more."""
        now = self.frame(at)
        first = self._items.get(item_id or "")
        cut = first + played_ms * self.rate // 1000 if first is not None else now
        cut = max(min(cut, now), self.taken)
        self._assistant.silence_from(cut, self.taken)
        self._assistant.end = max(now, self.taken)

    def take(self, until: float) -> Frames:
        """The frames up to ``until`` not taken yet, interleaved (user left)."""
        count = max(0, self.frame(until) - self.taken)
        stereo = np.empty(count * 2, dtype=np.int16)
        stereo[0::2] = self._user.take(count)
        stereo[1::2] = self._assistant.take(count)
        self.taken += count
        return stereo

    def rest(self) -> Frames:
        """Every frame not taken yet, to the end of the audio (the call is over)."""
        end = max(self._user.end, self._assistant.end, self.taken)
        return self.take(self.origin + end / self.rate)
