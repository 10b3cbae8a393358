"""The worker's clocks, on trio's MockClock: its beats and its periodic Redis steps."""

from __future__ import annotations

import attrs
import coredis
import pytest
import trio
import trio.testing

from framework.fleet import Worker
from framework.fleet._worker import BEAT_EVERY_S, BEAT_GAP_S
from framework.telephony import PhoneAgent


@attrs.define(kw_only=True, eq=False)
class _BeatLog(Worker):
    """A worker whose beats are noted with the time instead of sent."""

    beats: list[float] = attrs.Factory(list)

    async def _send_beat(self) -> None:
        self.beats.append(trio.current_time())


def _worker() -> _BeatLog:
    return _BeatLog(agent=PhoneAgent(), redis_url="redis://127.0.0.1:1/0", capacity=2)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_beats_come_every_second_and_soon_after_a_change(
    autojump_clock: trio.testing.MockClock,
) -> None:
    worker = _worker()
    beats = worker.beats
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker._beats)
        await trio.sleep(3.05)
        # Each beat, then the gap, then up to a second of waiting for a change.
        assert beats == pytest.approx([BEAT_EVERY_S, 2 * BEAT_EVERY_S + BEAT_GAP_S])
        # A call comes: a beat goes out at once, not at the next second.
        worker._wake()
        await trio.testing.wait_all_tasks_blocked()
        assert beats[-1] == pytest.approx(3.05)
        # A burst of changes within the gap is one more beat, not one each.
        for _ in range(5):
            worker._wake()
            await trio.sleep(BEAT_GAP_S / 10)
        await trio.sleep(BEAT_GAP_S)
        assert len(beats) == 4
        assert beats[3] == pytest.approx(3.05 + BEAT_GAP_S)
        # Then quiet: back to one a second.
        await trio.sleep(BEAT_EVERY_S * 2 + BEAT_GAP_S * 3)
        assert len(beats) == 6
        nursery.cancel_scope.cancel()


async def test_a_failed_step_is_logged_and_tried_again_next_period(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    worker = _worker()
    ran: list[float] = []

    async def _renew() -> None:
        ran.append(trio.current_time())
        if len(ran) == 2:
            raise coredis.exceptions.ConnectionError("Redis went away")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker._every, 0.75, _renew)
        await trio.sleep(3.1)
        nursery.cancel_scope.cancel()
    assert ran == pytest.approx([0.75, 1.5, 2.25, 3.0])
    assert "renew failed: Redis went away" in caplog.text
