"""Operator actions on one task: cancel and retry. Each is an event first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import msgspec
from litestar.exceptions import HTTPException, NotFoundException
from litestar.status_codes import HTTP_409_CONFLICT

from taskflow.events import (
    Envelope,
    EventDecodeError,
    OperatorActed,
    TaskCancelled,
    TaskCancelRequested,
    TaskQueued,
    TaskSubmitted,
    decode,
)
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.queries import get_task_view, submitted_event
from taskflow.streams.marker import STATE_OF_STATUS


class CancelAnswer(msgspec.Struct, kw_only=True):
    task_id: UUID
    # CANCELLED: it will never run. CANCELLING: it is running; its worker stops it (<= 2 s).
    status: Literal["CANCELLED", "CANCELLING"]
    event_id: str


class RetryAnswer(msgspec.Struct, kw_only=True):
    task_id: UUID
    status: Literal["PENDING"]
    event_id: str


def _envelope(task_id: UUID, principal: Principal, correlation_id: str, request_id: str | None) -> Envelope:
    return {
        "request_id": request_id,
        "aggregate_id": str(task_id),
        "occurred_at": datetime.now(UTC),
        "correlation_id": correlation_id,
        "causation_id": None,
        "traceparent": None,
        "actor": principal.sub,
    }


async def cancel_task(
    ctx: GatewayContext, principal: Principal, task_id: UUID, request_id: str | None = None, reason: str = ""
) -> CancelAnswer:
    view = await get_task_view(ctx, task_id, principal)
    if view is None:
        raise NotFoundException(f"task {task_id} not found")
    envelope = _envelope(task_id, principal, view.correlation_id, request_id)
    why = f"cancelled by {principal.sub}" + (f": {reason}" if reason else "")
    outcome, event_id = await ctx.canceller.cancel(
        str(task_id),
        cancelled=TaskCancelled(**envelope, reason=why),
        requested=TaskCancelRequested(**envelope, reason=why),
        audit=OperatorActed(**envelope, action="cancel", target_kind="task", reason=reason),
    )
    if outcome == "cancelled":
        return CancelAnswer(task_id=task_id, status="CANCELLED", event_id=event_id)
    if outcome == "cancelling":
        return CancelAnswer(task_id=task_id, status="CANCELLING", event_id=event_id)
    state = outcome.removeprefix("terminal:") if outcome.startswith("terminal:") else view.status
    raise HTTPException(status_code=HTTP_409_CONFLICT, detail=f"task {task_id} has already ended ({state})")


async def retry_task(
    ctx: GatewayContext,
    principal: Principal,
    task_id: UUID,
    request_id: str | None = None,
    reason: str = "",
    action: Literal["retry", "requeue"] = "retry",
) -> RetryAnswer:
    """Run a FAILED, TIMEOUT or CANCELLED task again from its original submission
    (``action``: a retry of the task, or a requeue from the dead-letter queue)."""
    view = await get_task_view(ctx, task_id, principal)
    if view is None:
        raise NotFoundException(f"task {task_id} not found")
    submitted = await submitted_event(ctx, task_id) or await _archived_submission(ctx, task_id)
    if submitted is None:
        raise NotFoundException(f"task {task_id} has no submission on record")
    envelope = _envelope(task_id, principal, view.correlation_id, request_id)
    outcome, detail = await ctx.scripts.requeue(
        submitted=submitted,
        queued=TaskQueued(**envelope, reason="requeued"),
        audit=OperatorActed(**envelope, action=action, target_kind="task", reason=reason),
        marker_ttl_seconds=ctx.settings.idempotency_ttl_seconds,
        projected_state=STATE_OF_STATUS.get(view.status, "pending"),
    )
    if outcome != "requeued":
        raise HTTPException(
            status_code=HTTP_409_CONFLICT,
            detail=f"task {task_id} is {detail}; only failed, timed-out or cancelled tasks can be retried",
        )
    return RetryAnswer(task_id=task_id, status="PENDING", event_id=detail)


async def _archived_submission(ctx: GatewayContext, task_id: UUID) -> TaskSubmitted | None:
    row = await ctx.pool.fetchrow(
        "SELECT event_id, payload FROM event_archive WHERE aggregate_id = $1 AND event_type = 'task.submitted' "
        "ORDER BY partition, id_ms, id_seq LIMIT 1",
        str(task_id),
    )
    if row is None:
        return None
    try:
        event = decode(row["event_id"], row["payload"].encode())
    except EventDecodeError:
        return None
    return event if isinstance(event, TaskSubmitted) else None
