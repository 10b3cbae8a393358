"""One engine port served by several processes (``cantata serve --workers N``).

One Python process holds a core at most. With ``workers`` above one, the
*primary* process listens as before and starts ``workers - 1`` *helpers*: the
same command run again, told by :data:`HELPER_FD` which Unix socket connects
it to the primary. The primary reads each connection's first request head
(:mod:`._network` does so anyway) and hands every ``workers``-th plain
Realtime session to each helper in turn: the socket itself goes over the Unix
socket (``SCM_RIGHTS``) with the head already read, and the helper serves it
as if it had accepted it.

What stays with the primary is what has state beyond one connection: the REST
endpoints (client secrets, calls, the operator interface), a WebSocket that
attaches to a call (``call_id``), and anything not ``/v1/realtime``. The calls
thus live in the primary, so an attach reaches the call's holder without
forwarding, and ``cantata calls``, ``ring`` and ``dtmf`` see all of them. A
WebSocket that presents a client secret (``ek_``) stays too, unless the engine
shares a Redis (``--redis``; see :mod:`._shared`): then every process reads the
secrets from it, and such a session moves like a plain one. The primary's
:attr:`Engine.sessions` lists its own sessions, not its helpers'.

TLS cannot be handed on (its session begins before the head can be read), so
``workers`` needs plain ``ws://``. Helpers end with the primary: when its end
of the Unix socket closes (it stopped, or died), a helper's server stops.

A process that serves an engine alone also tunes its garbage collector once
it listens (:func:`settle_collector`).
"""

from __future__ import annotations

import array
import gc
import itertools
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

_log = logging.getLogger("cantata.engine")

HELPER_FD = "CANTATA_ENGINE_HELPER_FD"
"""Set in a helper's environment: the descriptor of its Unix socket to the primary."""
HELPER_URL = "CANTATA_ENGINE_HELPER_URL"
"""Set in a helper's environment: the primary's WebSocket URL, which the helper reports."""
Handed = tuple[trio.SocketStream, bytes]
"""A connection the primary handed over, with its first request's head."""
_MAX_HANDED = 256 * 1024  # a head (at most 16 KiB) and the first read that came with it
_STOP_S = 5.0  # how long a helper has to end once its channel closed


def settle_collector() -> None:
    """Freezes what start-up made, so that collections no longer walk it.

    Modules, classes and the engine's tables are most of a fresh process's
    objects, and every full collection walked them all: a 55 ms pause under
    voice load, an outlier in every percentile of the sessions it stalled.
    """
    gc.collect()
    gc.freeze()


def _stays(head: bytes, *, secrets_shared: bool) -> bool:
    """Whether the request must be served by the primary (see the module docstring)."""
    request_line = head.split(b"\r\n", 1)[0]
    if not request_line.startswith(b"GET /v1/realtime"):
        return True
    # Conservative: a key or a query word anywhere keeps it, in whatever header.
    return b"call_id" in head or (not secrets_shared and b"ek_" in head)


class Helpers:
    """The primary's side: its channels to the helpers, and whose turn it is.

    ``secrets_shared``: every process reads the client secrets from a shared
    Redis, so a session that presents one moves like a plain one.
    """

    def __init__(
        self, channels: list[trio.socket.SocketType], *, secrets_shared: bool = False
    ) -> None:
        self._channels = channels
        self._secrets_shared = secrets_shared
        # The primary takes the first turn of each round, each helper one after.
        self._turns = itertools.cycle([None, *channels])

    async def hand_off(self, stream: trio.SocketStream, head: bytes) -> bool:
        """Passes a plain session's connection to the helper whose turn it is.

        Returns:
            False when the primary serves it (its turn, or state it holds).
        """
        if _stays(head, secrets_shared=self._secrets_shared):
            return False
        channel = next(self._turns)
        if channel is None:
            return False
        fds = array.array("i", [stream.socket.fileno()])
        try:
            await channel.sendmsg([head], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as error:
            _log.warning("a helper process is gone (%s); the primary serves the session", error)
            return False
        return True


@asynccontextmanager
async def start_helpers(
    count: int, url: str, *, secrets_shared: bool = False
) -> AsyncIterator[Helpers]:
    """Runs ``count`` helper processes for the block: this command again, each on a channel.

    Raises:
        OSError: a helper could not be started.
    """
    async with trio.open_nursery() as nursery:
        channels: list[trio.socket.SocketType] = []
        processes: list[trio.Process] = []
        try:
            for _ in range(count):
                mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                env = {**os.environ, HELPER_FD: str(theirs.fileno()), HELPER_URL: url}
                with theirs:
                    process = await trio.lowlevel.open_process(
                        [sys.executable, *sys.orig_argv[1:]],
                        env=env,
                        pass_fds=(theirs.fileno(),),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,  # its banner would repeat the primary's
                    )
                channels.append(trio.socket.from_stdlib_socket(mine))
                processes.append(process)
            yield Helpers(channels, secrets_shared=secrets_shared)
        finally:
            with trio.CancelScope(shield=True):
                for channel in channels:
                    channel.close()  # the helpers' cue to stop
                with trio.move_on_after(_STOP_S):
                    for process in processes:
                        await process.wait()
                for process in processes:
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
            nursery.cancel_scope.cancel()


async def receive_handed(
    fd: int, task_status: trio.TaskStatus[trio.MemoryReceiveChannel[Handed]]
) -> None:
    """In a helper: yields (once started) the connections the primary hands over, each
    with its first head; the channel ends when the primary closes its end."""
    channel = trio.socket.from_stdlib_socket(
        socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=fd)
    )
    send, receive = trio.open_memory_channel[Handed](0)
    task_status.started(receive)
    space = socket.CMSG_SPACE(array.array("i").itemsize)
    with channel:
        async with send:
            while True:
                head, ancillary, flags, _ = await channel.recvmsg(_MAX_HANDED, space)
                fds = array.array("i")
                for level, kind, data in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                if not fds:
                    return  # the primary's end closed: this server is done
                conns = [socket.socket(fileno=fd) for fd in fds]
                if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(conns) != 1:
                    for conn in conns:
                        conn.close()  # cannot happen from the primary; lose nothing else
                    continue
                await send.send((trio.SocketStream(trio.socket.from_stdlib_socket(conns[0])), head))
