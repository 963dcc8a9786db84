"""SQL for the projector: read stored rows, write a batch's rows, archive, checkpoint.

Every function takes a connection inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeAlias
from uuid import UUID

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from taskflow.projections.batch import Changes
from taskflow.projections.rows import ExecutionRow, TaskRow, WorkerRow

PROJECTION = "main"
# A plain connection or one borrowed from a pool: the functions below take either.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
StreamId = tuple[int, int]


def parse_stream_id(event_id: str) -> StreamId:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class ArchiveRecord(msgspec.Struct, frozen=True, array_like=True):
    partition: int
    event_id: str
    id_ms: int
    id_seq: int
    event_type: str
    schema_version: int
    aggregate_id: str
    occurred_at: object
    correlation_id: str
    causation_id: str | None
    traceparent: str | None
    actor: str | None
    payload: str


ARCHIVE_COLUMNS = list(ArchiveRecord.__struct_fields__)


class FencedOut(Exception):
    """Raised when a projector whose lock lapsed (paused, partitioned) tries to commit after
    a successor with a newer fencing token already has; its transaction rolls back."""


async def lock_checkpoint(conn: Connection, partition: int, fence: int) -> StreamId:
    """The partition's checkpoint, row-locked for this transaction so that two projectors
    on one partition serialise instead of both applying a batch (invariant 4), and
    refused to a projector holding an older fencing token than the last writer's."""
    await conn.execute(
        "INSERT INTO projection_checkpoints (projection, partition, last_ms, last_seq) "
        "VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING",
        PROJECTION,
        partition,
    )
    row = await conn.fetchrow(
        "SELECT last_ms, last_seq, fence FROM projection_checkpoints "
        "WHERE projection = $1 AND partition = $2 FOR UPDATE",
        PROJECTION,
        partition,
    )
    assert row is not None  # inserted just above
    if int(row["fence"]) > fence:
        raise FencedOut(f"partition {partition}: fence {fence} is older than {row['fence']}")
    return int(row["last_ms"]), int(row["last_seq"])


async def raise_fence(pool: asyncpg.Pool, partition: int, fence: int) -> None:
    """Record a new projector's token at once, before it reads (see ``FencedOut``)."""
    await pool.execute(
        "INSERT INTO projection_checkpoints (projection, partition, last_ms, last_seq, fence) "
        "VALUES ($1, $2, 0, 0, $3) ON CONFLICT (projection, partition) "
        "DO UPDATE SET fence = GREATEST(projection_checkpoints.fence, EXCLUDED.fence)",
        PROJECTION,
        partition,
        fence,
    )


async def advance_checkpoint(conn: Connection, partition: int, last: StreamId, fence: int) -> None:
    await conn.execute(
        "UPDATE projection_checkpoints SET last_ms = $3, last_seq = $4, fence = $5, updated_at = now() "
        "WHERE projection = $1 AND partition = $2",
        PROJECTION,
        partition,
        last[0],
        last[1],
        fence,
    )


async def read_checkpoint(conn: Connection, partition: int) -> StreamId:
    row = await conn.fetchrow(
        "SELECT last_ms, last_seq FROM projection_checkpoints WHERE projection = $1 AND partition = $2",
        PROJECTION,
        partition,
    )
    return (0, 0) if row is None else (int(row["last_ms"]), int(row["last_seq"]))


async def archive(conn: Connection, records: list[ArchiveRecord]) -> None:
    # COPY: the archive takes every event, so it is the projector's hottest write.
    await conn.copy_records_to_table(
        "event_archive", records=[tuple(msgspec.structs.astuple(r)) for r in records], columns=ARCHIVE_COLUMNS
    )


_TASK_COLUMNS = list(TaskRow.__struct_fields__)
_WORKER_COLUMNS = list(WorkerRow.__struct_fields__)


async def load_tasks(conn: Connection, ids: set[UUID]) -> dict[UUID, TaskRow]:
    if not ids:
        return {}
    rows = await conn.fetch(f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks WHERE task_id = ANY($1::uuid[])", list(ids))
    # asyncpg hands JSONB back as text, which is what the rows hold.
    return {r["task_id"]: TaskRow(**dict(r)) for r in rows}


async def load_workers(conn: Connection, ids: set[UUID]) -> dict[UUID, WorkerRow]:
    if not ids:
        return {}
    rows = await conn.fetch(
        f"SELECT {', '.join(_WORKER_COLUMNS)} FROM workers WHERE worker_id = ANY($1::uuid[])", list(ids)
    )
    return {r["worker_id"]: WorkerRow(**dict(r)) for r in rows}


def _upsert_sql(table: str, columns: list[str], key: str, merge: dict[str, str] | None = None) -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = {(merge or {}).get(c, f'EXCLUDED.{c}')}" for c in columns if c != key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _insert_new_sql(table: str, columns: list[str]) -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"


_EXECUTION_COLUMNS = list(ExecutionRow.__struct_fields__)
_KEEP_IF_NULL = {
    c: f"COALESCE(EXCLUDED.{c}, task_executions.{c})"
    for c in ("worker_id", "started_at", "completed_at", "duration_seconds", "error_message")
}
_SQL = {
    "tasks": _upsert_sql("tasks", _TASK_COLUMNS, "task_id"),
    "workers": _upsert_sql("workers", _WORKER_COLUMNS, "worker_id"),
    "task_executions": _upsert_sql("task_executions", _EXECUTION_COLUMNS, "execution_id", _KEEP_IF_NULL),
}


async def write_changes(conn: Connection, changes: Changes) -> None:
    """Upsert every row of the batch. Tasks go first: the other tables reference them."""
    if changes.tasks:
        await conn.executemany(_SQL["tasks"], [msgspec.structs.astuple(r) for r in changes.tasks.values()])
    if changes.workers:
        await conn.executemany(_SQL["workers"], [msgspec.structs.astuple(r) for r in changes.workers.values()])
    if changes.executions:
        await conn.executemany(
            _SQL["task_executions"],
            [
                _with_decimal(msgspec.structs.astuple(r), _EXECUTION_COLUMNS.index("duration_seconds"))
                for r in changes.executions.values()
            ],
        )
    for table, key, rows in (
        ("task_results", "task_id", changes.results.values()),
        ("dead_letter_queue", None, changes.dead_letters.values()),
        ("task_logs", None, changes.logs.values()),
    ):
        batch = [msgspec.structs.astuple(r) for r in rows]
        if not batch:
            continue
        columns = list(type(next(iter(rows))).__struct_fields__)
        sql = _upsert_sql(table, columns, key) if key else _insert_new_sql(table, columns)
        await conn.executemany(sql, batch)
    await mark_requeued(conn, changes.requeued)


async def mark_requeued(conn: Connection, requeued: dict[UUID, datetime]) -> None:
    if requeued:
        await conn.executemany(
            "UPDATE dead_letter_queue SET requeued_at = $2 WHERE task_id = $1 AND requeued_at IS NULL",
            list(requeued.items()),
        )


async def purge_dead_letters(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Retention of the DLQ read model (the events stay in the archive)."""
    status: str = await pool.execute("DELETE FROM dead_letter_queue WHERE moved_at < now() - $1::interval", older_than)
    return int(status.split()[-1])


def _with_decimal(row: tuple[object, ...], index: int) -> tuple[object, ...]:
    value = row[index]
    if value is None:
        return row
    return (*row[:index], Decimal(str(value)), *row[index + 1 :])
