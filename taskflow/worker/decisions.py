"""Pure decisions of the worker: which event records what happened to an entry.

Every function takes ``now`` and returns an event; the caller does the I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec

from taskflow.events import (
    DispatchRejected,
    Envelope,
    TaskCancelled,
    TaskDeadLettered,
    TaskFailed,
    TaskLogged,
    TaskProgressed,
    TaskReclaimed,
    TaskStarted,
    TaskSucceeded,
    TaskTimedOut,
    encode,
)
from taskflow.storable import escape_nul, escape_nul_json, json_nul_path
from taskflow.streams.dispatch import HeldDispatch
from taskflow.streams.fields import field_text
from taskflow.streams.keyspace import Keyspace
from taskflow.tasks.context import Note
from taskflow.worker.entry import DispatchEntry


def held_for_retry(entry: DispatchEntry, counted: bool = True) -> HeldDispatch:
    """The dispatch to hold until the retry is due: the same task, one more retry counted
    (none for a postponement: the task asked to wait, it did not fail)."""
    return HeldDispatch(
        task_id=entry.task.aggregate_id,
        event_id=entry.task.event_id,
        event=encode(entry.task).decode(),
        retry_count=entry.retry_count + (1 if counted else 0),
        priority=entry.task.priority,
    )


class Succeeded(msgspec.Struct, frozen=True):
    result: msgspec.Raw
    duration_ms: float


class Failed(msgspec.Struct, frozen=True):
    error_type: str
    error: str
    traceback: str
    duration_ms: float
    # Set when task code raised ``Postponed``: run again after this long, no retry counted.
    postpone_s: float | None = None


class TimedOut(msgspec.Struct, frozen=True):
    timeout_s: float
    duration_ms: float


RunResult = Succeeded | Failed | TimedOut


class Run(msgspec.Struct, frozen=True):
    """Run the reclaimed entry again."""


class DeadLetter(msgspec.Struct, frozen=True):
    reason: str


def decide_reclaimed(runs_begun: int, max_deliveries: int) -> Run | DeadLetter:
    """An entry whose runs began ``max_deliveries`` times without ever recording an
    outcome is poison: it kills or hangs its worker (invariant 5). Deliveries to a worker
    that died before starting the entry do not count against it."""
    if runs_begun >= max_deliveries:
        return DeadLetter(
            reason=f"poison: {runs_begun} runs began and none recorded an outcome (limit {max_deliveries})"
        )
    return Run()


class Retry(msgspec.Struct, frozen=True):
    at: datetime
    delay_s: float
    # False for a postponement (``tasks.Postponed``): max_retries is not used up.
    counted: bool = True


class GiveUp(msgspec.Struct, frozen=True):
    """No retries left: the failure is final (and the task goes to the dead-letter queue)."""


BACKOFF_JITTER = 0.1


def decide_retry(retry_count: int, max_retries: int, now: datetime, jitter: float) -> Retry | GiveUp:
    """Retry number ``retry_count + 1`` after 2^retry_count s (1, 2, 4, 8, 16 ...), spread by
    ``jitter`` (a fraction in [-1, 1] scaled to +-10 %) so failures do not retry in lockstep."""
    if retry_count >= max_retries:
        return GiveUp()
    delay_s = (2**retry_count) * (1 + BACKOFF_JITTER * max(-1.0, min(1.0, jitter)))
    return Retry(at=now + timedelta(seconds=delay_s), delay_s=delay_s)


def is_suspect(runs_begun: int) -> bool:
    """Outlived two owners mid-run: runs alone, so a crash it causes hits nothing else."""
    return runs_begun >= SUSPECT_FROM_RUNS


SUSPECT_FROM_RUNS = 2


def _envelope(entry: DispatchEntry, now: datetime, worker_id: str) -> Envelope:
    task = entry.task
    return {
        "aggregate_id": task.aggregate_id,
        "occurred_at": now,
        "correlation_id": task.correlation_id,
        "causation_id": task.event_id,
        "traceparent": task.traceparent,
        "actor": worker_id,
    }


def started(entry: DispatchEntry, worker_id: str, now: datetime) -> TaskStarted:
    return TaskStarted(
        **_envelope(entry, now, worker_id),
        worker_id=worker_id,
        attempt=entry.runs_begun + 1,
        dispatch_id=entry.entry_id,
    )


def finished(
    entry: DispatchEntry, worker_id: str, result: RunResult, now: datetime, retry: Retry | None = None
) -> TaskSucceeded | TaskFailed | TaskTimedOut:
    envelope = _envelope(entry, now, worker_id)
    if isinstance(result, TimedOut):
        return TaskTimedOut(
            **envelope,
            worker_id=worker_id,
            attempt=entry.runs_begun + 1,
            timeout_seconds=result.timeout_s,
            duration_ms=result.duration_ms,
        )
    if isinstance(result, Succeeded):
        return TaskSucceeded(
            **envelope,
            worker_id=worker_id,
            attempt=entry.runs_begun + 1,
            result=result.result,
            duration_ms=result.duration_ms,
        )
    return TaskFailed(
        **envelope,
        worker_id=worker_id,
        attempt=entry.runs_begun + 1,
        error_type=result.error_type,
        error=result.error,
        traceback=result.traceback,
        duration_ms=result.duration_ms,
        retry_at=retry.at if retry is not None else None,
        retry_count=entry.retry_count + (1 if retry is not None and retry.counted else 0),
    )


class Outcome(msgspec.Struct, frozen=True):
    """What to append for a finished run, and how (owned_append's ``kind``)."""

    event: TaskSucceeded | TaskFailed | TaskTimedOut
    kind: Literal["finish", "retry"]
    # For a retry: the dispatch to hold, and when it is due (ms).
    held: tuple[HeldDispatch, int] | None


def decide_outcome(entry: DispatchEntry, worker_id: str, result: RunResult, now: datetime, jitter: float) -> Outcome:
    """A failure with retries left is recorded with its retry booked ("retry": the task is
    held until then); anything else ends the task ("finish"), a failure with no retry left
    going to the dead-letter queue. A timeout is final: the task's limit is its own."""
    retry = None
    if isinstance(result, Failed) and result.postpone_s is not None:
        retry = Retry(at=now + timedelta(seconds=result.postpone_s), delay_s=result.postpone_s, counted=False)
    elif isinstance(result, Failed):
        decision = decide_retry(entry.retry_count, entry.task.max_retries, now, jitter)
        retry = decision if isinstance(decision, Retry) else None
    event = finished(entry, worker_id, result, now, retry)
    if retry is None:
        return Outcome(event=event, kind="finish", held=None)
    held = held_for_retry(entry, counted=retry.counted)
    return Outcome(event=event, kind="retry", held=(held, int(retry.at.timestamp() * 1000)))


def unknown_task(task_name: str) -> Failed:
    """The run's result when no task of that name is loaded here: a failure like any other
    (retried if it may be: a worker that has the task may take the retry)."""
    return Failed(
        error_type="UnknownTaskError",
        error=f"no task named {task_name!r} is loaded on this worker",
        traceback="",
        duration_ms=0.0,
    )


def noted(entry: DispatchEntry, worker_id: str, note: Note, now: datetime) -> TaskLogged | TaskProgressed:
    """Diagnostics are kept whatever they hold: NULs are escaped (ADR 0014)."""
    envelope = _envelope(entry, now, worker_id)
    message = escape_nul(note.message)
    if note.kind == "progress":
        return TaskProgressed(**envelope, percent=note.percent, message=message, worker_id=worker_id)
    encoded = msgspec.json.encode(note.metadata)
    if json_nul_path(encoded, "metadata") is not None:
        encoded = msgspec.json.encode(escape_nul_json(note.metadata))
    metadata = msgspec.Raw(encoded)
    return TaskLogged(**envelope, level=note.level, message=message, worker_id=worker_id, metadata=metadata)


def storable(result: RunResult) -> RunResult:
    """The run's outcome as PostgreSQL can keep it (ADR 0014): a result holding a NUL is
    refused like an unencodable one, a failure of the run; an error's text is kept with
    its NULs escaped."""
    if isinstance(result, Succeeded):
        path = json_nul_path(bytes(result.result), "result")
        if path is None:
            return result
        return Failed(
            error_type="UnstorableResult",
            error=f"{path} holds a NUL character (\\u0000), which TaskFlow cannot store; return text without it",
            traceback="",
            duration_ms=result.duration_ms,
        )
    if isinstance(result, Failed):
        return Failed(
            error_type=escape_nul(result.error_type),
            error=escape_nul(result.error),
            traceback=escape_nul(result.traceback),
            duration_ms=result.duration_ms,
            postpone_s=result.postpone_s,
        )
    return result


def cancelled(entry: DispatchEntry, worker_id: str, reason: str, now: datetime) -> TaskCancelled:
    return TaskCancelled(**_envelope(entry, now, worker_id), reason=escape_nul(reason), worker_id=worker_id)


def reclaimed(entry: DispatchEntry, worker_id: str, previous_owner: str, idle_ms: int, now: datetime) -> TaskReclaimed:
    return TaskReclaimed(
        **_envelope(entry, now, worker_id),
        from_worker=previous_owner,
        to_worker=worker_id,
        delivery_count=entry.delivery_count,
        idle_ms=idle_ms,
    )


def dead_lettered(
    entry: DispatchEntry, worker_id: str, reason: str, previous_owner: str, now: datetime
) -> TaskDeadLettered:
    return TaskDeadLettered(
        **_envelope(entry, now, worker_id),
        reason=reason,
        deliveries=entry.delivery_count,
        attempts=entry.runs_begun,
        last_worker=previous_owner or None,
    )


def rejected(
    *,
    stream: str,
    entry_id: str,
    partition: int,
    keyspace: Keyspace,
    fields: dict[str, str],
    error: str,
    worker_id: str,
    now: datetime,
) -> DispatchRejected:
    """A dispatch entry this worker cannot read, kept whole for the quarantine (bytes that
    are not UTF-8 written as ``\\xNN``). The task it names fails with it, when it names
    one as the submit script does: a canonical id of this partition (invariant 6)."""
    fields = {field_text(k): field_text(v) for k, v in fields.items()}
    task_id = fields.get("task_id")
    if task_id is not None and not (_is_uuid(task_id) and keyspace.partition_of(task_id) == partition):
        task_id = None
    return DispatchRejected(
        aggregate_id=task_id or f"dispatch-{entry_id}",
        occurred_at=now,
        correlation_id=f"dispatch-{entry_id}",
        actor=worker_id,
        stream=stream,
        entry_id=entry_id,
        partition=partition,
        fields=fields,
        error=field_text(escape_nul(error)),
        task_id=task_id,
    )


def _is_uuid(text: str) -> bool:
    """Canonical only (lower-case, hyphenated), as the gateway writes task ids."""
    try:
        return str(UUID(text)) == text
    except ValueError:
        return False
