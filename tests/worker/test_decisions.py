"""The worker's pure decisions (what it appends, retries, poison), as tables: no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest

from taskflow.events import TaskFailed, TaskSubmitted, TaskSucceeded, TaskTimedOut
from taskflow.streams.keyspace import Keyspace, partition_of
from taskflow.worker import decisions
from taskflow.worker.entry import DispatchEntry

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (decisions.Succeeded(result=msgspec.Raw(b'{"a":"ok"}'), duration_ms=1.0), "same"),
        (decisions.Succeeded(result=msgspec.Raw(b'{"a":"\\\\u0000 is text"}'), duration_ms=1.0), "same"),
        (decisions.Succeeded(result=msgspec.Raw(b'{"a":["x","\\u0000"]}'), duration_ms=1.0), "UnstorableResult"),
        (decisions.Failed(error_type="E", error="a\x00b", traceback="t\x00", duration_ms=1.0), "escaped"),
        (decisions.TimedOut(timeout_s=1.0, duration_ms=1000.0), "same"),
    ],
)
def test_what_a_run_returns_is_made_storable(result: decisions.RunResult, expected: str) -> None:
    stored = decisions.storable(result)
    if expected == "same":
        assert stored == result
    elif expected == "escaped":
        assert isinstance(stored, decisions.Failed)
        assert (stored.error, stored.traceback) == ("a\\u0000b", "t\\u0000")
    else:
        assert isinstance(stored, decisions.Failed) and stored.error_type == expected
        assert stored.error.startswith("result.a[1] holds a NUL")


def _task_in(partition: int, partitions: int) -> str:
    while partition_of(task_id := str(uuid4()), partitions) != partition:
        pass
    return task_id


@pytest.mark.parametrize(
    ("fields", "names_task"),
    [
        ({"task_id": "TASK", "event": "{"}, True),
        ({"task_id": "not-a-uuid", "event": "{"}, False),
        ({"task_id": "UPPER", "event": "{"}, False),  # not as the gateway writes ids
        ({"task_id": "OTHER-PARTITION", "event": "{"}, False),  # invariant 6
        ({"other": "x"}, False),
    ],
)
def test_a_rejected_entry_names_its_task_only_when_the_id_is_one_of_its_partition(
    fields: dict[str, str], names_task: bool
) -> None:
    task_id = _task_in(1, 4)
    spelled = {"TASK": task_id, "UPPER": task_id.upper(), "OTHER-PARTITION": _task_in(2, 4)}
    fields = {k: spelled.get(v, v) for k, v in fields.items()}
    event = decisions.rejected(
        stream="s",
        entry_id="5-0",
        partition=1,
        keyspace=Keyspace("t", 4),
        fields=fields,
        error="bad\x00",
        worker_id="w",
        now=NOW,
    )
    assert event.task_id == (task_id if names_task else None)
    assert event.aggregate_id == (task_id if names_task else "dispatch-5-0")
    assert event.fields == fields and event.error == "bad\\u0000"


def _entry(*, retry_count: int = 0, max_retries: int = 3, runs_begun: int = 0) -> DispatchEntry:
    task = TaskSubmitted(
        aggregate_id=str(uuid4()),
        occurred_at=NOW,
        correlation_id="c",
        actor="a",
        task_name="t",
        max_retries=max_retries,
        priority="high",
    )
    task = msgspec.structs.replace(task, event_id="1-0")
    return DispatchEntry(
        stream="s",
        entry_id="9-0",
        partition=0,
        delivery_count=1,
        runs_begun=runs_begun,
        retry_count=retry_count,
        task=task,
    )


_OK = decisions.Succeeded(result=msgspec.Raw(b"1"), duration_ms=1.0)
_BAD = decisions.Failed(error_type="E", error="e", traceback="", duration_ms=1.0)
_SLOW = decisions.TimedOut(timeout_s=1.0, duration_ms=1000.0)


@pytest.mark.parametrize(
    ("result", "retry_count", "max_retries", "event", "kind", "delay_s"),
    [
        (_OK, 0, 3, TaskSucceeded, "finish", None),
        (_OK, 3, 3, TaskSucceeded, "finish", None),
        (_SLOW, 0, 3, TaskTimedOut, "finish", None),  # a timeout is final
        (_BAD, 0, 3, TaskFailed, "retry", 1.0),  # 2^0 s
        (_BAD, 2, 3, TaskFailed, "retry", 4.0),  # 2^2 s
        (_BAD, 3, 3, TaskFailed, "finish", None),  # no retry left: dead letter
        (_BAD, 0, 0, TaskFailed, "finish", None),
        (decisions.unknown_task("t"), 0, 1, TaskFailed, "retry", 1.0),
    ],
)
def test_decide_outcome(
    result: decisions.RunResult, retry_count: int, max_retries: int, event: type, kind: str, delay_s: float | None
) -> None:
    entry = _entry(retry_count=retry_count, max_retries=max_retries, runs_begun=1)
    decided = decisions.decide_outcome(entry, "w", result, NOW, jitter=0.0)
    assert type(decided.event) is event and decided.kind == kind
    assert decided.event.attempt == 2 and decided.event.causation_id == "1-0"
    if delay_s is None:
        assert decided.held is None
        if isinstance(decided.event, TaskFailed):
            assert decided.event.retry_at is None and decided.event.retry_count == retry_count
        return
    assert decided.held is not None and isinstance(decided.event, TaskFailed)
    held, due_ms = decided.held
    assert due_ms == int((NOW + timedelta(seconds=delay_s)).timestamp() * 1000)
    assert decided.event.retry_at == NOW + timedelta(seconds=delay_s)
    assert held.retry_count == decided.event.retry_count == retry_count + 1
    assert (held.task_id, held.event_id, held.priority) == (entry.task.aggregate_id, "1-0", "high")


@pytest.mark.parametrize(("retry_count", "max_retries"), [(0, 3), (3, 3), (0, 0)])
def test_a_postponed_run_is_booked_again_without_using_up_a_retry(retry_count: int, max_retries: int) -> None:
    """``tasks.Postponed`` (a paused campaign): run again after its delay, even with no
    retry left, and the retry count stays where it was."""
    postponed = decisions.Failed(error_type="Postponed", error="paused", traceback="", duration_ms=1.0, postpone_s=1.5)
    entry = _entry(retry_count=retry_count, max_retries=max_retries)
    decided = decisions.decide_outcome(entry, "w", decisions.storable(postponed), NOW, jitter=0.9)
    assert decided.kind == "retry" and decided.held is not None and isinstance(decided.event, TaskFailed)
    held, due_ms = decided.held
    assert due_ms == int((NOW + timedelta(seconds=1.5)).timestamp() * 1000)
    assert held.retry_count == decided.event.retry_count == retry_count


@pytest.mark.parametrize(
    ("retry_count", "max_retries", "jitter", "delay_s"),
    [
        (0, 1, 0.0, 1.0),
        (4, 5, 0.0, 16.0),
        (1, 5, 1.0, 2.2),  # +10 %
        (1, 5, -1.0, 1.8),  # -10 %
        (1, 5, 7.0, 2.2),  # jitter is clamped to [-1, 1]
        (5, 5, 0.0, None),
        (0, 0, 0.0, None),
    ],
)
def test_decide_retry(retry_count: int, max_retries: int, jitter: float, delay_s: float | None) -> None:
    decision = decisions.decide_retry(retry_count, max_retries, NOW, jitter)
    if delay_s is None:
        assert isinstance(decision, decisions.GiveUp)
    else:
        assert isinstance(decision, decisions.Retry) and decision.delay_s == pytest.approx(delay_s)
        assert decision.at == NOW + timedelta(seconds=decision.delay_s)


@pytest.mark.parametrize(
    ("runs_begun", "max_deliveries", "dead", "suspect"),
    [(0, 3, False, False), (1, 3, False, False), (2, 3, False, True), (3, 3, True, True), (9, 3, True, True)],
)
def test_decide_reclaimed(runs_begun: int, max_deliveries: int, dead: bool, suspect: bool) -> None:
    """Runs begun, not deliveries, make an entry poison (a worker that died before
    starting it did nothing wrong); one that outlived two owners runs alone."""
    decision = decisions.decide_reclaimed(runs_begun, max_deliveries)
    assert isinstance(decision, decisions.DeadLetter) is dead
    assert decisions.is_suspect(runs_begun) is suspect
