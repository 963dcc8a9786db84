"""SQL for the projector: read stored rows, write a batch's rows, archive, checkpoint.

Every function takes a connection inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeAlias
from uuid import UUID

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from taskflow.archive import PROJECTION
from taskflow.errors import TaskFlowError
from taskflow.projections.batch import Changes
from taskflow.projections.campaigns import CampaignChanges
from taskflow.projections.quarantine import QuarantineRecord
from taskflow.projections.rows import (
    AuditRow,
    CampaignRow,
    DeadLetterRow,
    ExecutionRow,
    LogRow,
    RecipientRow,
    ResultRow,
    TaskRow,
    WorkerRow,
)

# A plain connection or one borrowed from a pool: the functions below take either.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
StreamId = tuple[int, int]


def parse_stream_id(event_id: str) -> StreamId:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class ArchiveRecord(msgspec.Struct, frozen=True, array_like=True, gc=False):
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


class FencedOut(TaskFlowError):
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


async def archived_up_to(pool: asyncpg.Pool, partitions: range) -> dict[int, StreamId]:
    """Each partition's checkpoint: the archive holds every event up to it, committed in the
    same transaction (invariant 4). A partition without a row is absent: nothing archived."""
    rows = await pool.fetch(
        "SELECT partition, last_ms, last_seq FROM projection_checkpoints "
        "WHERE projection = $1 AND partition = ANY($2::int[])",
        PROJECTION,
        list(partitions),
    )
    return {int(r["partition"]): (int(r["last_ms"]), int(r["last_seq"])) for r in rows}


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


class _Upsert(msgspec.Struct, frozen=True):
    """How one table takes a batch: COPY into a session-local staging table (binary, one
    round trip), then one ``INSERT … SELECT … ON CONFLICT`` from it. Row by row, PostgreSQL
    spent about twice the CPU per row (docs/benchmarks.md)."""

    table: str
    columns: list[str]
    sql: str

    @property
    def stage(self) -> str:
        return f"stage_{self.table}"


def _upsert(table: str, row: type[msgspec.Struct], key: str | None, merge: dict[str, str] | None = None) -> _Upsert:
    """With ``key``, an upsert on it; without, rows already there are kept as they are.
    The columns are the row's fields (tests/projections check them against tables.py)."""
    columns = list(row.__struct_fields__)
    names = ", ".join(columns)
    sql = f"INSERT INTO {table} ({names}) SELECT {names} FROM stage_{table} "
    if key is None:
        sql += "ON CONFLICT DO NOTHING"
    else:
        updates = ", ".join(f"{c} = {(merge or {}).get(c, f'EXCLUDED.{c}')}" for c in columns if c != key)
        sql += f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    return _Upsert(table, columns, sql)


_KEEP_IF_NULL = {
    c: f"COALESCE(EXCLUDED.{c}, task_executions.{c})"
    for c in ("worker_id", "started_at", "completed_at", "duration_seconds", "error_message")
}
_TASKS = _upsert("tasks", TaskRow, "task_id")
_WORKERS = _upsert("workers", WorkerRow, "worker_id")
_EXECUTIONS = _upsert("task_executions", ExecutionRow, "execution_id", _KEEP_IF_NULL)
_RESULTS = _upsert("task_results", ResultRow, "task_id")
_DEAD_LETTERS = _upsert("dead_letter_queue", DeadLetterRow, None)
_LOGS = _upsert("task_logs", LogRow, None)
_AUDIT = _upsert("audit_log", AuditRow, None)
# A campaign and each recipient are created by one event each: a row already there is
# the same one (its changes come as updates, below).
_CAMPAIGNS = _upsert("campaigns", CampaignRow, None)
_RECIPIENTS = _upsert("email_recipients", RecipientRow, None)
_DURATION = _EXECUTIONS.columns.index("duration_seconds")


async def write_changes(conn: Connection, changes: Changes) -> None:
    """Write every row of the batch. Tasks go first: the other tables reference them.

    Rows of tasks new in this batch are COPied straight into their tables; the others
    go through a staging table and an upsert (about 40% more PostgreSQL CPU per row)."""
    new = changes.new_tasks
    executions = [_numeric(t, _DURATION) for t in _tuples(changes.executions.values())]
    results = _tuples(changes.results.values())
    task_of_execution, task_of_result = _EXECUTIONS.columns.index("task_id"), _RESULTS.columns.index("task_id")
    inserts = [
        (_TASKS, _tuples(r for k, r in changes.tasks.items() if k in new)),
        (_EXECUTIONS, [t for t in executions if t[task_of_execution] in new]),
        (_RESULTS, [t for t in results if t[task_of_result] in new]),
    ]
    upserts = [
        (_TASKS, _tuples(r for k, r in changes.tasks.items() if k not in new)),
        (_WORKERS, _tuples(changes.workers.values())),
        (_EXECUTIONS, [t for t in executions if t[task_of_execution] not in new]),
        (_RESULTS, [t for t in results if t[task_of_result] not in new]),
        (_DEAD_LETTERS, _tuples(changes.dead_letters.values())),
        (_LOGS, _tuples(changes.logs.values())),
        (_AUDIT, _tuples(changes.audit.values())),
        (_CAMPAIGNS, _tuples(changes.campaigns.campaigns.values())),
        (_RECIPIENTS, _tuples(changes.campaigns.recipients.values())),
    ]
    # First: only rows stored before this batch may be closed by its requeues.
    await mark_requeued(conn, changes.requeued)
    await quarantine(conn, changes.quarantined)
    for upsert, rows in inserts:
        if rows:
            await conn.copy_records_to_table(upsert.table, records=rows, columns=upsert.columns)
    await _upsert_staged(conn, [(upsert, rows) for upsert, rows in upserts if rows])
    # After the inserts: an update names a row stored before the batch.
    await update_campaigns(conn, changes.campaigns)


async def insert_all(conn: Connection, changes: Changes) -> None:
    """Every row of ``changes`` into EMPTY tables (a rebuild): COPY alone, no conflict
    to check, and no key needed yet (they are added after the load)."""
    tables = [
        (_TASKS, _tuples(changes.tasks.values())),
        (_WORKERS, _tuples(changes.workers.values())),
        (_EXECUTIONS, [_numeric(t, _DURATION) for t in _tuples(changes.executions.values())]),
        (_RESULTS, _tuples(changes.results.values())),
        (_DEAD_LETTERS, _tuples(changes.dead_letters.values())),
        (_LOGS, _tuples(changes.logs.values())),
        (_AUDIT, _tuples(changes.audit.values())),
        (_CAMPAIGNS, _tuples(changes.campaigns.campaigns.values())),
        (_RECIPIENTS, _tuples(changes.campaigns.recipients.values())),
    ]
    for upsert, rows in tables:
        if rows:
            await conn.copy_records_to_table(upsert.table, records=rows, columns=upsert.columns)
    # Every row was folded in memory, so updates are left only for events of a campaign
    # that was never created; they change nothing, as live.
    await update_campaigns(conn, changes.campaigns)


async def update_campaigns(conn: Connection, changes: CampaignChanges) -> None:
    """Apply the batch's updates of stored campaign and recipient rows (the SQL twins of
    ``campaigns.applied_to_campaign`` and ``applied_to_recipient``)."""
    if changes.campaign_updates:
        u = list(changes.campaign_updates.values())
        await conn.execute(
            "UPDATE campaigns AS c SET status = COALESCE(u.status, c.status), "
            "started_at = COALESCE(u.started_at, c.started_at), "
            "completed_at = COALESCE(u.completed_at, c.completed_at), "
            "sent_count = c.sent_count + u.sent_delta, failed_count = c.failed_count + u.failed_delta "
            "FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::int[]) "
            "AS u(campaign_id, status, started_at, completed_at, sent_delta, failed_delta) "
            "WHERE c.campaign_id = u.campaign_id",
            [x.campaign_id for x in u],
            [x.status for x in u],
            [x.started_at for x in u],
            [x.completed_at for x in u],
            [x.sent_delta for x in u],
            [x.failed_delta for x in u],
        )
    if changes.recipient_updates:
        r = list(changes.recipient_updates.values())
        await conn.execute(
            "UPDATE email_recipients AS r SET status = u.status, sent_at = COALESCE(u.sent_at, r.sent_at), "
            "task_id = COALESCE(u.task_id, r.task_id), "
            "error_message = CASE WHEN u.clear_errors THEN u.error_message "
            "ELSE COALESCE(u.error_message, r.error_message) END, "
            "bounce_reason = CASE WHEN u.clear_errors THEN u.bounce_reason "
            "ELSE COALESCE(u.bounce_reason, r.bounce_reason) END "
            "FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::uuid[], $5::text[], $6::text[], $7::bool[]) "
            "AS u(recipient_id, status, sent_at, task_id, error_message, bounce_reason, clear_errors) "
            "WHERE r.recipient_id = u.recipient_id",
            [x.recipient_id for x in r],
            [x.status for x in r],
            [x.sent_at for x in r],
            [x.task_id for x in r],
            [x.error_message for x in r],
            [x.bounce_reason for x in r],
            [x.clear_errors for x in r],
        )


async def _upsert_staged(conn: Connection, writes: list[tuple[_Upsert, list[tuple[object, ...]]]]) -> None:
    if not writes:
        return
    # Temporary tables live as long as the connection; their rows only as long as the
    # transaction, so nothing staged can leak into the next batch.
    await conn.execute(
        "".join(f"CREATE TEMP TABLE IF NOT EXISTS {u.stage} (LIKE {u.table}) ON COMMIT DELETE ROWS;" for u, _ in writes)
    )
    for upsert, rows in writes:
        await conn.copy_records_to_table(upsert.stage, records=rows, columns=upsert.columns)
        await conn.execute(upsert.sql)


def _tuples(rows: Iterable[msgspec.Struct]) -> list[tuple[object, ...]]:
    return [msgspec.structs.astuple(r) for r in rows]


def _numeric(row: tuple[object, ...], index: int) -> tuple[object, ...]:
    """asyncpg takes a Decimal, not a float, for a NUMERIC column."""
    value = row[index]
    if value is None:
        return row
    return (*row[:index], Decimal(str(value)), *row[index + 1 :])


_QUARANTINE_COLUMNS = list(QuarantineRecord.__struct_fields__)


async def quarantine(conn: Connection, records: list[QuarantineRecord]) -> None:
    """Keep entries that cannot be projected; a second copy of one (a worker reporting an
    entry twice) changes nothing."""
    if records:
        await conn.executemany(
            f"INSERT INTO quarantined_entries ({', '.join(_QUARANTINE_COLUMNS)}) "
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(_QUARANTINE_COLUMNS)))}) ON CONFLICT DO NOTHING",
            [msgspec.structs.astuple(r) for r in records],
        )


async def mark_requeued(conn: Connection, requeued: dict[UUID, datetime]) -> None:
    if requeued:
        await conn.execute(
            "UPDATE dead_letter_queue AS d SET requeued_at = r.at "
            "FROM unnest($1::uuid[], $2::timestamptz[]) AS r(task_id, at) "
            "WHERE d.task_id = r.task_id AND d.requeued_at IS NULL",
            list(requeued),
            list(requeued.values()),
        )


async def purge_dead_letters(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Retention of the DLQ read model (the events stay in the archive)."""
    status: str = await pool.execute("DELETE FROM dead_letter_queue WHERE moved_at < now() - $1::interval", older_than)
    return int(status.split()[-1])
