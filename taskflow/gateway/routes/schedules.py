"""Recurring schedules: created by ``POST /api/v1/tasks`` with ``cron``, listed and deleted
under ``/api/v1/schedules``. The live definitions are in Redis; their history is events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from taskflow import cron
from taskflow.events import ScheduleCreated, ScheduleDeleted
from taskflow.events.upcasters import priority_level
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import Caller, Ctx, GatewayContext
from taskflow.gateway.errors import invalid
from taskflow.streams.schedules import ScheduleDefinition, TaskTemplate, decode_schedule
from taskflow.submission.schema import TaskSubmission


class ScheduleView(msgspec.Struct, kw_only=True):
    schedule_id: UUID
    cron: str
    task_name: str
    kwargs: msgspec.Raw
    created_by: str | None
    next_run_at: datetime | None
    event_id: str


class ScheduleList(msgspec.Struct, kw_only=True):
    items: list[ScheduleView]


class ScheduleDeletedAnswer(msgspec.Struct, kw_only=True):
    schedule_id: UUID
    deleted: bool
    event_id: str


async def create_schedule(ctx: GatewayContext, submission: TaskSubmission, principal: Principal) -> ScheduleView:
    assert submission.cron is not None
    if not cron.is_valid(submission.cron):
        raise invalid("cron", f"{submission.cron!r} is not a cron expression (5 fields, or 6 with seconds)")
    if submission.scheduled_at is not None or submission.task_id is not None:
        field = "scheduled_at" if submission.scheduled_at is not None else "task_id"
        raise invalid(field, "cannot be combined with cron: each tick makes its own task")
    schedule_id = str(uuid4())
    now = datetime.now(UTC)
    first = cron.next_tick(submission.cron, now)
    template = TaskTemplate(
        task_name=submission.task_name,
        args=msgspec.Raw(msgspec.json.encode(submission.args)),
        kwargs=msgspec.Raw(msgspec.json.encode(submission.kwargs)),
        priority=submission.priority if isinstance(submission.priority, str) else priority_level(submission.priority),  # type: ignore[arg-type]
        max_retries=submission.max_retries,
        timeout_seconds=submission.timeout_seconds,
    )
    event = ScheduleCreated(
        aggregate_id=schedule_id,
        occurred_at=now,
        correlation_id=uuid4().hex,
        actor=principal.sub,
        cron=submission.cron,
        template=msgspec.Raw(msgspec.json.encode(template)),
        first_due=first,
    )
    definition = ScheduleDefinition(
        schedule_id=schedule_id, cron=submission.cron, template=template, created_by=principal.sub, created_event_id=""
    )
    event_id = await ctx.scripts.schedule_create(
        schedule_id=schedule_id,
        definition=msgspec.json.encode(definition),
        first_due_ms=int(first.timestamp() * 1000),
        created=event,
    )
    return _view(msgspec.structs.replace(definition, created_event_id=event_id), first.timestamp() * 1000)


def _view(definition: ScheduleDefinition, next_ms: float | None) -> ScheduleView:
    return ScheduleView(
        schedule_id=UUID(definition.schedule_id),
        cron=definition.cron,
        task_name=definition.template.task_name,
        kwargs=definition.template.kwargs,
        created_by=definition.created_by,
        next_run_at=datetime.fromtimestamp(next_ms / 1000, UTC) if next_ms is not None else None,
        event_id=definition.created_event_id,
    )


async def _all(ctx: GatewayContext) -> list[ScheduleView]:
    views = []
    for p in ctx.keyspace.all_partitions:
        definitions: dict[str, str] = await ctx.redis.hgetall(ctx.keyspace.cron_schedules(p))  # type: ignore[misc]
        if not definitions:
            continue
        scores: list[Any] = await ctx.redis.zmscore(ctx.keyspace.cron_due(p), list(definitions))
        views += [_view(decode_schedule(raw), score) for raw, score in zip(definitions.values(), scores, strict=True)]
    return sorted(views, key=lambda v: str(v.schedule_id))


class ScheduleController(Controller):
    path = "/api/v1/schedules"

    @get("/")
    async def list_schedules(self, ctx: Ctx, principal: Caller) -> ScheduleList:
        mine = [v for v in await _all(ctx) if principal.sees_all or v.created_by == principal.sub]
        return ScheduleList(items=mine)

    @delete("/{schedule_id:uuid}", status_code=200)
    async def delete_schedule(self, ctx: Ctx, principal: Caller, schedule_id: FromPath[UUID]) -> ScheduleDeletedAnswer:
        found = [v for v in await _all(ctx) if v.schedule_id == schedule_id]
        if not found or not (principal.is_admin or found[0].created_by == principal.sub):
            raise NotFoundException(f"schedule {schedule_id} not found")
        event = ScheduleDeleted(
            aggregate_id=str(schedule_id),
            occurred_at=datetime.now(UTC),
            correlation_id=uuid4().hex,
            actor=principal.sub,
            reason=f"deleted by {principal.sub}",
        )
        event_id = await ctx.scripts.schedule_delete(
            schedule_id=str(schedule_id),
            deleted=event,
        )
        if event_id is None:
            raise NotFoundException(f"schedule {schedule_id} not found")
        return ScheduleDeletedAnswer(schedule_id=schedule_id, deleted=True, event_id=event_id)
