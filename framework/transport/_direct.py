"""The streams both framings write on: every write whole, even when its writer is cancelled.

A WebSocket frame cut by a cancel would make every byte after it garbage to
the server, so a framing writes only on one of these and needs no cancel scope
of its own. On plain TCP (``ws://``: the local engine, or a proxy that ends
TLS) that is a :class:`DirectStream`, which also writes without a schedule
point while the kernel keeps up; over TLS, whose bytes the TLS stream makes,
a :class:`ShieldedStream`.
"""

from __future__ import annotations

import socket

import trio

YIELD_EVERY = 16
"""Writes the kernel took at once, at most, between two schedule points of one stream."""


class DirectStream(trio.abc.HalfCloseableStream):
    """A :class:`trio.SocketStream` written synchronously while the kernel keeps up.

    trio makes every socket write a schedule point: a pass of its run loop, and
    a poll of the kernel, per frame. For fifty audio chunks a second per
    session that is the largest cost of a voice client after the framing.
    Here a write first goes through a second descriptor on the same socket,
    without blocking: a frame the kernel takes whole returns at once, as
    asyncio writes. Only a frame it cannot take waits, on trio's socket.
    Every :data:`YIELD_EVERY`-th write still yields, so that a tight loop of
    writes cannot hold the run loop.

    A write is also whole with respect to a cancel: bytes handed to
    :meth:`send_all` are all written, or the stream is broken. What the kernel
    did not take is finished shielded, and the cancel reaches the caller at
    its next checkpoint. A framing therefore needs no cancel scope per frame;
    it only has to see a cancel before it makes the frame.

    The stream is not safe for two writers at once: both framings write under
    a lock of their own.
    """

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner = inner
        sock = inner.socket
        self._direct: socket.socket | None = socket.fromfd(sock.fileno(), sock.family, sock.type)
        self._direct.setblocking(False)
        self._unyielded = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        direct = self._direct
        if direct is None:
            raise trio.ClosedResourceError("the stream was closed")
        try:
            sent = direct.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as e:
            raise trio.BrokenResourceError(f"the connection broke: {e}") from e
        if sent < len(data):
            self._unyielded = 0
            with trio.CancelScope(shield=True):
                await self.inner.send_all(memoryview(data)[sent:])
            return
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    def close_direct(self) -> None:
        """Closes the second descriptor; the socket ends when trio's descriptor does too."""
        if self._direct is not None:
            self._direct.close()
            self._direct = None

    async def aclose(self) -> None:
        self.close_direct()
        await self.inner.aclose()


class ShieldedStream(trio.abc.Stream):
    """A TLS stream whose every write is shielded: bytes handed to it are all written."""

    def __init__(self, inner: trio.SSLStream[trio.SocketStream]) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with trio.CancelScope(shield=True):
            await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()
