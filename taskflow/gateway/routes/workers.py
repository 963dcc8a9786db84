"""``/api/v1/workers``: the workers projection joined with their live heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.status_codes import HTTP_202_ACCEPTED

from taskflow.events import Envelope, OperatorActed, WorkerPaused, WorkerResumed
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import Caller, Ctx, GatewayContext, Reason, RequestId
from taskflow.streams.groups import append_events


class WorkerView(msgspec.Struct, kw_only=True):
    worker_id: UUID
    hostname: str | None
    # DEAD / STOPPED from the event log; otherwise the heartbeat's IDLE / ACTIVE / BUSY /
    # PAUSED, or the projection's last word when no heartbeat is live.
    status: str
    capacity: int
    current_load: int
    last_heartbeat: datetime | None
    registered_at: datetime
    stopped_at: datetime | None
    metadata: msgspec.Raw


class WorkerList(msgspec.Struct, kw_only=True):
    items: list[WorkerView]


class ControlAnswer(msgspec.Struct, kw_only=True):
    worker_id: UUID
    paused: bool
    event_id: str


async def _views(ctx: GatewayContext, worker_id: UUID | None) -> list[WorkerView]:
    columns = ", ".join(WorkerView.__struct_fields__)  # the view is the row, heartbeat merged in
    sql = f"SELECT {columns} FROM workers" + (" WHERE worker_id = $1" if worker_id else "")
    sql += " ORDER BY registered_at DESC"
    rows = await ctx.pool.fetch(sql, *([worker_id] if worker_id else []))
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.hgetall(ctx.keyspace.worker_heartbeat(row["worker_id"].hex))
        beats: list[dict[str, str]] = await pipe.execute() if rows else []
    return [_merge(row, beat) for row, beat in zip(rows, beats, strict=True)]


def _merge(row: asyncpg.Record, beat: dict[str, str]) -> WorkerView:
    status, load, last = row["status"], row["current_load"], row["last_heartbeat"]
    if beat and status not in ("DEAD", "STOPPED"):
        status, load = beat["status"], int(beat["load"])
        last = datetime.fromtimestamp(int(beat["last_heartbeat_ms"]) / 1000, tz=UTC)
    return WorkerView(
        **{
            **dict(row),
            "status": status,
            "current_load": load,
            "last_heartbeat": last,
            "metadata": msgspec.Raw((row["metadata"] or "{}").encode()),
        }
    )


class WorkerController(Controller):
    path = "/api/v1/workers"

    @get("/")
    async def list_workers(self, ctx: Ctx, principal: Caller) -> WorkerList:
        return WorkerList(items=await _views(ctx, None))

    @get("/{worker_id:uuid}")
    async def get_worker(self, ctx: Ctx, principal: Caller, worker_id: FromPath[UUID]) -> WorkerView:
        views = await _views(ctx, worker_id)
        if not views:
            raise NotFoundException(f"worker {worker_id} not found")
        return views[0]

    @post("/{worker_id:uuid}/pause", status_code=HTTP_202_ACCEPTED)
    async def pause(
        self, ctx: Ctx, principal: Caller, request_id: RequestId, worker_id: FromPath[UUID], reason: Reason = ""
    ) -> ControlAnswer:
        """It finishes what it holds and takes nothing new (admin only)."""
        return await _control(ctx, principal, worker_id, "pause", request_id, reason)

    @post("/{worker_id:uuid}/resume", status_code=HTTP_202_ACCEPTED)
    async def resume(
        self, ctx: Ctx, principal: Caller, request_id: RequestId, worker_id: FromPath[UUID], reason: Reason = ""
    ) -> ControlAnswer:
        return await _control(ctx, principal, worker_id, "resume", request_id, reason)


async def _control(
    ctx: GatewayContext,
    principal: Principal,
    worker_id: UUID,
    order: Literal["pause", "resume"],
    request_id: str,
    reason: str,
) -> ControlAnswer:
    if not principal.is_admin:
        raise PermissionDeniedException("pausing and resuming workers needs the admin role")
    views = await _views(ctx, worker_id)
    if not views:
        raise NotFoundException(f"worker {worker_id} not found")
    envelope: Envelope = {
        "aggregate_id": worker_id.hex,
        "occurred_at": datetime.now(UTC),
        "correlation_id": worker_id.hex,
        "causation_id": None,
        "traceparent": None,
        "actor": principal.sub,
        "request_id": request_id,
    }
    event = WorkerPaused(**envelope, reason=reason) if order == "pause" else WorkerResumed(**envelope, reason=reason)
    audit = OperatorActed(**envelope, action=order, target_kind="worker", reason=reason)
    # The events first: the log says who ordered it even if the flag write is lost.
    event_id, _ = await append_events(ctx.redis, ctx.keyspace, [event, audit])
    await ctx.redis.hset(ctx.keyspace.worker_control(worker_id.hex), "paused", "1" if order == "pause" else "0")  # type: ignore[misc]
    return ControlAnswer(worker_id=worker_id, paused=order == "pause", event_id=event_id)
