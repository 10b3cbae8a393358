"""The plain TCP stream both framings write on: whole writes, clear errors, closing."""

from __future__ import annotations

import pytest
import trio

from framework.transport._direct import YIELD_EVERY, DirectStream


async def _pair() -> tuple[DirectStream, trio.SocketStream]:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    near = await trio.open_tcp_stream("127.0.0.1", port)  # the backlog takes it
    far = await listener.accept()
    await listener.aclose()
    return DirectStream(near), far


async def test_a_write_the_peer_cannot_take_yet_arrives_whole_after_a_cancel() -> None:
    # The peer reads nothing for 0.3 s; the writer's deadline passes at 0.05 s,
    # while the rest of its write waits on the full socket.
    got = bytearray()

    async def read_late(far: trio.SocketStream) -> None:
        await trio.sleep(0.3)
        while not got.endswith(b"end"):
            got.extend(await far.receive_some(1 << 20))

    with trio.fail_after(10):
        near, far = await _pair()
        data = bytes(range(256)) * 40_000  # 10 MB: more than both socket buffers hold
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_late, far)
            began = trio.current_time()
            with trio.move_on_after(0.05):
                await near.send_all(data)
            assert trio.current_time() - began >= 0.25  # it waited for the reader
            await near.send_all(b"end")
        assert bytes(got) == data + b"end"
        await near.aclose()
        await far.aclose()


async def test_writes_the_kernel_takes_yield_every_sixteenth() -> None:
    with trio.fail_after(10):
        near, far = await _pair()
        task = trio.lowlevel.current_task()
        steps = 0

        class Steps(trio.abc.Instrument):
            def before_task_step(self, stepped: trio.lowlevel.Task) -> None:
                nonlocal steps
                steps += stepped is task

        counter = Steps()
        trio.lowlevel.add_instrument(counter)
        try:
            for _ in range(4 * YIELD_EVERY):
                await near.send_all(b"x" * 100)
        finally:
            trio.lowlevel.remove_instrument(counter)
        assert steps == 4
        await near.aclose()
        await far.aclose()


async def test_a_broken_connection_is_a_stream_error_not_an_os_error() -> None:
    with trio.fail_after(10):
        near, far = await _pair()
        # The peer resets the connection: the next writes fail with a stream error.
        far.setsockopt(
            trio.socket.SOL_SOCKET, trio.socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        await far.aclose()
        with pytest.raises(trio.BrokenResourceError):
            for _ in range(100):
                await near.send_all(b"x" * 1000)
                await trio.sleep(0.01)
        await near.aclose()


async def test_a_closed_stream_refuses_writes_and_its_peer_sees_the_end() -> None:
    with trio.fail_after(10):
        near, far = await _pair()
        await near.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await near.send_all(b"late")
        # Both descriptors are closed: the peer reads the end at once.
        assert await far.receive_some(100) == b""
        await far.aclose()
