"""A real ``redis-server`` on loopback for tests of the fleet.

The fleet's control plane is Redis Streams, and its tests run against the real
server rather than a fake: consumer groups, ``XAUTOCLAIM`` and key expiry are
exactly the parts a fake would get subtly wrong. :func:`redis_server` starts
one from the system package on a free loopback port, with persistence off,
and stops it on exit.
"""

from __future__ import annotations

import collections
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CantataError

_READY = "Ready to accept connections"
_START_S = 10.0
_ATTEMPTS = 3  # a port picked free can be taken before the server binds it
_LOG_LINES = 200


class RedisUnavailable(CantataError):
    """``redis-server`` is not installed, or would not start."""


@contextmanager
def redis_server() -> Iterator[str]:
    """Runs ``redis-server`` on a free loopback port for the ``with`` block.

    Yields:
        The server's URL, ``redis://127.0.0.1:PORT/0``, for clients in this
        process and in the worker processes a test starts.

    Raises:
        RedisUnavailable: when the program is missing or does not start.
    """
    program = shutil.which("redis-server")
    if program is None:
        raise RedisUnavailable(
            "redis-server is not installed: install the system package redis-server"
        )
    with tempfile.TemporaryDirectory(prefix="cantata-redis-") as directory:
        last = ""
        for _ in range(_ATTEMPTS):
            port = _free_port()
            process, reader, log = _start(program, port, directory)
            try:
                if log is None:
                    yield f"redis://127.0.0.1:{port}/0"
                    return
                last = log
            finally:
                _stop(process, reader)
        raise RedisUnavailable(f"redis-server did not start: {last}")


def _start(
    program: str, port: int, directory: str
) -> tuple[subprocess.Popen[str], threading.Thread, str | None]:
    """Starts the server and waits until it is ready.

    Returns:
        The process, the thread reading its output, and ``None`` when it is
        ready, or else its last log line.
    """
    process = subprocess.Popen(
        [
            program,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", directory,
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
    ready, settled = threading.Event(), threading.Event()

    def drain() -> None:
        # The pipe is read to its end, so the server never blocks on a full one.
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if _READY in line:
                ready.set()
                settled.set()
        settled.set()  # the server ended: whoever waits looks at why

    reader = threading.Thread(target=drain, name=f"redis-server:{port}", daemon=True)
    reader.start()
    if settled.wait(_START_S) and ready.is_set():
        return process, reader, None
    return process, reader, lines[-1] if lines else "no output"


def _stop(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    process.terminate()
    try:
        process.wait(timeout=_START_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    reader.join(_START_S)  # the pipe reached its end with the process
    assert process.stdout is not None
    process.stdout.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
