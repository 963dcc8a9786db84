"""``/api/v1/tasks``: submit, list, read, history."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from taskflow.events import AnyEvent
from taskflow.gateway import intake, lifecycle, queries
from taskflow.gateway.context import Caller, Ctx, Reason, RequestId
from taskflow.gateway.lifecycle import CancelAnswer, RetryAnswer
from taskflow.gateway.parents import check_parents
from taskflow.gateway.routes.schedules import ScheduleView, create_schedule
from taskflow.gateway.schemas import (
    LogPage,
    TaskAccepted,
    TaskBatch,
    TaskBatchAccepted,
    TaskPage,
    TaskStatus,
    TaskView,
)
from taskflow.submission.intake import build_batch, build_intake, now_utc, validate_task, waiting_for_parents
from taskflow.submission.schema import TaskSubmission


class TaskController(Controller):
    path = "/api/v1/tasks"

    @post("/", status_code=HTTP_201_CREATED)
    async def submit_task(
        self,
        ctx: Ctx,
        principal: Caller,
        request_id: RequestId,
        data: JSONBody[TaskSubmission],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)] = None,
        traceparent: Annotated[str | None, HeaderParameter(name="traceparent", max_length=64)] = None,
    ) -> Response[TaskAccepted | ScheduleView]:
        validate_task(data, idempotency_key)
        if data.cron is not None:
            schedule = await create_schedule(ctx, data, principal)
            headers = {"Location": f"/api/v1/schedules/{schedule.schedule_id}"}
            return Response(schedule, status_code=HTTP_201_CREATED, headers=headers)
        built = build_intake(data, principal.sub, idempotency_key, traceparent, now_utc(), request_id)
        if data.depends_on and not await check_parents(ctx, principal, built.task_id, data.depends_on):
            # (Parents already complete, maybe long ago with their live state gone: no wait.)
            built = waiting_for_parents(built)
        accepted, replayed = await intake.submit(ctx, built)
        headers = {"Location": f"/api/v1/tasks/{accepted.task_id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(accepted, status_code=HTTP_201_CREATED, headers=headers)

    @post("/batch", status_code=HTTP_201_CREATED)
    async def submit_batch(
        self,
        ctx: Ctx,
        principal: Caller,
        request_id: RequestId,
        data: JSONBody[TaskBatch],
        traceparent: Annotated[str | None, HeaderParameter(name="traceparent", max_length=64)] = None,
    ) -> TaskBatchAccepted:
        """Up to 1,000 tasks in one request, appended in one pipeline. Every task is checked
        first: one that is refused is a 422 naming ``tasks[i].field``, and none is appended."""
        intakes = build_batch(data.tasks, principal.sub, traceparent, now_utc(), prefix="tasks", request_id=request_id)
        return TaskBatchAccepted(items=await intake.submit_batch(ctx, intakes))

    @get("/")
    async def list_tasks(
        self,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[TaskStatus | None] = None,
        task_name: FromQuery[str | None] = None,
        campaign_id: FromQuery[UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> TaskPage:
        flt = queries.TaskFilter(
            status=status, task_name=task_name, campaign_id=campaign_id, limit=limit, cursor=cursor
        )
        items, next_cursor = await queries.list_tasks(ctx, principal, flt)
        return TaskPage(items=items, next_cursor=next_cursor)

    @get("/{task_id:uuid}")
    async def get_task(self, ctx: Ctx, principal: Caller, task_id: FromPath[UUID]) -> TaskView:
        view = await queries.get_task_view(ctx, task_id, principal)
        if view is None:
            raise NotFoundException(f"task {task_id} not found")
        return view

    @get("/{task_id:uuid}/events")
    async def get_task_events(self, ctx: Ctx, principal: Caller, task_id: FromPath[UUID]) -> list[AnyEvent]:
        # Ownership first: the history of someone else's task is as hidden as the task.
        if await queries.get_task_view(ctx, task_id, principal) is None:
            raise NotFoundException(f"task {task_id} not found")
        return await queries.task_events(ctx, task_id)

    @get("/{task_id:uuid}/logs")
    async def get_task_logs(
        self,
        ctx: Ctx,
        principal: Caller,
        task_id: FromPath[UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> LogPage:
        """Lines the task's code wrote with ``current_task().log(...)``, oldest first."""
        if await queries.get_task_view(ctx, task_id, principal) is None:
            raise NotFoundException(f"task {task_id} not found")
        return LogPage(items=await queries.task_logs(ctx, task_id, limit))

    @delete("/{task_id:uuid}", status_code=HTTP_200_OK)
    async def cancel_task(
        self, ctx: Ctx, principal: Caller, request_id: RequestId, task_id: FromPath[UUID], reason: Reason = ""
    ) -> Response[CancelAnswer]:
        """Cancel: a PENDING/SCHEDULED task never runs (200); a RUNNING one is stopped
        within 2 s (202); an ended one is a 409. ``?reason=`` goes to the audit trail."""
        answer = await lifecycle.cancel_task(ctx, principal, task_id, request_id, reason)
        return Response(answer, status_code=HTTP_200_OK if answer.status == "CANCELLED" else HTTP_202_ACCEPTED)

    @post("/{task_id:uuid}/retry", status_code=HTTP_202_ACCEPTED)
    async def retry_task(
        self, ctx: Ctx, principal: Caller, request_id: RequestId, task_id: FromPath[UUID], reason: Reason = ""
    ) -> RetryAnswer:
        """Run a FAILED, TIMEOUT or CANCELLED task again; 409 for any other state.
        ``?reason=`` goes to the audit trail."""
        return await lifecycle.retry_task(ctx, principal, task_id, request_id, reason)
