"""The fleet's records round-trip, refuse what is not theirs, and the loop lag is measured."""

from __future__ import annotations

import time

import pytest
import trio

from framework.fleet import AttachJob, ControlMessage, FleetKeys, LoopLag, WorkerBeat, dump, load


def test_records_read_back_as_written() -> None:
    job = AttachJob(call_id="rtc_1", caller="+4712345678", event={"type": "realtime.call.incoming"})
    beat = WorkerBeat(worker_id="w1", capacity=4, active=1, loop_lag_ms=2.5)
    order = ControlMessage(kind="approve", target="call_9")
    assert load(AttachJob, dump(job)) == job
    assert load(WorkerBeat, dump(beat)) == beat
    assert load(ControlMessage, dump(order)) == order


def test_a_record_of_the_wrong_shape_is_refused_with_where() -> None:
    with pytest.raises(ValueError, match=r"not a ControlMessage.*kind"):
        load(ControlMessage, b'{"kind": "explode"}')


def test_free_slots_are_none_while_draining() -> None:
    assert WorkerBeat(worker_id="w", capacity=4, active=1).free == 3
    assert WorkerBeat(worker_id="w", capacity=4, active=1, draining=True).free == 0
    assert WorkerBeat(worker_id="w", capacity=2, active=3).free == 0


def test_keys_live_under_the_prefix() -> None:
    keys = FleetKeys("blue")
    assert {keys.jobs, keys.lease("rtc_1"), keys.control("rtc_1")} == {
        "blue:jobs",
        "blue:lease:rtc_1",
        "blue:control:rtc_1",
    }


def _hold_the_loop(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


async def test_loop_lag_sees_a_batch_that_blocks_the_loop() -> None:
    lag = LoopLag()
    lag.install()
    try:
        await trio.lowlevel.checkpoint()
        lag.take()
        _hold_the_loop(0.05)  # a task step that keeps the loop, as a long parse would
        await trio.sleep(0.001)
        assert lag.take() >= 0.05
        assert lag.take() == 0.0  # read, it starts over
    finally:
        lag.remove()
