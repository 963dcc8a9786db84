"""The vocabulary of TaskFlow: every event type, the union over them and their codec.

This package imports nothing else from TaskFlow, so it can be read and tested alone.
"""

from taskflow.events.base import Envelope, Event
from taskflow.events.codec import (
    CURRENT_VERSION,
    EVENT_TYPES,
    AnyEvent,
    EventDecodeError,
    decode,
    decode_stored,
    encode,
    tag_of,
)
from taskflow.events.operator import OperatorActed
from taskflow.events.task import (
    EMPTY_ARGS,
    EMPTY_KWARGS,
    PRIORITIES,
    DispatchRejected,
    Priority,
    ScheduleCreated,
    ScheduleDeleted,
    TaskCancelled,
    TaskCancelRequested,
    TaskDeadLettered,
    TaskFailed,
    TaskLogged,
    TaskProgressed,
    TaskQueued,
    TaskReclaimed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TaskTimedOut,
)
from taskflow.events.worker import WorkerDied, WorkerPaused, WorkerResumed, WorkerStarted, WorkerStopped

__all__ = [
    "CURRENT_VERSION",
    "EMPTY_ARGS",
    "EMPTY_KWARGS",
    "EVENT_TYPES",
    "PRIORITIES",
    "AnyEvent",
    "DispatchRejected",
    "Envelope",
    "Event",
    "EventDecodeError",
    "OperatorActed",
    "Priority",
    "ScheduleCreated",
    "ScheduleDeleted",
    "TaskCancelRequested",
    "TaskCancelled",
    "TaskDeadLettered",
    "TaskFailed",
    "TaskLogged",
    "TaskProgressed",
    "TaskQueued",
    "TaskReclaimed",
    "TaskStarted",
    "TaskSubmitted",
    "TaskSucceeded",
    "TaskTimedOut",
    "WorkerDied",
    "WorkerPaused",
    "WorkerResumed",
    "WorkerStarted",
    "WorkerStopped",
    "decode",
    "decode_stored",
    "encode",
    "tag_of",
]
