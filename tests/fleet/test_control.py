"""Orders from outside reach the worker that owns a call, through its control stream."""

from __future__ import annotations

import pytest
import trio

from framework.fleet import CallNotOwned, ControlMessage, send_control

from .fleet import PREFIX, open_fleet


async def test_an_approval_answered_through_the_control_stream(redis_url: str) -> None:
    with trio.fail_after(60):
        async with open_fleet(redis_url) as fleet:
            worker = await fleet.start_worker(capacity=2)
            call = await fleet.call()
            await fleet.next_report("up")
            await fleet.press(call, "3")
            asked = await fleet.next_report("approval")
            waiting = asked["tool_call"]

            # Junk on the stream and an order for a call that waits for nothing are
            # logged and skipped; the worker and the call go on.
            await fleet.redis.xadd(fleet.keys.control(call), {"json": '{"kind": "launch"}'})
            await fleet.redis.xadd(fleet.keys.control(call), {"nothing": "here"})
            await send_control(
                fleet.redis, call, ControlMessage(kind="approve", target="call_nope"), prefix=PREFIX
            )
            # A web app approves the payment; the tool runs and the model says so.
            await send_control(
                fleet.redis, call, ControlMessage(kind="approve", target=waiting), prefix=PREFIX
            )
            finished = await fleet.next_report("tool_finished")
            assert (finished["name"], finished["output"]) == ("pay", "paid 12 to Bob")
            said = await fleet.next_report("said", where=lambda r: r["text"].startswith("Pay"))
            assert said["text"] == "Payment: paid 12 to Bob."
            log = "\n".join(worker.log)
            assert "skipped a malformed control entry: not a ControlMessage" in log
            assert "skipped a malformed control entry: the entry has no json field" in log
            assert "the approve order failed" in log and "call_nope" in log
            # Handled orders are deleted: a worker taking the call over would not redo them.
            assert await fleet.redis.xlen(fleet.keys.control(call)) == 0

            # A supervisor has the agent say something, then hangs up.
            await send_control(
                fleet.redis, call, ControlMessage(kind="say", text="Please hold."), prefix=PREFIX
            )
            held = await fleet.next_report("said", where=lambda r: r["call"] == call)
            assert held["text"] == "Please hold."
            await send_control(fleet.redis, call, ControlMessage(kind="hangup"), prefix=PREFIX)
            await fleet.beat_until(worker, lambda beat: beat.active == 0)
            assert fleet.engine.rest.calls[call].state == "ended", worker.log
            assert await fleet.owner(call) is None

            # The call is gone: an order for it is an error, not silence.
            with pytest.raises(CallNotOwned, match="no worker holds call"):
                await send_control(fleet.redis, call, ControlMessage(kind="hangup"), prefix=PREFIX)
            assert worker.process.returncode is None


async def test_a_denial_reaches_the_model_with_its_reason(redis_url: str) -> None:
    with trio.fail_after(60):
        async with open_fleet(redis_url) as fleet:
            await fleet.start_worker(capacity=1)
            call = await fleet.call()
            await fleet.next_report("up")
            await fleet.press(call, "3")
            asked = await fleet.next_report("approval")
            await send_control(
                fleet.redis,
                call,
                ControlMessage(kind="deny", target=asked["tool_call"], text="over the limit"),
                prefix=PREFIX,
            )
            finished = await fleet.next_report("tool_finished")
            assert finished["name"] == "pay"
            assert "over the limit" in finished["output"]
