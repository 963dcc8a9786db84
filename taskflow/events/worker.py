"""Events of the worker aggregate (aggregate_id = worker_id)."""

from __future__ import annotations

from taskflow.events.base import Event


class WorkerStarted(Event, frozen=True, kw_only=True, tag="worker.started"):
    hostname: str
    pid: int
    capacity: int
    queues: tuple[str, ...]
    version: str


class WorkerStopped(Event, frozen=True, kw_only=True, tag="worker.stopped"):
    """A worker left cleanly after finishing (or handing back) its in-flight work."""

    reason: str
    processed: int
