"""Reads: projections from PostgreSQL, and the event itself while the projection lags."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from taskflow.events import AnyEvent, EventDecodeError, TaskSubmitted, decode
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.cursor import decode_cursor, encode_cursor
from taskflow.gateway.schemas import JSON_NULL, LogLine, Progress, TaskError, TaskView
from taskflow.projections.rows import TaskRow
from taskflow.projections.tasks import fold_task

_TASK_SELECT = """
SELECT t.*, r.result_data, r.error_type, r.error_message, r.stack_trace
FROM tasks t LEFT JOIN task_results r ON r.task_id = t.task_id
"""


class TaskFilter(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None = None
    task_name: str | None = None
    campaign_id: UUID | None = None
    limit: int = 50
    cursor: str | None = None


class TaskCursor(msgspec.Struct, array_like=True):
    """Where a page of tasks (or of dead letters) ended: its sort key."""

    created_at: datetime
    task_id: UUID


def _view(row: asyncpg.Record) -> TaskView:
    failed = row["error_type"] is not None or row["error_message"] is not None
    return TaskView(
        task_id=row["task_id"],
        task_name=row["task_name"],
        args=msgspec.Raw(row["task_args"].encode()),
        kwargs=msgspec.Raw(row["task_kwargs"].encode()),
        priority=row["priority_level"],
        status=row["status"],
        retry_count=row["retry_count"],
        max_retries=row["max_retries"],
        timeout_seconds=row["timeout_seconds"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        scheduled_at=row["scheduled_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        worker_id=row["worker_id"],
        created_by=row["created_by"],
        correlation_id=row["correlation_id"],
        campaign_id=row["campaign_id"],
        depends_on=list(row["depends_on"]),
        last_event_id=row["last_event_id"],
        progress=Progress(percent=row["progress_percent"], message=row["progress_message"])
        if row["progress_percent"] is not None
        else None,
        result=msgspec.Raw(row["result_data"].encode()) if row["result_data"] is not None else JSON_NULL,
        error=TaskError(type=row["error_type"], message=row["error_message"], traceback=row["stack_trace"])
        if failed
        else None,
    )


def view_of_row(row: TaskRow) -> TaskView:
    return TaskView(
        task_id=row.task_id,
        task_name=row.task_name,
        args=msgspec.Raw(row.task_args.encode()),
        kwargs=msgspec.Raw(row.task_kwargs.encode()),
        priority=row.priority_level,
        status=row.status,
        retry_count=row.retry_count,
        max_retries=row.max_retries,
        timeout_seconds=row.timeout_seconds,
        attempts=row.attempts,
        created_at=row.created_at,
        scheduled_at=row.scheduled_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        worker_id=row.worker_id,
        created_by=row.created_by,
        correlation_id=row.correlation_id,
        campaign_id=row.campaign_id,
        depends_on=row.depends_on,
        last_event_id=row.last_event_id,
    )


def visible_to(principal: Principal, created_by: str | None) -> bool:
    """Users see their own tasks; admins see all. A hidden task is a 404, not a 403."""
    return principal.sees_all or created_by == principal.sub


async def get_task_view(ctx: GatewayContext, task_id: UUID, principal: Principal) -> TaskView | None:
    row = await ctx.pool.fetchrow(_TASK_SELECT + " WHERE t.task_id = $1", task_id)
    if row is not None:
        return _view(row) if visible_to(principal, row["created_by"]) else None
    # Read-your-writes (invariant 9): the projection has not caught up, so answer from
    # the TaskSubmitted event the submit just wrote.
    submitted = await submitted_event(ctx, task_id)
    if submitted is None or not visible_to(principal, submitted.actor):
        return None
    folded = fold_task(None, submitted)
    return view_of_row(folded) if folded is not None else None


async def submitted_event(ctx: GatewayContext, task_id: UUID) -> TaskSubmitted | None:
    """The task's TaskSubmitted from the stream, found through the submit marker."""
    return (await submitted_events(ctx, [task_id])).get(task_id)


async def submitted_events(ctx: GatewayContext, task_ids: list[UUID]) -> dict[UUID, TaskSubmitted]:
    """The TaskSubmitted of each task whose marker still lives, in two round trips
    whatever the number of tasks (the markers, then the events)."""
    ks = ctx.keyspace
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hget(ks.task_marker(str(task_id)), "event_id")
        event_ids: list[str | None] = await pipe.execute()
    known = [(task_id, event_id) for task_id, event_id in zip(task_ids, event_ids, strict=True) if event_id]
    if not known:
        return {}
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for task_id, event_id in known:
            pipe.xrange(ks.events_of(str(task_id)), min=event_id, max=event_id, count=1)
        answers: list[list[tuple[str, dict[str, str]]]] = await pipe.execute()
    found: dict[UUID, TaskSubmitted] = {}
    for (task_id, event_id), entries in zip(known, answers, strict=True):
        if not entries:
            continue
        try:
            event = decode(event_id, entries[0][1]["data"].encode())
        except (KeyError, EventDecodeError):
            continue
        if isinstance(event, TaskSubmitted):
            found[task_id] = event
    return found


async def list_tasks(ctx: GatewayContext, principal: Principal, flt: TaskFilter) -> tuple[list[TaskView], str | None]:
    where: list[str] = []
    params: list[object] = []

    def add(condition: str, value: object) -> None:
        params.append(value)
        where.append(condition.replace("?", f"${len(params)}"))

    if not principal.sees_all:
        add("t.created_by = ?", principal.sub)
    if flt.status:
        add("t.status = ?", flt.status)
    if flt.task_name:
        add("t.task_name = ?", flt.task_name)
    if flt.campaign_id:
        add("t.campaign_id = ?", flt.campaign_id)
    if flt.cursor:
        cursor = decode_cursor(flt.cursor, TaskCursor)
        params.extend([cursor.created_at, cursor.task_id])
        where.append(f"(t.created_at, t.task_id) < (${len(params) - 1}, ${len(params)})")
    params.append(flt.limit + 1)
    sql = (
        _TASK_SELECT
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY t.created_at DESC, t.task_id DESC LIMIT ${len(params)}"
    )
    rows = await ctx.pool.fetch(sql, *params)
    items = [_view(r) for r in rows[: flt.limit]]
    next_cursor = encode_cursor(TaskCursor(items[-1].created_at, items[-1].task_id)) if len(rows) > flt.limit else None
    return items, next_cursor


async def task_events(ctx: GatewayContext, task_id: UUID) -> list[AnyEvent]:
    """The task's history, oldest first: the archive, plus the submit event if the
    projector has not archived it yet."""
    rows = await ctx.pool.fetch(
        "SELECT event_id, payload FROM event_archive WHERE aggregate_id = $1 ORDER BY partition, id_ms, id_seq",
        str(task_id),
    )
    events = [decode(r["event_id"], r["payload"].encode()) for r in rows]
    if not events:
        submitted = await submitted_event(ctx, task_id)
        if submitted is not None:
            events.append(submitted)
    return events


async def task_logs(ctx: GatewayContext, task_id: UUID, limit: int) -> list[LogLine]:
    rows = await ctx.pool.fetch(
        "SELECT level, message, metadata, created_at FROM task_logs WHERE task_id = $1 "
        "ORDER BY created_at, log_id LIMIT $2",
        task_id,
        limit,
    )
    return [
        LogLine(
            level=r["level"],
            message=r["message"],
            metadata=msgspec.Raw((r["metadata"] or "null").encode()),
            created_at=r["created_at"],
        )
        for r in rows
    ]
