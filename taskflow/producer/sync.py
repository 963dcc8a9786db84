"""The producer for sync code: ``add.submit_sync(2, 3).result()``. The async producer
runs on one private event loop in a daemon thread; each sync call waits for its
coroutine there, so sync callers share one connection pool and need no loop of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from taskflow.errors import TaskFlowError
from taskflow.events import AnyEvent
from taskflow.producer.handle import TaskHandle
from taskflow.streams.marker import MarkerState

T = TypeVar("T")
R = TypeVar("R")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


class SyncCallInLoop(TaskFlowError):
    """A blocking producer call from inside a running event loop would stall that loop:
    ``await`` the async form (``submit``, ``result``) there instead."""


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the producer's private loop and wait for its answer."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coroutine.close()
        raise SyncCallInLoop("a blocking producer call inside a running event loop: await the async form instead")
    return asyncio.run_coroutine_threadsafe(coroutine, _private_loop()).result()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="taskflow-producer", daemon=True).start()
            _loop = loop
        return _loop


class SyncTaskHandle(Generic[R]):
    """``TaskHandle`` with blocking methods."""

    def __init__(self, handle: TaskHandle[R]) -> None:
        self._handle = handle
        self.task_id = handle.task_id

    def __repr__(self) -> str:
        return f"SyncTaskHandle({self.task_id!r})"

    def status(self) -> MarkerState:
        return run_sync(self._handle.status())

    def result(self, timeout: float | None = None) -> R:
        return run_sync(self._handle.result(timeout))

    def outcome(self, timeout: float | None = None) -> AnyEvent:
        return run_sync(self._handle.outcome(timeout))

    def events(self) -> list[AnyEvent]:
        return run_sync(self._handle.events())

    def cancel(self, reason: str = "") -> MarkerState:
        return run_sync(self._handle.cancel(reason))
