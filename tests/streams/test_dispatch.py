"""``dispatch_mode``: the one decision of where a submission goes, as a table (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from taskflow.streams.dispatch import INITIAL_STATUS, DispatchMode, dispatch_mode, due_ms
from tests.support.stack import submitted

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("scheduled_at", "waits_for_parents", "mode", "status"),
    [
        (None, False, "dispatch", "PENDING"),
        (NOW - timedelta(seconds=1), False, "dispatch", "PENDING"),  # a time in the past: at once
        (NOW, False, "dispatch", "PENDING"),
        (NOW + timedelta(milliseconds=1), False, "schedule", "SCHEDULED"),
        (None, True, "wait", "WAITING"),
    ],
)
def test_dispatch_mode(scheduled_at: datetime | None, waits_for_parents: bool, mode: DispatchMode, status: str) -> None:
    event = msgspec.structs.replace(
        submitted("echo"), occurred_at=NOW, scheduled_at=scheduled_at, waits_for_parents=waits_for_parents
    )
    assert dispatch_mode(event) == mode and INITIAL_STATUS[mode] == status
    assert (due_ms(event) is not None) == (mode == "schedule")
