"""Sync tasks declared ``@task(isolation="thread")`` run in threads of the worker (ADR 0018).

No process boundary per run, so the cheapest way to run a sync function; the price is how
it stops. A timeout, a cancel or a lost lease raises ``TaskInterrupted`` inside the thread
(``PyThreadState_SetAsyncExc``, as dramatiq's time limits do): it takes effect at the
function's next Python bytecode, so code blocked in ``time.sleep`` or a C call runs on
until that returns. The run is recorded as ended at once; the thread is not waited for.

Threads are started as needed and reused when idle, never a fixed few: a thread still held
by code that cannot be interrupted yet must not make the next task wait for one while its
timeout counts.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from taskflow.tasks import TaskRun
from taskflow.tasks.context import Note, enter_task, leave_task
from taskflow.worker.child_pool import ChildOutcome

_encoder = msgspec.json.Encoder()
_args_decoder = msgspec.json.Decoder(list[Any])
_kwargs_decoder = msgspec.json.Decoder(dict[str, Any])
# Far above any --concurrency: the executor only starts a thread when none is idle.
_MAX_THREADS = 10_000


class TaskInterrupted(BaseException):
    """Raised inside a task's thread to stop it. A BaseException, so the task's own
    ``except Exception`` does not swallow it."""


class _Call:
    """One run in one thread; ``interrupt`` reaches it only while it is still running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread_id: int | None = None
        self._running = False

    def begin(self) -> None:
        with self._lock:
            self._thread_id = threading.get_ident()
            self._running = True

    def end(self) -> None:
        with self._lock:
            self._running = False

    def interrupt(self) -> None:
        with self._lock:
            if self._running and self._thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread_id), ctypes.py_object(TaskInterrupted)
                )


class ThreadRunner:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="taskflow-task")

    async def call(
        self, fn: Callable[..., Any], args: msgspec.Raw, kwargs: msgspec.Raw, timeout_s: float, run: TaskRun
    ) -> ChildOutcome:
        """Run ``fn`` in a thread. Raises ``TimeoutError`` after ``timeout_s`` and passes a
        cancellation on, interrupting the thread in both cases."""
        loop = asyncio.get_running_loop()
        call = _Call()

        def report(note: Note) -> None:
            loop.call_soon_threadsafe(run.report, note)  # the recorder lives on the loop

        threaded = TaskRun(run.task_id, run.attempt, report)
        future = loop.run_in_executor(self._executor, _run, call, fn, args, kwargs, threaded)
        try:
            # asyncio.timeout, not wait_for: no extra task per call. Cancelling the future
            # cannot stop a running thread (that is what ``interrupt`` is for).
            async with asyncio.timeout(timeout_s):
                return await future
        except BaseException:
            call.interrupt()
            raise

    def close(self) -> None:
        """Do not wait for threads still held by code that cannot be interrupted."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _run(call: _Call, fn: Callable[..., Any], args: msgspec.Raw, kwargs: msgspec.Raw, run: TaskRun) -> ChildOutcome:
    call.begin()
    try:
        token = enter_task(run)
        try:
            value = fn(*_args_decoder.decode(args), **_kwargs_decoder.decode(kwargs))
            return ChildOutcome(ok=True, result=msgspec.Raw(_encoder.encode(value)))
        except TaskInterrupted:
            return ChildOutcome(ok=False, error_type="TaskInterrupted", error="stopped by the worker")
        except Exception as e:  # noqa: BLE001 - task code may raise anything; it is recorded
            return ChildOutcome(
                ok=False,
                error_type=type(e).__name__,
                error=str(e) or type(e).__name__,
                traceback="".join(traceback.format_exception(e)),
            )
        finally:
            leave_task(token)
    finally:
        call.end()
