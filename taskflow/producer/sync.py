"""The producer for sync code: ``add.submit_sync(2, 3).result()``; each call blocks on
``taskflow.sync_bridge``'s private loop."""

from __future__ import annotations

from typing import Generic, TypeVar

from taskflow.events import AnyEvent
from taskflow.producer.handle import TaskHandle
from taskflow.streams.marker import MarkerState
from taskflow.sync_bridge import run_sync

R = TypeVar("R")


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
