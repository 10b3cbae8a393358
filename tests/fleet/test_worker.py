"""Worker processes take calls by their free slots, attach, heartbeat and drain.

Each test runs the engine, a real ``redis-server`` and ``cantata worker``
processes (see :mod:`tests.fleet.fleet`).
"""

from __future__ import annotations

import signal

import trio

from framework.fleet import JOB_GROUP, queue_depth

from .fleet import open_fleet


async def test_calls_spread_by_free_slots_and_a_full_worker_reads_no_more(redis_url: str) -> None:
    with trio.fail_after(90):
        async with open_fleet(redis_url) as fleet:
            first = await fleet.start_worker(capacity=2)
            second = await fleet.start_worker(capacity=2)
            calls = [await fleet.call() for _ in range(4)]
            ups = [await fleet.next_report("up") for _ in calls]
            assert sorted(u["call"] for u in ups) == sorted(calls)
            owners = [await fleet.owner(c) for c in calls]
            # Each worker holds as many as it has slots: two each.
            assert sorted(owners) == sorted([first.worker_id] * 2 + [second.worker_id] * 2)
            by_pid = {u["call"]: int(u["pid"]) for u in ups}
            assert {by_pid[c] for c in calls} == {first.pid, second.pid}
            for worker in (first, second):
                beat = await fleet.beat(worker)
                assert beat is not None and beat.capacity == 2

            # Both are full: a fifth job stays in the stream, read by nobody.
            fifth = await fleet.call()
            # What is checked is an absence: a worker that read it would have it within
            # milliseconds of the add (both are blocked in XREADGROUP, or not reading).
            await trio.sleep(1.5)
            pending, lag = await queue_depth(fleet.redis, fleet.keys)
            assert (pending, lag) == (0, 1)
            assert await fleet.owner(fifth) is None
            groups = await fleet.redis.xinfo_consumers(fleet.keys.jobs, JOB_GROUP)
            assert all(int(c["pending"]) == 0 for c in groups)

            # A call ends (the caller hangs up): its worker reads the fifth.
            ended = calls[0]
            await fleet.rest.hangup_call(ended)
            up = await fleet.next_report("up")
            assert up["call"] == fifth
            assert int(up["pid"]) == by_pid[ended]
            assert await fleet.owner(ended) is None  # its keys went with it
            assert await fleet.redis.exists([fleet.keys.lease(ended)]) == 0
            assert first.process.returncode is None and second.process.returncode is None


async def test_sigterm_drains_takes_nothing_new_and_hangs_up_after_the_grace(
    redis_url: str,
) -> None:
    with trio.fail_after(90):
        async with open_fleet(redis_url) as fleet:
            worker = await fleet.start_worker(capacity=4, grace_s=3, ops=True)
            held = await fleet.call()
            await fleet.next_report("up")
            assert worker.ops_url is not None
            beat = await fleet.beat_until(worker, lambda beat: beat.active == 1)
            assert beat.ops_url == worker.ops_url
            healthz = await fleet.http.get(worker.ops_url + "/healthz")
            assert healthz.status_code == 200
            metrics = (await fleet.http.get(worker.ops_url + "/metrics")).text
            assert 'cantata_active_sessions{role="worker"} 1.0' in metrics
            assert 'cantata_capacity{role="worker"} 4.0' in metrics
            assert 'cantata_jobs_taken_total{role="worker"} 1.0' in metrics

            worker.signal(signal.SIGTERM)
            await fleet.beat_until(worker, lambda beat: beat.draining)
            healthz = await fleet.http.get(worker.ops_url + "/healthz")
            assert (healthz.status_code, healthz.json()["reason"]) == (503, "draining")

            # Draining: a new job is left for others, though three slots are free.
            waiting = await fleet.call()
            await trio.sleep(1.5)  # an absence again: a reading worker would have it at once
            assert await queue_depth(fleet.redis, fleet.keys) == (0, 1)

            # The held call still talks during the grace period...
            await fleet.press(held, "4")
            said = await fleet.next_report("said", where=lambda r: r["call"] == held)
            assert said["text"] == "Hello! How can I help?"
            # ... and is hung up at its end; then the worker leaves the fleet and exits 0.
            assert await worker.process.wait() == 0
            assert fleet.engine.rest.calls[held].state == "ended"
            assert await fleet.owner(held) is None
            assert await fleet.redis.exists([fleet.keys.worker(worker.worker_id)]) == 0
            assert any("hung up at the end of the drain" in line for line in worker.log)

            # Another worker takes the waiting call.
            other = await fleet.start_worker(capacity=1)
            up = await fleet.next_report("up")
            assert (up["call"], await fleet.owner(waiting)) == (waiting, other.worker_id)


async def test_a_second_signal_ends_at_once_and_the_calls_move(redis_url: str) -> None:
    with trio.fail_after(90):
        async with open_fleet(redis_url) as fleet:
            first = await fleet.start_worker(capacity=1, grace_s=60)
            call = await fleet.call()
            await fleet.next_report("up")
            second = await fleet.start_worker(capacity=1)
            first.signal(signal.SIGTERM)
            await fleet.beat_until(first, lambda beat: beat.draining)
            first.signal(signal.SIGINT)
            with trio.fail_after(10):  # not the 60 s grace
                await first.process.wait()
            # Its lease was let go on the way out: the other worker resumes the call.
            up = await fleet.next_report("up", where=lambda r: r["call"] == call)
            assert int(up["pid"]) == second.pid
            assert fleet.engine.rest.calls[call].state == "accepted"  # not hung up
