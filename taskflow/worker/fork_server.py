"""The fork server that makes the worker's sync-task children (ADR 0018).

Starting a fresh interpreter per child cost ~80 ms of CPU (imports, mostly), so
``--concurrency 100`` spent seconds starting children. Instead the worker starts one
small, single-threaded process at start-up that imports the task modules once and
forks a child on request, in about a millisecond; children share its imported modules
(copy-on-write).

Lifetimes: the fork server dies with the worker (parent-death signal, and EOF on its
control socket, on which it SIGKILLs every child it made), and each child dies with the
fork server. So a SIGKILLed worker leaves no child running a task that another worker
may take over.

Control socket records (both ways ``!cii``: kind, pid, code): the worker sends ``F`` with
one end of a fresh socket pair attached (SCM_RIGHTS); the server answers ``P pid`` for
each fork, in order, and ``X pid code`` when a child exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

from taskflow.parent_death import die_with_parent
from taskflow.worker.errors import WorkerError

_RECORD = struct.Struct("!cii")
FORKED, EXITED, FORK = b"P", b"X", b"F"


class ForkServerGone(WorkerError):
    """The fork server exited: no child could be made (a new server is started on the
    next request)."""


# --- the server's side (its own process) ---


def serve(ctrl_fd: int, worker_pid: int, modules: tuple[str, ...]) -> None:
    """Import the task modules once, then fork a child per request until the worker goes."""
    from taskflow.tasks import load_task_modules
    from taskflow.worker.child_pool import serve_calls

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    die_with_parent(signal.SIGKILL, worker_pid)
    load_task_modules(modules)
    # What start-up built stays put: forked children then share those pages instead of
    # copying each one the collector touches.
    gc.collect()
    gc.freeze()
    ctrl = socket.socket(fileno=ctrl_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    server_pid = os.getpid()
    while True:
        readable, _, _ = select.select([ctrl.fileno(), wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        _reap(ctrl, children)
        if ctrl.fileno() not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(ctrl, 1, 1)
        if not message:
            break  # the worker is gone (or closed us): nothing of ours may run on
        pid = os.fork()
        if pid == 0:
            _become_child(ctrl, (wake_r, wake_w), fds[0], server_pid, serve_calls)
        os.close(fds[0])
        children.add(pid)
        ctrl.sendall(_RECORD.pack(FORKED, pid, 0))
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os._exit(0)


def _reap(ctrl: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        with contextlib.suppress(OSError):
            ctrl.sendall(_RECORD.pack(EXITED, pid, os.waitstatus_to_exitcode(status)))


def _become_child(
    ctrl: socket.socket,
    wake: tuple[int, int],
    fd: int,
    server_pid: int,
    serve_calls: Callable[[Connection], None],
) -> None:
    code = 0
    try:
        ctrl.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for end in wake:
            os.close(end)
        die_with_parent(signal.SIGKILL, server_pid)
        random.seed()  # not the server's sequence, shared by every sibling
        serve_calls(Connection(fd))
    except BaseException:  # noqa: BLE001 - a child must never return into the server's loop
        traceback.print_exc()
        code = 1
    os._exit(code)


# --- the worker's side ---


class ForkServer:
    """The worker's handle on its fork server: asks for children, learns how they exit."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        self._modules = modules
        self._process: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None
        self._buffer = b""
        self._forks: collections.deque[asyncio.Future[int]] = collections.deque()
        self._exit_codes: dict[int, int] = {}
        self._exit_waiters: dict[int, asyncio.Future[int]] = {}

    def start(self) -> None:
        """Start the server. Call it from the event loop's thread: the parent-death signal
        follows the thread that started the process."""
        ctrl, server_end = socket.socketpair()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskflow.worker.child_process",
                str(server_end.fileno()),
                str(os.getpid()),
                *self._modules,
            ],
            pass_fds=(server_end.fileno(),),
        )
        server_end.close()
        ctrl.setblocking(False)
        self._ctrl = ctrl
        self._buffer = b""
        asyncio.get_running_loop().add_reader(ctrl.fileno(), self._on_readable)

    async def fork(self) -> tuple[int, socket.socket]:
        """A new child, ready for calls: its pid and our end of its socket."""
        if self._ctrl is None:
            self.start()
        assert self._ctrl is not None
        parent_end, child_end = socket.socketpair()
        forked: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._forks.append(forked)
        try:
            socket.send_fds(self._ctrl, [FORK], [child_end.fileno()])
        except OSError as e:
            self._forks.remove(forked)
            parent_end.close()
            self._gone()
            raise ForkServerGone(str(e)) from e
        finally:
            child_end.close()
        try:
            pid = await forked
        except BaseException:
            parent_end.close()
            raise
        return pid, parent_end

    async def exit_code(self, pid: int, timeout_s: float) -> int | None:
        """How the child ended, once the server reaped it (None if not within ``timeout_s``)."""
        if pid in self._exit_codes:
            return self._exit_codes[pid]
        waiter = self._exit_waiters.setdefault(pid, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except TimeoutError:
            return None

    def has_exited(self, pid: int) -> bool:
        return pid in self._exit_codes

    def _on_readable(self) -> None:
        assert self._ctrl is not None
        try:
            data = self._ctrl.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone()
            return
        self._buffer += data
        while len(self._buffer) >= _RECORD.size:
            kind, pid, code = _RECORD.unpack_from(self._buffer)
            self._buffer = self._buffer[_RECORD.size :]
            if kind == FORKED:
                forked = self._forks.popleft()
                if not forked.done():
                    forked.set_result(pid)
            elif kind == EXITED:
                self._exit_codes[pid] = code
                waiter = self._exit_waiters.pop(pid, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(code)

    def _gone(self) -> None:
        """The server exited (or its socket broke): fail what waits on it; the next fork
        starts a new one. Its children died with it."""
        if self._ctrl is not None:
            asyncio.get_running_loop().remove_reader(self._ctrl.fileno())
            self._ctrl.close()
            self._ctrl = None
        while self._forks:
            forked = self._forks.popleft()
            if not forked.done():
                forked.set_exception(ForkServerGone("the fork server exited"))
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)

    def close(self) -> None:
        """EOF to the server: it SIGKILLs any child still running and exits."""
        if self._ctrl is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                asyncio.get_running_loop().remove_reader(self._ctrl.fileno())
            self._ctrl.close()
            self._ctrl = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None
