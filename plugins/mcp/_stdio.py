"""The stdio transport: an MCP server as a child process, and how it ended.

The SDK's ``stdio_client`` hides the process, so a crash reads as
"Connection closed". This transport owns the process itself and keeps what
the model should hear instead: the exit code or signal, and the tail of the
server's stderr.

It is an async context manager yielding the SDK's stream pair. Four tasks
run in its nursery: the stdout reader (JSON-RPC lines into the read
stream), the stdin writer (the write stream into stdin), the stderr reader
(a bounded tail, logged line by line) and the waiter (the exit status).
When the process ends, stdout reaches EOF and the read stream closes, so
calls in flight fail at once instead of hanging.

Shutdown, shielded and with every wait bounded, follows the MCP lifecycle:
close stdin, wait, SIGTERM the process group, wait, SIGKILL it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Final

import anyio
import mcp_types
import trio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

_log = logging.getLogger("cantata.mcp")

FLUSH_TIMEOUT_S: Final = 0.5
"""Time for messages already accepted to reach stdin before it closes."""
STDIN_GRACE_S: Final = 1.0
"""Time for the server to exit on its own once its stdin closes (the spec's first step)."""
TERM_GRACE_S: Final = 1.0
"""Time between SIGTERM and SIGKILL."""
KILL_REAP_S: Final = 0.5
"""Time for the kernel to report a SIGKILLed process; only an unkillable one runs it out."""

MAX_LINE_BYTES: Final = 64 * 1024 * 1024
"""The longest JSON-RPC line read from a server (a large image or resource fits);
a longer one is dropped, so a server that never ends a line cannot fill memory."""

_STDERR_LINES: Final = 20
_STDERR_LINE_CHARS: Final = 300


class StdioProcess:
    """One run of a stdio MCP server: open it with :meth:`streams`.

    Attributes:
        command: The program and its arguments.
        returncode: The exit status once the process ended (negative: a signal).
        exited: Set when the process has ended, for whatever reason.
    """

    def __init__(
        self,
        command: str,
        args: tuple[str, ...],
        *,
        env: Mapping[str, str] | None,
        cwd: str | os.PathLike[str] | None,
    ) -> None:
        self.command = (command, *args)
        self._env = get_default_environment() | dict(env or {})
        self._cwd = cwd
        self.returncode: int | None = None
        self.exited = trio.Event()
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)

    def describe_exit(self) -> str:
        """How the process ended, as a phrase: "was killed by SIGKILL"."""
        code = self.returncode
        if code is None:
            how = "is still running"
        elif code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return how

    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines the server wrote to stderr, joined with " | "."""
        return " | ".join(list(self._stderr)[-lines:])

    @asynccontextmanager
    async def streams(
        self,
    ) -> AsyncIterator[
        tuple[
            MemoryObjectReceiveStream[SessionMessage | Exception],
            MemoryObjectSendStream[SessionMessage],
        ]
    ]:
        """Starts the process and yields ``(read_stream, write_stream)`` for the SDK.

        Raises:
            OSError: The program could not be started (``FileNotFoundError``, ...).
        """
        process = await trio.lowlevel.open_process(
            list(self.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
            cwd=self._cwd,
            # Its own process group, so the shutdown reaches the server's children too.
            start_new_session=sys.platform != "win32",
        )
        read_send, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
        writer_done = trio.Event()

        async def read_stdout() -> None:
            assert process.stdout is not None
            buffer = b""
            skipping = False  # the rest of a line too long to keep
            async with read_send:
                try:
                    while chunk := await process.stdout.receive_some():
                        *lines, buffer = (buffer + chunk).split(b"\n")
                        for line in lines:
                            if skipping:
                                skipping = False
                            elif line.strip():
                                await read_send.send(_parse(line))
                        if len(buffer) > MAX_LINE_BYTES:
                            buffer, skipping = b"", True
                            await read_send.send(
                                ValueError(f"a stdout line over {MAX_LINE_BYTES} bytes was dropped")
                            )
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass  # the session is gone
                except (trio.ClosedResourceError, trio.BrokenResourceError, OSError):
                    pass  # our shutdown closed the pipe

        async def write_stdin() -> None:
            assert process.stdin is not None
            try:
                async with write_receive:
                    async for message in write_receive:
                        data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                        await process.stdin.send_all(data.encode() + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                # The server stopped reading: end the session's reads too, so no
                # request waits for an answer that cannot come.
                await read_send.aclose()
            finally:
                writer_done.set()

        async def read_stderr() -> None:
            assert process.stderr is not None
            buffer = b""
            with suppress(trio.ClosedResourceError, trio.BrokenResourceError, OSError):
                while chunk := await process.stderr.receive_some():
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    for line in lines:
                        self._note_stderr(line)
                    # Only a line's start is kept (_note_stderr): the rest need not wait.
                    buffer = buffer[: 4 * _STDERR_LINE_CHARS]
            if buffer:
                self._note_stderr(buffer)

        async def wait() -> None:
            self.returncode = await process.wait()
            self.exited.set()

        async def shutdown() -> None:
            write_stream.close()
            with trio.move_on_after(FLUSH_TIMEOUT_S):
                await writer_done.wait()
            assert process.stdin is not None
            with suppress(trio.ClosedResourceError, trio.BrokenResourceError, OSError):
                await process.stdin.aclose()
            for grace, sig in ((STDIN_GRACE_S, signal.SIGTERM), (TERM_GRACE_S, signal.SIGKILL)):
                with trio.move_on_after(grace):
                    await self.exited.wait()
                if self.exited.is_set():
                    break
                _signal(process, sig)
            with trio.move_on_after(KILL_REAP_S):
                await self.exited.wait()
            if not self.exited.is_set():
                _log.warning(
                    "MCP server %s (pid %d) survived SIGKILL", self.command[0], process.pid
                )
            read_stream.close()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            nursery.start_soon(read_stderr)
            nursery.start_soon(read_stdout)
            nursery.start_soon(write_stdin)
            try:
                yield read_stream, write_stream
            finally:
                with trio.CancelScope(shield=True):
                    await shutdown()
                # A surviving grandchild can hold a pipe open: do not wait for EOF.
                nursery.cancel_scope.cancel()

    def _note_stderr(self, line: bytes) -> None:
        text = line.decode(errors="replace").rstrip()
        if text:
            self._stderr.append(text[:_STDERR_LINE_CHARS])
            _log.debug("%s stderr: %s", self.command[0], text)


def _parse(line: bytes) -> SessionMessage | Exception:
    """One stdout line as a message, or the parse error as a value for the session."""
    try:
        return SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as e:
        return e


def _signal(process: trio.Process, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":
            process.kill()
        else:
            os.killpg(process.pid, sig)
