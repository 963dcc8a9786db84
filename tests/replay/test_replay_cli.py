"""``taskflow replay`` as analysts run it (a subprocess) against real Redis and PostgreSQL:
one task's history in order, the formats, time travel with ``--as-of`` against a
hand-built expectation (read from the archive, the stream trimmed), bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import msgspec
import pytest
from redis.asyncio import Redis

from taskflow.events import (
    AnyEvent,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    WorkerDied,
    WorkerStarted,
    encode,
    tag_of,
)
from taskflow.replay.moments import BadMoment, parse_moment
from taskflow.settings import Settings
from taskflow.spreadsheet import safe_cell
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import Keyspace
from tests.support.processes import env_for, taskflow
from tests.support.stack import running_projector, running_worker, submit, submitted
from tests.support.waiting import eventually

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _replay(settings: Settings, *args: str) -> str:
    result = taskflow("replay", *args, env=env_for(settings))
    assert result.returncode == 0, result.stderr
    return result.stdout


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_one_tasks_history_comes_in_order_in_every_format(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    event = submitted("echo", greeting="=1+1")
    await submit(redis, settings, event)
    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: _count(pool, "SELECT count(*) FROM tasks WHERE status = 'COMPLETED'", 1), timeout_s=20)
    task_id = event.aggregate_id
    lines = _lines(_replay(settings, "--aggregate", task_id, "--format", "jsonl"))
    assert [line["type"] for line in lines] == ["task.submitted", "task.started", "task.succeeded"]
    assert all(line["aggregate_id"] == task_id and line["event_id"] for line in lines)
    ids = [str(line["event_id"]) for line in lines]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    rows = list(csv.reader(io.StringIO(_replay(settings, "--aggregate", task_id, "--format", "csv"))))
    assert rows[0][:4] == ["event_id", "appended_at", "occurred_at", "type"]
    assert [r[3] for r in rows[1:]] == ["task.submitted", "task.started", "task.succeeded"]
    assert json.loads(rows[1][-1])["task_name"] == "echo"
    table = _replay(settings, "--aggregate", task_id, "--format", "table")
    assert table.splitlines()[0].startswith("appended (UTC)") and "task.succeeded" in table
    only = _lines(_replay(settings, "--type", "task.started", "--json"))
    assert [line["type"] for line in only] == ["task.started"]
    with_bar = taskflow("replay", "--progress", "--format", "jsonl", env=env_for(settings))
    assert with_bar.returncode == 0 and len(with_bar.stdout.splitlines()) == 5  # the worker's two too
    assert "replayed 5 events" in with_bar.stderr


async def _count(pool: asyncpg.Pool, sql: str, expected: int) -> bool:
    return int(await pool.fetchval(sql)) == expected


async def _append_at(redis: Redis, ks: Keyspace, at: datetime, event: AnyEvent) -> None:
    await redis.xadd(
        ks.events_of(event.aggregate_id),
        {"type": tag_of(event), "data": encode(event)},
        id=f"{int(at.timestamp() * 1000)}-0",
    )


async def test_as_of_matches_a_hand_built_history(redis: Redis, settings: Settings, pool: asyncpg.Pool) -> None:
    """A worker runs t1 to completion, starts t2 and dies: at 10:01:30 it held t1; at
    10:03 t1 was COMPLETED and it held t2; answered from the archive alone."""
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    worker, t1, t2 = str(uuid4()), str(uuid4()), str(uuid4())

    def envelope(aggregate: str, at: datetime) -> dict[str, object]:
        return {"aggregate_id": aggregate, "occurred_at": at, "correlation_id": uuid4().hex, "actor": "test"}

    history: list[tuple[timedelta, AnyEvent]] = []
    for offset, make in [
        (
            timedelta(0),
            lambda at: WorkerStarted(
                **envelope(worker, at), hostname="h1", pid=1, capacity=2, queues=("medium",), version="t"
            ),
        ),
        (timedelta(seconds=1), lambda at: TaskSubmitted(**envelope(t1, at), task_name="echo")),
        (timedelta(seconds=2), lambda at: TaskSubmitted(**envelope(t2, at), task_name="sleep")),
        (
            timedelta(minutes=1),
            lambda at: TaskStarted(**envelope(t1, at), worker_id=worker, attempt=1, dispatch_id="1-0"),
        ),
        (
            timedelta(minutes=2),
            lambda at: TaskSucceeded(
                **envelope(t1, at), worker_id=worker, attempt=1, result=msgspec.Raw(b"1"), duration_ms=5.0
            ),
        ),
        (
            timedelta(minutes=2, seconds=30),
            lambda at: TaskStarted(**envelope(t2, at), worker_id=worker, attempt=1, dispatch_id="2-0"),
        ),
        (timedelta(minutes=5), lambda at: WorkerDied(**envelope(worker, at), silent_s=31.0)),
    ]:
        history.append((offset, make(T0 + offset)))
    for offset, event in history:
        await _append_at(redis, ks, T0 + offset, event)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _count(pool, "SELECT count(*) FROM event_archive", len(history)), timeout_s=20)
    await redis.xtrim(ks.events(0), maxlen=0, approximate=False)  # the archive alone answers

    def state(at: str, *extra: str) -> dict[tuple[object, object], dict[str, object]]:
        rows = _lines(_replay(settings, "--as-of", at, "--format", "jsonl", *extra))
        return {(row["kind"], row["id"]): row for row in rows}

    early = state("2026-12-06T10:01:30Z")
    assert early[("task", t1)]["status"] == "RUNNING" and early[("task", t1)]["worker"] == worker
    assert early[("task", t2)]["status"] == "PENDING"
    assert early[("worker", worker)]["holding"] == t1
    later = state("2026-12-06T10:03:00+00:00")
    assert later[("task", t1)]["status"] == "COMPLETED"
    assert later[("task", t2)]["status"] == "RUNNING" and later[("worker", worker)]["holding"] == t2
    running = state("2026-12-06T10:03", "--status", "RUNNING")
    assert set(running) == {("task", t2), ("worker", worker)}
    died = state("2026-12-06T10:05:00Z", "--worker", worker)
    assert died[("worker", worker)]["status"] == "DEAD" and died[("worker", worker)]["holding"] == t2
    before = state("2026-12-06T09:59:59Z")
    assert before == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--type", "task.finished"), "unknown event type task.finished"),
        (("--since", "yesterday-ish"), "is not a time"),
        (("--since", "-1h", "--until", "-2h"), "--until must be later than --since"),
        (("--status", "RUNNING"), "--status and --worker go with --as-of"),
        (("--as-of", "now", "--type", "task.started"), "--as-of folds every event"),
        (("--format", "xml"), "'xml' is not one of"),
        (("--format", "csv", "--json"), "--json and --format csv disagree"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(
    settings: Settings, args: tuple[str, ...], message: str
) -> None:
    result = taskflow("replay", *args, env=env_for(settings))
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_help_shows_examples() -> None:
    result = taskflow("replay", "--help", env={})
    assert result.returncode == 0 and "taskflow replay --as-of" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", T0),
        ("-15m", T0 - timedelta(minutes=15)),
        ("-1.5h", T0 - timedelta(hours=1.5)),
        ("-7d", T0 - timedelta(days=7)),
        ("2026-12-06T09:00:00Z", datetime(2026, 12, 6, 9, tzinfo=UTC)),
        ("2026-12-06T09:00", datetime(2026, 12, 6, 9, tzinfo=UTC)),
        ("2026-12-06", datetime(2026, 12, 6, tzinfo=UTC)),
        ("2026-12-06T11:00:00+02:00", datetime(2026, 12, 6, 9, tzinfo=UTC)),
    ],
)
def test_moments_parse(text: str, expected: datetime) -> None:
    assert parse_moment(text, T0) == expected


@pytest.mark.parametrize("text", ["", "15m", "-15x", "tomorrow", "2026-13-01"])
def test_bad_moments_are_refused(text: str) -> None:
    with pytest.raises(BadMoment):
        parse_moment(text, T0)


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("1-0", "1-0"),
        ("ok", "ok"),
    ],
)
def test_csv_cells_that_would_be_formulas_are_escaped(cell: str, shown: str) -> None:
    assert safe_cell(cell) == shown
