"""A submitted task as its producer follows it: live state, result, progress, history,
cancel. Read from Redis (the task marker points at the events that matter, one XRANGE
each), so following a live task needs no gateway and no database. Events the coordinator
has trimmed from Redis (ADR 0024) are read from the PostgreSQL archive, which holds every
trimmed one: an old task's outcome and history stay available."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import msgspec
from redis.asyncio import Redis

from taskflow.events import (
    AnyEvent,
    DispatchRejected,
    EventDecodeError,
    TaskCancelled,
    TaskCancelRequested,
    TaskDeadLettered,
    TaskFailed,
    TaskProgressed,
    TaskSucceeded,
    TaskTimedOut,
    decode,
)
from taskflow.producer.errors import (
    OutcomeGone,
    ResultTimeout,
    TaskCancelledError,
    TaskDeadLetteredError,
    TaskError,
    TaskFailedError,
    TaskNotFound,
    TaskRejectedError,
    TaskTimedOutError,
)
from taskflow.replay.history import EventFilter, Rows, events_after
from taskflow.replay.position import START
from taskflow.streams.cancel import Canceller
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.marker import MarkerState

R = TypeVar("R")
# Polling the marker: fast at first (most tasks end in milliseconds), then gently.
FIRST_POLL_S = 0.002
MAX_POLL_S = 0.1
_ENDED = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
_HISTORY_PAGE = 1000


class TaskHandle(Generic[R]):
    """A task submitted (or looked up) by id. ``R`` is what its function returns, so
    ``await handle.result()`` is typed as the function is."""

    def __init__(
        self,
        redis: Redis,
        keyspace: Keyspace,
        canceller: Canceller,
        task_id: str,
        returns: Any,
        actor: str,
        archive: Callable[[], Awaitable[Rows]] | None = None,
    ) -> None:
        self.task_id = task_id
        self._redis = redis
        # The archive, opened on first need (most handles never need it).
        self._archive = archive
        self._keyspace = keyspace
        self._canceller = canceller
        self._returns = returns
        self._actor = actor
        self._marker = keyspace.task_marker(task_id)
        self._stream = keyspace.events_of(task_id)

    def __repr__(self) -> str:
        return f"TaskHandle({self.task_id!r})"

    async def status(self) -> MarkerState:
        """The live state: scheduled, waiting, pending, running, succeeded, failed,
        timed_out or cancelled. ``TaskNotFound`` when Redis knows no such task."""
        state = await cast("Any", self._redis.hget(self._marker, "state"))
        if state is None:
            raise TaskNotFound(f"no task {self.task_id} in Redis")
        return cast("MarkerState", state)

    async def outcome(self, timeout: float | None = None) -> AnyEvent:  # noqa: ASYNC109 - CONTRACT.md spells it so
        """Wait for the event that ended the task (TaskSucceeded, TaskFailed, ...) and
        return it, whatever it is. ``ResultTimeout`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = FIRST_POLL_S
        while True:
            state, outcome_id = await cast("Any", self._redis.hmget(self._marker, ["state", "outcome"]))
            if state is None:
                raise TaskNotFound(f"no task {self.task_id} in Redis")
            if state in _ENDED and outcome_id:
                event = await self._read(outcome_id) or await self._read_archived(outcome_id)
                if event is None:
                    raise OutcomeGone(
                        f"task {self.task_id} ended ({state}); its outcome is neither in Redis nor archived"
                    )
                return event
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"task {self.task_id} is still {state} after {timeout:g} s")
            wait = pause if deadline is None else min(pause, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(wait)
            pause = min(pause * 2, MAX_POLL_S)

    async def result(self, timeout: float | None = None) -> R:  # noqa: ASYNC109 - CONTRACT.md spells it so
        """Wait for the task to end and return its result, converted to the function's
        return annotation. Raises the task's ending as a ``TaskError`` (``TaskFailedError``
        with the remote error type, message and traceback; ``TaskTimedOutError``, ...),
        ``ResultTimeout`` after ``timeout`` seconds (the task goes on)."""
        event = await self.outcome(timeout)
        if isinstance(event, TaskSucceeded):
            value = msgspec.json.decode(event.result)
            if self._returns is Any:
                return cast("R", value)
            return cast("R", msgspec.convert(value, self._returns, strict=False))
        raise error_of(self.task_id, event)

    async def progress(self, poll_s: float = 0.05) -> AsyncIterator[TaskProgressed]:
        """The task's progress steps as they are recorded, until it ends. Steps reported
        faster than ``poll_s`` apart may be coalesced: you see the latest, never one twice."""
        last = ""
        while True:
            state, progress_id = await cast("Any", self._redis.hmget(self._marker, ["state", "progress"]))
            if state is None:
                raise TaskNotFound(f"no task {self.task_id} in Redis")
            if progress_id and progress_id != last:
                last = progress_id
                event = await self._read(progress_id)
                if isinstance(event, TaskProgressed):
                    yield event
            if state in _ENDED:
                return
            await asyncio.sleep(poll_s)

    async def events(self) -> list[AnyEvent]:
        """The task's history so far, oldest first, from its submission on: from Redis
        while it holds the submission, else from the archive and then Redis (one ordered
        history, replay.history)."""
        first, outcome_id = await cast("Any", self._redis.hmget(self._marker, ["event_id", "outcome"]))
        if first is None:
            raise TaskNotFound(f"no task {self.task_id} in Redis")
        head = await self._redis.xrange(self._stream, min="-", max="+", count=1)
        if (not head or _id(head[0][0]) > _id(first)) and self._archive is not None:
            return await self._stitched(first, outcome_id)
        found: list[AnyEvent] = []
        start, end = first, outcome_id or "+"
        while True:
            page = await self._redis.xrange(self._stream, min=start, max=end, count=_HISTORY_PAGE)
            for entry_id, fields in page:
                event = _decoded(entry_id, fields)
                if event is not None and event.aggregate_id == self.task_id:
                    found.append(event)
            if len(page) < _HISTORY_PAGE:
                return found
            start = "(" + page[-1][0]

    async def _stitched(self, first: str, outcome_id: str | None) -> list[AnyEvent]:
        assert self._archive is not None
        rows = await self._archive()
        selection = EventFilter(
            aggregate_id=self.task_id,
            since_ms=_id(first)[0],
            until_ms=None if not outcome_id else _id(outcome_id)[0] + 1,
        )
        return [event async for _, event in events_after(self._redis, rows, self._keyspace, START, selection)]

    async def cancel(self, reason: str = "") -> MarkerState:
        """Cancel the task: one that has not started never will ("cancelled"); a running
        one is stopped by its worker ("running" until it is). Returns the state after the
        request; a task that already ended keeps its state."""
        submitted = await cast("Any", self._redis.hget(self._marker, "event_id"))
        if submitted is None:
            raise TaskNotFound(f"no task {self.task_id} in Redis")
        event = await self._read(submitted)
        envelope: dict[str, Any] = {
            "aggregate_id": self.task_id,
            "occurred_at": datetime.now(UTC),
            "correlation_id": event.correlation_id if event is not None else self.task_id,
            "actor": self._actor,
        }
        why = reason or f"cancelled by {self._actor}"
        outcome, _ = await self._canceller.cancel(
            self.task_id,
            cancelled=TaskCancelled(**envelope, reason=why),
            requested=TaskCancelRequested(**envelope, reason=why),
        )
        if outcome == "unknown":
            raise TaskNotFound(f"no task {self.task_id} in Redis")
        if outcome.startswith("terminal:"):
            return cast("MarkerState", outcome.removeprefix("terminal:"))
        return "cancelled" if outcome == "cancelled" else "running"

    async def _read(self, event_id: str) -> AnyEvent | None:
        page = await self._redis.xrange(self._stream, min=event_id, max=event_id, count=1)
        return _decoded(*page[0]) if page else None

    async def _read_archived(self, event_id: str) -> AnyEvent | None:
        """One event of this task from the archive (trimmed from Redis), if it is there."""
        if self._archive is None:
            return None
        rows = await self._archive()
        ms, seq = _id(event_id)
        row = await rows.fetchrow(
            "SELECT payload FROM event_archive WHERE partition = $1 AND id_ms = $2 AND id_seq = $3",
            self._keyspace.partition_of(self.task_id),
            ms,
            seq,
        )
        if row is None:
            return None
        try:
            return decode(event_id, row["payload"].encode())
        except EventDecodeError:
            return None


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _decoded(entry_id: str, fields: dict[str, str]) -> AnyEvent | None:
    try:
        return decode(entry_id, fields["data"].encode())
    except (KeyError, EventDecodeError):
        return None  # the projector quarantines it; a handle just does not show it


def error_of(task_id: str, event: AnyEvent) -> TaskError:
    """The exception for an ending that is not a success."""
    match event:
        case TaskFailed():
            return TaskFailedError(task_id, event.error_type, event.error, event.traceback)
        case TaskTimedOut():
            return TaskTimedOutError(task_id, event.timeout_seconds)
        case TaskCancelled():
            return TaskCancelledError(task_id, event.reason)
        case TaskDeadLettered():
            return TaskDeadLetteredError(task_id, event.reason)
        case DispatchRejected():
            return TaskRejectedError(task_id, event.error)
        case _:
            return TaskError(task_id, f"ended with {type(event).__name__}")
