"""The worker's pure decisions about what it appends (ADR 0014), as tables: no server."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import pytest

from taskflow.streams.keyspace import Keyspace, partition_of
from taskflow.worker import outcome

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (outcome.Succeeded(result=msgspec.Raw(b'{"a":"ok"}'), duration_ms=1.0), "same"),
        (outcome.Succeeded(result=msgspec.Raw(b'{"a":"\\\\u0000 is text"}'), duration_ms=1.0), "same"),
        (outcome.Succeeded(result=msgspec.Raw(b'{"a":["x","\\u0000"]}'), duration_ms=1.0), "UnstorableResult"),
        (outcome.Failed(error_type="E", error="a\x00b", traceback="t\x00", duration_ms=1.0), "escaped"),
        (outcome.TimedOut(timeout_s=1.0, duration_ms=1000.0), "same"),
    ],
)
def test_what_a_run_returns_is_made_storable(result: outcome.RunResult, expected: str) -> None:
    stored = outcome.storable(result)
    if expected == "same":
        assert stored == result
    elif expected == "escaped":
        assert isinstance(stored, outcome.Failed)
        assert (stored.error, stored.traceback) == ("a\\u0000b", "t\\u0000")
    else:
        assert isinstance(stored, outcome.Failed) and stored.error_type == expected
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
    event = outcome.rejected(
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
