"""Child processes that run sync task functions, so a timeout or a cancel really stops
them: a thread cannot be killed, a process can (ADR 0007).

Each child serves one task at a time over a socket. Children are forked by the worker's
fork server (``fork_server``), about a millisecond each, when no idle one is free. A child
that must be stopped is SIGKILLed and replaced lazily on the next sync task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

import msgspec

from taskflow.tasks import TaskRun, get_task
from taskflow.tasks.context import LogLevel, Note, enter_task, leave_task
from taskflow.worker.fork_server import ForkServer, ForkServerGone

_encoder = msgspec.json.Encoder()


class _Request(msgspec.Struct, array_like=True):
    task_name: str
    task_id: str
    attempt: int
    args: msgspec.Raw
    kwargs: msgspec.Raw


class ChildNote(msgspec.Struct, array_like=True, tag="note"):
    """A log line or progress step the task reported mid-run (see tasks/context.py)."""

    kind: Literal["log", "progress"]
    level: LogLevel
    message: str
    percent: float
    metadata: msgspec.Raw


class ChildOutcome(msgspec.Struct, array_like=True, tag="done"):
    ok: bool
    result: msgspec.Raw = msgspec.Raw(b"null")
    error_type: str = ""
    error: str = ""
    traceback: str = ""


def serve_calls(conn: Connection) -> None:
    """The child's loop: receive a call, run it, send back what happened. The task modules
    are already imported (by the fork server it was forked from)."""
    # Ctrl-C reaches the whole process group; the worker decides when a child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    decoder = msgspec.json.Decoder(_Request)
    while True:
        try:
            raw = conn.recv_bytes()
        except EOFError:
            return  # the parent went away
        request = decoder.decode(raw)

        def emit(note: Note) -> None:
            conn.send_bytes(
                _encoder.encode(
                    ChildNote(
                        note.kind, note.level, note.message, note.percent, msgspec.Raw(_encoder.encode(note.metadata))
                    )
                )
            )

        token = enter_task(TaskRun(request.task_id, request.attempt, emit))
        try:
            conn.send_bytes(_encoder.encode(_call(request)))
        finally:
            leave_task(token)


def _call(request: _Request) -> ChildOutcome:
    try:
        fn = get_task(request.task_name).fn
        args: list[Any] = msgspec.json.decode(request.args)
        kwargs: dict[str, Any] = msgspec.json.decode(request.kwargs)
        return ChildOutcome(ok=True, result=msgspec.Raw(_encoder.encode(fn(*args, **kwargs))))
    except Exception as e:  # noqa: BLE001 - task code may raise anything; it goes back to the parent
        return ChildOutcome(
            ok=False,
            error_type=type(e).__name__,
            error=str(e) or type(e).__name__,
            traceback="".join(traceback.format_exception(e)),
        )


_message_decoder = msgspec.json.Decoder(ChildNote | ChildOutcome)
# multiprocessing.connection's framing, which the child's Connection reads and writes.
_LENGTH = struct.Struct("!i")


@dataclass
class _Child:
    """A child as the worker talks to it: asyncio streams over its socket, read on the
    event loop (a reader registered once, not one per message, and no thread)."""

    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def send(self, payload: bytes) -> None:
        self.writer.write(_LENGTH.pack(len(payload)) + payload)

    async def receive(self) -> bytes:
        """The next message; EOFError once the child is gone."""
        try:
            (size,) = _LENGTH.unpack(await self.reader.readexactly(_LENGTH.size))
            return await self.reader.readexactly(size)
        except asyncio.IncompleteReadError as e:
            raise EOFError from e

    async def receive_outcome(self, run: TaskRun) -> ChildOutcome:
        """Relay the child's notes to the run until its outcome arrives."""
        while True:
            message = _message_decoder.decode(await self.receive())
            if isinstance(message, ChildOutcome):
                return message
            metadata = msgspec.json.decode(message.metadata)
            run.report(Note(message.kind, message.level, message.message, message.percent, metadata))

    def close(self) -> None:
        self.writer.close()


class ChildPool:
    """Up to ``size`` children, forked on demand and reused while they behave."""

    def __init__(self, size: int, modules: tuple[str, ...]) -> None:
        self._server = ForkServer(modules)
        self._idle: list[_Child] = []
        self._all: list[_Child] = []
        self._slots = asyncio.Semaphore(size)

    def start(self) -> None:
        """Start the fork server now, so the first sync task does not wait for its imports."""
        self._server.start()

    async def call(
        self,
        task_name: str,
        args: msgspec.Raw,
        kwargs: msgspec.Raw,
        timeout_s: float,
        run: TaskRun,
    ) -> ChildOutcome:
        """Run the task in a child; on timeout or cancellation the child is killed.

        Raises ``TimeoutError`` after ``timeout_s`` (the child is gone by then).
        """
        async with self._slots:
            child = self._idle.pop() if self._idle else await self._fork()
            try:
                child.send(_encoder.encode(_Request(task_name, run.task_id, run.attempt, args, kwargs)))
                # asyncio.timeout, not wait_for: no extra task per call.
                async with asyncio.timeout(timeout_s):
                    outcome = await child.receive_outcome(run)
            except TimeoutError:  # (a subclass of OSError, so it goes first)
                self._kill(child)
                raise
            except (EOFError, OSError):
                # The task took its process down (os._exit, a segfault, the OOM killer).
                self._kill(child)
                code = await self._server.exit_code(child.pid, timeout_s=2.0)
                return ChildOutcome(
                    ok=False,
                    error_type="TaskProcessDied",
                    error=f"the task's process exited with code {'unknown' if code is None else code}",
                )
            except BaseException:
                # Timeout, cancel, or a child that died: it cannot be trusted with more work.
                self._kill(child)
                raise
            self._idle.append(child)
            return outcome

    async def _fork(self) -> _Child:
        try:
            pid, sock = await self._server.fork()
        except ForkServerGone:
            # It died (killed by hand, the OOM killer) and took its children along: the
            # idle ones are gone too. Start over once.
            self._forget_all()
            pid, sock = await self._server.fork()
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        child = _Child(pid, reader, writer)
        self._all.append(child)
        return child

    def _kill(self, child: _Child) -> None:
        self._all.remove(child)
        if not self._server.has_exited(child.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        child.close()

    def _forget_all(self) -> None:
        for child in self._all:
            child.close()
        self._all.clear()
        self._idle.clear()

    def live_processes(self) -> int:
        """Children alive right now (idle or busy); the fork server is not counted."""
        return sum(1 for c in self._all if not self._server.has_exited(c.pid))

    def close(self) -> None:
        """Idle children get EOF and exit; the fork server is closed, which kills any
        child still running."""
        for child in self._idle:
            child.close()
        self._idle.clear()
        self._server.close()
