"""Events of the worker aggregate (aggregate_id = worker_id)."""

from __future__ import annotations

from datetime import datetime

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


class WorkerDied(Event, frozen=True, kw_only=True, tag="worker.died"):
    """The coordinator heard nothing from the worker for ``silent_s``; its entries are
    handed to live workers at once."""

    silent_s: float
    last_heartbeat: datetime | None = None


class WorkerPaused(Event, frozen=True, kw_only=True, tag="worker.paused"):
    """An operator paused the worker: it finishes in-flight work and takes nothing new."""

    reason: str = ""


class WorkerResumed(Event, frozen=True, kw_only=True, tag="worker.resumed"):
    reason: str = ""
