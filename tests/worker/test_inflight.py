"""Slot accounting of what a worker holds (no server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import msgspec

from taskflow.events import TaskSubmitted
from taskflow.worker.entry import DispatchEntry
from taskflow.worker.inflight import InFlight


def _entry(n: int) -> DispatchEntry:
    task = TaskSubmitted(
        aggregate_id=str(uuid4()),
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
        correlation_id="c",
        actor="a",
        task_name="t",
    )
    return DispatchEntry(
        stream="s",
        entry_id=f"{n}-0",
        partition=0,
        delivery_count=1,
        runs_begun=0,
        retry_count=0,
        task=msgspec.structs.replace(task, event_id=f"{n}-0"),
    )


async def _started(inflight: InFlight) -> DispatchEntry:
    entry = inflight.next_to_start()
    assert entry is not None
    inflight.running[entry.entry_id] = asyncio.create_task(asyncio.sleep(0))
    return entry


async def test_an_entry_whose_code_returned_frees_its_slot_but_stays_held() -> None:
    """The next start must not wait for the outcome's round trip (one flush carries both),
    while the finishing entry's lease is still renewed until its outcome is in."""
    inflight = InFlight(capacity=1)
    first, second = _entry(1), _entry(2)
    for entry in (first, second):
        inflight.add(entry)
        inflight.backlog.add(entry)
    assert await _started(inflight) == first
    assert inflight.next_to_start() is None  # the one slot is taken while the code runs
    inflight.finishing.add(first.entry_id)
    assert inflight.slots_taken == 0
    assert await _started(inflight) == second
    assert inflight.holds(first.entry_id) and first.entry_id in inflight.by_stream()["s"]
    assert not inflight.runs_code(first.entry_id)  # a cancel order has nothing to stop
    assert inflight.runs_code(second.entry_id)
    inflight.remove(first.entry_id)
    assert first.entry_id not in inflight.finishing and inflight.slots_taken == 1
