"""Replay: the event history (PostgreSQL archive + Redis tail, one order) for analysts,
notebooks and live feeds, and the state of tasks and workers at any moment."""

from taskflow.replay.api import History, UnknownEventType, event_filter
from taskflow.replay.as_of import Snapshot, TaskState, WorkerState
from taskflow.replay.history import EventFilter
from taskflow.replay.position import Position

__all__ = [
    "EventFilter",
    "History",
    "Position",
    "Snapshot",
    "TaskState",
    "UnknownEventType",
    "WorkerState",
    "event_filter",
]
