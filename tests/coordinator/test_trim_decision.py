"""Where a stream may be trimmed (invariant 8), as tables: no server, no clock."""

from __future__ import annotations

import pytest

from taskflow.coordinator.trimming import (
    MAX_SEQ,
    GroupCursor,
    after,
    archive_floor,
    decide_minid,
    group_floor,
    retention_floor,
)
from taskflow.projections.store import StreamId

PROJECTOR = "projector"
FAR: StreamId = (10**13, 0)  # a floor above everything in the tables


def idle(last: StreamId, name: str = PROJECTOR) -> GroupCursor:
    return GroupCursor(name=name, last_delivered=last)


def busy(last: StreamId, pending: StreamId, name: str = PROJECTOR) -> GroupCursor:
    return GroupCursor(name=name, last_delivered=last, oldest_pending=pending)


@pytest.mark.parametrize(
    ("group", "floor"),
    [
        (idle((0, 0)), (0, 1)),  # nothing delivered yet: nothing may go
        (idle((100, 4)), (100, 5)),  # all delivered and acked: up to and with 100-4 goes
        (busy((100, 4), (90, 2)), (90, 2)),  # the oldest pending entry stays
        (busy((100, 4), (100, 4)), (100, 4)),
        (busy((100, 4), (120, 0)), (100, 5)),  # a pending id above the last delivered: the lower
        (idle((100, MAX_SEQ)), (101, 0)),  # the sequence overflows into the next millisecond
    ],
)
def test_group_floor(group: GroupCursor, floor: StreamId) -> None:
    assert group_floor(group) == floor


@pytest.mark.parametrize(
    ("checkpoint", "floor"),
    [(None, None), ((0, 0), (0, 1)), ((500, 7), (500, 8))],
)
def test_archive_floor(checkpoint: StreamId | None, floor: StreamId | None) -> None:
    assert archive_floor(checkpoint) == floor


@pytest.mark.parametrize(
    ("now_ms", "retention_s", "floor"),
    [
        (1_000_000, 600, (400_000, 0)),
        (1_000_000, 0, (1_000_000, 0)),  # 0: only what the groups and the archive need
        (1_000_000, 0.25, (999_750, 0)),
        (100, 600, (0, 0)),  # never below the first id
        (1_000_000, -1, None),  # -1: never trim
    ],
)
def test_retention_floor(now_ms: int, retention_s: float, floor: StreamId | None) -> None:
    assert retention_floor(now_ms, retention_s) == floor


@pytest.mark.parametrize(
    ("groups", "floors", "minid"),
    [
        # The lowest floor wins: the group's...
        ([idle((100, 4))], [FAR, FAR], (100, 5)),
        ([busy((100, 4), (50, 0))], [FAR, FAR], (50, 0)),
        # ...the archive's (the projector acked further than PostgreSQL holds: never happens
        # in one transaction, but a restored database or a replay can leave it so)...
        ([idle((100, 4))], [FAR, (70, 1)], (70, 1)),
        # ...or the retention window's.
        ([idle((100, 4))], [(30, 0), FAR], (30, 0)),
        # Every group on the stream counts, not only the one TaskFlow requires.
        ([idle((100, 4)), busy((100, 4), (20, 3), name="ops-debug")], [FAR], (20, 3)),
        ([idle((100, 4)), idle((10, 0), name="ops-debug")], [FAR], (10, 1)),
        # Unknown means keep everything: a missing group, no checkpoint row, trimming off.
        ([], [FAR], None),
        ([idle((100, 4), name="ops-debug")], [FAR], None),
        ([idle((100, 4))], [FAR, None], None),
        ([idle((100, 4))], [None, FAR], None),
    ],
)
def test_decide_minid(groups: list[GroupCursor], floors: list[StreamId | None], minid: StreamId | None) -> None:
    assert decide_minid(groups, [PROJECTOR], floors) == minid


def test_after_is_the_next_stream_id() -> None:
    assert after((5, 0)) == (5, 1)
    assert after((5, MAX_SEQ)) == (6, 0)
