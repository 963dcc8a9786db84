"""``/api/v1/dlq``: the dead-letter queue, and putting its tasks back in line."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED
from msgspec import Meta

from taskflow.gateway import lifecycle
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import Caller, Ctx, GatewayContext, Reason, RequestId
from taskflow.gateway.cursor import decode_cursor, encode_cursor
from taskflow.gateway.lifecycle import RetryAnswer
from taskflow.gateway.queries import TaskCursor


class DeadLetterView(msgspec.Struct, kw_only=True):
    dlq_id: UUID
    task_id: UUID
    task_name: str
    failure_reason: str
    stack_trace: str | None
    total_attempts: int | None
    moved_at: datetime
    requeued_at: datetime | None
    task_data: msgspec.Raw


class DeadLetterPage(msgspec.Struct, kw_only=True):
    items: list[DeadLetterView]
    next_cursor: str | None


class BulkRequeue(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which entries to requeue; only entries not requeued yet are taken."""

    task_name: str | None = None
    moved_after: Annotated[datetime, Meta(tz=True)] | None = None
    moved_before: Annotated[datetime, Meta(tz=True)] | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    # Why: kept in the audit trail (one OperatorActed per task requeued).
    reason: Annotated[str, Meta(max_length=500)] = ""


class Skipped(msgspec.Struct, kw_only=True):
    task_id: UUID
    reason: str


class BulkRequeueAnswer(msgspec.Struct, kw_only=True):
    requeued: list[RetryAnswer]
    skipped: list[Skipped]


_SELECT = """
SELECT d.dlq_id, d.task_id, t.task_name, d.failure_reason, d.stack_trace, d.total_attempts, d.moved_at,
       d.requeued_at, d.task_data
FROM dead_letter_queue d JOIN tasks t ON t.task_id = d.task_id
"""


Condition = tuple[str, tuple[object, ...]]  # SQL with "?" placeholders, and their values


async def _select(
    ctx: GatewayContext, principal: Principal, conditions: list[Condition], limit: int
) -> list[DeadLetterView]:
    if not principal.sees_all:
        conditions = [("t.created_by = ?", (principal.sub,)), *conditions]
    where, params = [], []
    for sql, values in conditions:
        for value in values:
            params.append(value)
            sql = sql.replace("?", f"${len(params)}", 1)
        where.append(sql)
    params.append(limit)
    query = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    query += f" ORDER BY d.moved_at DESC, d.dlq_id DESC LIMIT ${len(params)}"
    rows = await ctx.pool.fetch(query, *params)
    return [DeadLetterView(**{**dict(r), "task_data": msgspec.Raw(r["task_data"].encode())}) for r in rows]


class DeadLetterController(Controller):
    path = "/api/v1/dlq"

    @get("/")
    async def list_dead_letters(
        self,
        ctx: Ctx,
        principal: Caller,
        task_name: FromQuery[str | None] = None,
        requeued: FromQuery[bool | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> DeadLetterPage:
        conditions: list[Condition] = []
        if task_name:
            conditions.append(("t.task_name = ?", (task_name,)))
        if requeued is not None:
            conditions.append(("(d.requeued_at IS NOT NULL) = ?", (requeued,)))
        if cursor:
            after = decode_cursor(cursor, TaskCursor)
            conditions.append(("(d.moved_at, d.dlq_id) < (?, ?)", (after.created_at, after.task_id)))
        items = await _select(ctx, principal, conditions, limit + 1)
        page = items[:limit]
        next_cursor = encode_cursor(TaskCursor(page[-1].moved_at, page[-1].dlq_id)) if len(items) > limit else None
        return DeadLetterPage(items=page, next_cursor=next_cursor)

    @post("/{task_id:uuid}/requeue", status_code=HTTP_202_ACCEPTED)
    async def requeue_one(
        self, ctx: Ctx, principal: Caller, request_id: RequestId, task_id: FromPath[UUID], reason: Reason = ""
    ) -> RetryAnswer:
        """Run a dead-lettered task again; ``?reason=`` goes to the audit trail."""
        found = await _select(ctx, principal, [("d.task_id = ?", (task_id,))], 1)
        if not found:
            raise NotFoundException(f"task {task_id} is not in the dead-letter queue")
        return await lifecycle.retry_task(ctx, principal, task_id, request_id, reason, action="requeue")

    @post("/requeue", status_code=HTTP_202_ACCEPTED)
    async def requeue_many(
        self, ctx: Ctx, principal: Caller, request_id: RequestId, data: JSONBody[BulkRequeue]
    ) -> BulkRequeueAnswer:
        conditions: list[Condition] = [("d.requeued_at IS NULL", ())]
        if data.task_name:
            conditions.append(("t.task_name = ?", (data.task_name,)))
        if data.moved_after:
            conditions.append(("d.moved_at >= ?", (data.moved_after,)))
        if data.moved_before:
            conditions.append(("d.moved_at < ?", (data.moved_before,)))
        entries = await _select(ctx, principal, conditions, data.limit)
        answer = BulkRequeueAnswer(requeued=[], skipped=[])
        for task_id in dict.fromkeys(e.task_id for e in entries):
            try:
                answer.requeued.append(
                    await lifecycle.retry_task(ctx, principal, task_id, request_id, data.reason, action="requeue")
                )
            except HTTPException as e:
                answer.skipped.append(Skipped(task_id=task_id, reason=str(e.detail)))
        return answer
