"""What ``taskflow reconcile`` decides, as tables: no server needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from taskflow.ops.reconcile import (
    UNFINISHED_STATUSES,
    LostTask,
    RedisTrace,
    Repair,
    Report,
    Restore,
    StreamState,
    TaskCandidate,
    exit_status,
    is_lost,
    lost_tasks,
    missing_groups,
    restore_of,
    stream_behind,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _stream(
    last: tuple[int, int], groups: dict[str, tuple[int, int]], checkpoint: tuple[int, int] | None = (100, 5)
) -> StreamState:
    return StreamState(
        name="events:0",
        key="ns:{0}:events",
        exists=True,
        last_generated_id=last,
        groups=groups,
        required_group="projector",
        checkpoint=checkpoint,
    )


def test_the_unfinished_statuses_are_the_ones_a_marker_keeps_live() -> None:
    assert sorted(UNFINISHED_STATUSES) == ["PENDING", "RUNNING", "SCHEDULED", "WAITING"]


def test_a_stream_without_its_group_is_reported_with_whether_it_exists() -> None:
    missing = _stream((0, 0), {})
    other = StreamState(
        name="dispatch:0:high",
        key="ns:{0}:q:high",
        exists=True,
        last_generated_id=(1, 0),
        groups={"workers": (1, 0)},
        required_group="workers",
        checkpoint=None,
    )
    assert [(m.stream, m.group, m.stream_exists) for m in missing_groups([missing, other])] == [
        ("events:0", "projector", True)
    ]


@pytest.mark.parametrize(
    ("last", "groups", "checkpoint", "move_to", "because"),
    [
        # Behind the archive: new events would be skipped as projected already.
        ((1, 0), {}, (100, 5), "100-5", "archive checkpoint"),
        ((100, 4), {"projector": (0, 0)}, (100, 5), "100-5", "archive checkpoint"),
        # At the checkpoint is safe: XADD * gives a larger id.
        ((100, 5), {"projector": (100, 5)}, (100, 5), None, None),
        ((200, 0), {"projector": (150, 0)}, (100, 5), None, None),
        # A group ahead of the stream would not be delivered the next entries.
        ((150, 0), {"projector": (300, 0)}, (100, 5), "300-0", "group projector last delivered"),
        # Dispatch streams have no checkpoint; only their groups count.
        ((5, 0), {"workers": (5, 0)}, None, None, None),
        ((5, 0), {"workers": (9, 1)}, None, "9-1", "group workers last delivered"),
        ((0, 0), {}, None, None, None),
        # Never projected (checkpoint 0-0): a fresh stream is fine.
        ((0, 0), {}, (0, 0), None, None),
    ],
)
def test_a_stream_is_behind_when_its_next_ids_would_be_skipped(
    last: tuple[int, int],
    groups: dict[str, tuple[int, int]],
    checkpoint: tuple[int, int] | None,
    move_to: str | None,
    because: str | None,
) -> None:
    behind = stream_behind(_stream(last, groups, checkpoint))
    assert (behind.move_to, behind.because) == (move_to, because) if behind else move_to is None


@pytest.mark.parametrize(
    ("marker", "in_dispatch", "held", "waiting", "unprojected", "lost"),
    [
        (False, False, False, False, False, True),
        (True, False, False, False, False, False),
        # A marker outlived by a long backlog: the entry still runs it.
        (False, True, False, False, False, False),
        (False, False, True, False, False, False),
        (False, False, False, True, False, False),
        # The projection is behind on it: not judged in this pass.
        (False, False, False, False, True, False),
    ],
)
def test_a_task_is_lost_only_when_redis_has_nothing_of_it(
    marker: bool, in_dispatch: bool, held: bool, waiting: bool, unprojected: bool, lost: bool
) -> None:
    trace = RedisTrace(
        marker=marker, in_dispatch=in_dispatch, held=held, waiting=waiting, unprojected_events=unprojected
    )
    assert is_lost(trace) is lost


def test_lost_tasks_are_listed_oldest_first_and_unlooked_ones_are_not_judged() -> None:
    def candidate(task_id: str, minutes_ago: int) -> TaskCandidate:
        return TaskCandidate(
            task_id=task_id,
            task_name="echo",
            status="PENDING",
            submitted_at=NOW - timedelta(minutes=minutes_ago),
            scheduled_at=None,
        )

    gone = RedisTrace(marker=False, in_dispatch=False, held=False, waiting=False, unprojected_events=False)
    there = RedisTrace(marker=True, in_dispatch=False, held=False, waiting=False, unprojected_events=False)
    found = lost_tasks(
        [candidate("b", 1), candidate("a", 5), candidate("c", 3), candidate("unlooked", 9)],
        {"a": gone, "b": gone, "c": there},
    )
    assert [t.task_id for t in found] == ["a", "b"]


@pytest.mark.parametrize(
    ("status", "scheduled_at", "expected"),
    [
        ("PENDING", None, Restore(mode="dispatch", due_ms=NOW_MS)),
        # Its worker cannot record an outcome any more (entry gone): it runs again.
        ("RUNNING", None, Restore(mode="dispatch", due_ms=NOW_MS)),
        ("WAITING", None, Restore(mode="wait", due_ms=NOW_MS)),
        ("SCHEDULED", NOW + timedelta(hours=1), Restore(mode="schedule", due_ms=NOW_MS + 3_600_000)),
        # Its time passed while Redis was away: at once.
        ("SCHEDULED", NOW - timedelta(hours=1), Restore(mode="dispatch", due_ms=NOW_MS)),
        ("SCHEDULED", None, Restore(mode="dispatch", due_ms=NOW_MS)),
    ],
)
def test_a_lost_task_goes_back_where_its_status_says(
    status: str, scheduled_at: datetime | None, expected: Restore
) -> None:
    assert restore_of(status, scheduled_at, NOW) == expected


def _report(lost: int, repairs: list[Repair]) -> Report:
    task = LostTask(task_id="t", task_name="echo", status="PENDING", submitted_at=NOW)
    return Report(
        deployment="ns",
        missing_groups=[],
        streams_behind=[],
        lost_tasks=[task] * lost,
        unjudged_tasks=0,
        repairs=repairs,
    )


@pytest.mark.parametrize(
    ("lost", "repaired", "outcomes", "status"),
    [
        (0, False, [], 0),
        (1, False, [], 1),
        (1, True, ["repaired"], 0),
        (1, True, ["already_repaired"], 0),
        (1, True, ["repaired", "failed"], 1),
    ],
)
def test_the_exit_status_says_whether_something_is_still_wrong(
    lost: int, repaired: bool, outcomes: list[str], status: int
) -> None:
    repairs = [Repair(what="task", target="t", outcome=o) for o in outcomes]  # type: ignore[arg-type]
    assert exit_status(_report(lost, repairs), repaired=repaired) == status
