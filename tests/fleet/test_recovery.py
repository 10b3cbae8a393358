"""A dead worker's calls: resumed on another from their checkpoints, and its jobs claimed.

A worker is SIGKILLed while a tool of its call is still running; another
worker must take the call over within 5 s (the fleet's target), with the
conversation replayed at the engine and the tool call answered exactly once.
"""

from __future__ import annotations

import signal

import trio

from framework.fleet import JOB_GROUP
from framework.protocol import (
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemUserMessage,
)
from framework.runtime import Checkpoint

from .fleet import Fleet, open_fleet

RESUMED_WITHIN_S = 5.0
"""The fleet's target for a dead worker's calls."""


async def _checkpoint_lists(fleet: Fleet, call_id: str, tool_call: str) -> Checkpoint:
    """The call's checkpoint, once it lists ``tool_call`` as open.

    The checkpoint is written right after the tool starts, by another process;
    Redis has no blocking read of a string, so it is read again until it says so.
    """
    while True:
        raw = await fleet.redis.get(fleet.keys.checkpoint(call_id))
        if raw:
            checkpoint = Checkpoint.from_json(raw)
            if any(c.call_id == tool_call for c in checkpoint.calls):
                return checkpoint
        await trio.sleep(0.02)


async def test_a_killed_workers_call_resumes_on_another_with_one_output_per_tool_call(
    redis_url: str,
) -> None:
    with trio.fail_after(90):
        async with open_fleet(redis_url) as fleet:
            doomed = await fleet.start_worker(capacity=2)
            call = await fleet.call()
            await fleet.next_report("up")
            survivor = await fleet.start_worker(capacity=2)

            # A whole turn with a tool, then a tool that is still running at the kill.
            await fleet.press(call, "1")
            said = await fleet.next_report("said", where=lambda r: "Paris" in r["text"])
            assert said["text"] == "In Paris it is sunny."
            await fleet.press(call, "2")
            started = await fleet.next_report(
                "tool_started", where=lambda r: r["name"] == "look_up_order"
            )
            assert int(started["pid"]) == doomed.pid
            in_flight = started["tool_call"]
            await _checkpoint_lists(fleet, call, in_flight)

            killed_at = trio.current_time()
            doomed.signal(signal.SIGKILL)
            up = await fleet.next_report("up", where=lambda r: r["call"] == call)
            resumed_after = trio.current_time() - killed_at
            print(f"the call resumed {resumed_after:.2f} s after the kill")
            assert int(up["pid"]) == survivor.pid
            assert resumed_after < RESUMED_WITHIN_S, f"resumed after {resumed_after:.1f} s"
            assert await fleet.owner(call) == survivor.worker_id

            # The call in flight got its one output (it moved), and the model went on.
            after = await fleet.next_report("said", where=lambda r: "order" in r["text"])
            assert after["text"].startswith("About your order:")
            assert "moved" in after["text"] or "may or may not" in after["text"]

            # At the engine: the history replayed in order, one output per call.
            items = fleet.engine_session(call).conversation.items()
            users = [
                i.content[0].text
                for i in items
                if isinstance(i, RealtimeConversationItemUserMessage)
            ]
            assert users[:2] == ["What is the weather in Paris", "Look up my order"]
            assistant = [
                i.content[0].text
                for i in items
                if isinstance(i, RealtimeConversationItemAssistantMessage) and i.content
            ]
            assert "In Paris it is sunny." in assistant
            calls = [i for i in items if isinstance(i, RealtimeConversationItemFunctionCall)]
            outputs = [
                i for i in items if isinstance(i, RealtimeConversationItemFunctionCallOutput)
            ]
            assert [c.name for c in calls] == ["get_weather", "look_up_order"]
            assert sorted(o.call_id for o in outputs) == sorted(c.call_id for c in calls)
            assert in_flight in {c.call_id for c in calls}

            # The call goes on with the survivor.
            await fleet.press(call, "4")
            hello = await fleet.next_report("said", where=lambda r: r["text"].startswith("Hello"))
            assert int(hello["pid"]) == survivor.pid


async def test_a_job_read_and_never_acknowledged_is_claimed_by_a_live_worker(
    redis_url: str,
) -> None:
    with trio.fail_after(60):
        async with open_fleet(redis_url) as fleet:
            call = await fleet.call(job=False)
            # A worker read the job and died before attaching: the job stays pending.
            await fleet.redis.xgroup_create(fleet.keys.jobs, JOB_GROUP, "0", mkstream=True)
            await fleet.add_job(call)
            read = await fleet.redis.xreadgroup(
                JOB_GROUP, "ghost", {fleet.keys.jobs: ">"}, count=1, block=1000
            )
            assert read is not None
            assert await fleet.redis.hget(fleet.keys.calls, call) is None
            worker = await fleet.start_worker(capacity=1)
            up = await fleet.next_report("up")
            assert up["call"] == call
            assert await fleet.owner(call) == worker.worker_id
            pending = await fleet.redis.xpending(fleet.keys.jobs, JOB_GROUP)
            assert pending.pending == 0  # taken over, then acknowledged


async def test_a_renewal_that_finds_another_owner_stops_the_call_here_and_touches_nothing(
    redis_url: str,
) -> None:
    with trio.fail_after(60):
        async with open_fleet(redis_url) as fleet:
            worker = await fleet.start_worker(capacity=1)
            call = await fleet.call()
            await fleet.next_report("up")
            await fleet.beat_until(worker, lambda beat: beat.active == 1)
            # Split brain: another worker has the lease now (say it took over while this
            # one was cut off from Redis). This one must stop talking, and hang up nothing.
            await fleet.redis.set(fleet.keys.lease(call), "usurper")
            await fleet.redis.hset(fleet.keys.calls, {call: "usurper"})
            await fleet.beat_until(worker, lambda beat: beat.active == 0)
            assert fleet.engine.rest.calls[call].state == "accepted"
            assert fleet.engine.rest.calls[call].attachment is None
            assert await fleet.redis.get(fleet.keys.lease(call)) == "usurper"
            assert await fleet.owner(call) == "usurper"
            assert await fleet.redis.exists([fleet.keys.job(call)]) == 1  # the usurper's now
            assert any("another worker owns it now" in line for line in worker.log)
