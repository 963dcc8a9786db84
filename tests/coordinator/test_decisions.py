"""The coordinator's pure decisions, as tables: no server, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from taskflow import cron
from taskflow.coordinator.decisions import decide_waiting, died_event, queued_event, tick_event
from taskflow.events import TaskSubmitted
from taskflow.streams.dispatch import HeldDispatch
from taskflow.streams.schedules import ScheduleDefinition, TaskTemplate

T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("states", "decision"),
    [
        ({"a": "succeeded", "b": "succeeded"}, "release"),
        ({"a": "succeeded", "b": "running"}, "wait"),
        ({"a": "succeeded", "b": None}, "wait"),  # not known yet: never released on a guess
        ({"a": "pending", "b": "scheduled"}, "wait"),
        ({"a": "failed", "b": "running"}, "parent a failed"),
        ({"a": "succeeded", "b": "cancelled"}, "parent b was cancelled"),
        ({"a": "timed_out"}, "parent a timed out"),
        ({"a": "running", "b": "failed"}, "parent b failed"),  # one bad parent is enough
    ],
)
def test_decide_waiting(states: dict[str, str | None], decision: str) -> None:
    assert decide_waiting(states) == decision


def _held(retry_count: int) -> HeldDispatch:
    return HeldDispatch(task_id="t1", event_id="5-0", event="{}", retry_count=retry_count, priority="low")


_SUBMITTED = TaskSubmitted(aggregate_id="t1", occurred_at=T, correlation_id="c1", actor="u", task_name="echo")


@pytest.mark.parametrize(
    ("retry_count", "parents_done", "reason"),
    [(0, False, "scheduled"), (2, False, "retry"), (0, True, "dependencies_met"), (1, True, "dependencies_met")],
)
def test_why_a_held_task_is_queued(retry_count: int, parents_done: bool, reason: str) -> None:
    queued = queued_event(_held(retry_count), _SUBMITTED, "leader|3", T, parents_done=parents_done)
    assert (queued.reason, queued.retry_count, queued.causation_id) == (reason, retry_count, "5-0")
    assert (queued.correlation_id, queued.actor, queued.occurred_at) == ("c1", "coordinator:leader|3", T)


@pytest.mark.parametrize(("silent_ms", "silent_s"), [(0, 0.0), (1_500, 1.5), (90_250, 90.25)])
def test_a_dead_worker_is_buried_with_how_long_it_was_silent(silent_ms: int, silent_s: float) -> None:
    last_ms = T.timestamp() * 1000 - silent_ms
    died = died_event("w1", last_ms, "leader|1", T)
    assert (died.aggregate_id, died.silent_s, died.last_heartbeat) == (
        "w1",
        silent_s,
        T - timedelta(milliseconds=silent_ms),
    )


@pytest.mark.parametrize(
    ("expression", "last_fired", "now", "fired", "next_at"),
    [
        ("* * * * * *", T, T - timedelta(milliseconds=1), [], T),  # not due yet
        ("* * * * * *", T, T, [T], T + timedelta(seconds=1)),
        (
            "* * * * * *",
            T,
            T + timedelta(seconds=3.5),
            [T + timedelta(seconds=s) for s in range(4)],
            T + timedelta(seconds=4),
        ),
        ("*/5 * * * *", T, T + timedelta(minutes=9), [T, T + timedelta(minutes=5)], T + timedelta(minutes=10)),
        # Missed ticks older than the catch-up window (10 min) are skipped, not fired late.
        (
            "*/5 * * * *",
            T,
            T + timedelta(minutes=12),
            [T + timedelta(minutes=m) for m in (5, 10)],
            T + timedelta(minutes=15),
        ),
        # At most MAX_CATCH_UP (100) ticks, the latest ones.
        (
            "* * * * * *",
            T,
            T + timedelta(seconds=500),
            [T + timedelta(seconds=s) for s in range(401, 501)],
            T + timedelta(seconds=501),
        ),
        # After a long outage: only ticks of the catch-up window, at most MAX_CATCH_UP of them.
        ("0 * * * *", T, T + timedelta(days=2), [T + timedelta(days=2)], T + timedelta(days=2, hours=1)),
    ],
)
def test_which_cron_ticks_fire(
    expression: str, last_fired: datetime, now: datetime, fired: list[datetime], next_at: datetime
) -> None:
    assert cron.due_ticks(expression, last_fired, now) == (fired, next_at)


def test_a_tick_submits_the_template_under_an_id_derived_from_the_tick() -> None:
    template = TaskTemplate(
        task_name="echo",
        args=msgspec.Raw(b"[1]"),
        kwargs=msgspec.Raw(b"{}"),
        priority="high",
        max_retries=2,
        timeout_seconds=30,
    )
    definition = ScheduleDefinition(
        schedule_id="s1", cron="* * * * *", template=template, created_by="u", created_event_id="9-0"
    )
    first, again = tick_event(definition, T, T), tick_event(definition, T, T + timedelta(seconds=5))
    assert first.aggregate_id == again.aggregate_id == cron.tick_task_id("s1", T)
    assert first.correlation_id == again.correlation_id
    fields: dict[str, Any] = {f: getattr(first, f) for f in ("task_name", "priority", "max_retries", "timeout_seconds")}
    assert fields == {"task_name": "echo", "priority": "high", "max_retries": 2, "timeout_seconds": 30}
    assert (first.scheduled_at, first.causation_id, first.actor) == (T, "9-0", "u")
