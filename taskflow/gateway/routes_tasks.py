"""``/api/v1/tasks``: submit, list, read, history."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from taskflow.events import AnyEvent
from taskflow.gateway import intake, lifecycle, queries
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.errors import invalid
from taskflow.gateway.lifecycle import CancelAnswer, RetryAnswer
from taskflow.gateway.parents import check_parents
from taskflow.gateway.schedules import ScheduleView, create_schedule
from taskflow.gateway.schemas import LogPage, TaskAccepted, TaskPage, TaskStatus, TaskSubmission, TaskView

AuthedRequest = Request[Principal, str, State]


def _ctx(request: AuthedRequest) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


class TaskController(Controller):
    path = "/api/v1/tasks"

    @post("/", status_code=HTTP_201_CREATED)
    async def submit_task(
        self,
        request: AuthedRequest,
        data: JSONBody[TaskSubmission],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)] = None,
        traceparent: Annotated[str | None, HeaderParameter(name="traceparent", max_length=64)] = None,
    ) -> Response[TaskAccepted | ScheduleView]:
        intake.validate_task(data, idempotency_key)
        if data.cron is not None:
            schedule = await create_schedule(_ctx(request), data, request.user)
            headers = {"Location": f"/api/v1/schedules/{schedule.schedule_id}"}
            return Response(schedule, status_code=HTTP_201_CREATED, headers=headers)
        built = intake.build_intake(data, request.user, idempotency_key, traceparent, intake.now_utc())
        parents_done = False
        if data.depends_on:
            if data.scheduled_at is not None:
                raise invalid("scheduled_at", "cannot be combined with depends_on (not supported yet)")
            parents_done = await check_parents(_ctx(request), request.user, built.task_id, data.depends_on)
        if data.depends_on and not parents_done:
            # (Parents already complete, maybe long ago with their live state gone: no wait.)
            built = intake.waiting_for_parents(built)
        accepted, replayed = await intake.submit(_ctx(request), built)
        headers = {"Location": f"/api/v1/tasks/{accepted.task_id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(accepted, status_code=HTTP_201_CREATED, headers=headers)

    @get("/")
    async def list_tasks(
        self,
        request: AuthedRequest,
        status: FromQuery[TaskStatus | None] = None,
        task_name: FromQuery[str | None] = None,
        campaign_id: FromQuery[UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> TaskPage:
        flt = queries.TaskFilter(
            status=status, task_name=task_name, campaign_id=campaign_id, limit=limit, cursor=cursor
        )
        items, next_cursor = await queries.list_tasks(_ctx(request), request.user, flt)
        return TaskPage(items=items, next_cursor=next_cursor)

    @get("/{task_id:uuid}")
    async def get_task(self, request: AuthedRequest, task_id: FromPath[UUID]) -> TaskView:
        view = await queries.get_task_view(_ctx(request), task_id, request.user)
        if view is None:
            raise NotFoundException(f"task {task_id} not found")
        return view

    @get("/{task_id:uuid}/events")
    async def get_task_events(self, request: AuthedRequest, task_id: FromPath[UUID]) -> list[AnyEvent]:
        # Ownership first: the history of someone else's task is as hidden as the task.
        if await queries.get_task_view(_ctx(request), task_id, request.user) is None:
            raise NotFoundException(f"task {task_id} not found")
        return await queries.task_events(_ctx(request), task_id)

    @get("/{task_id:uuid}/logs")
    async def get_task_logs(
        self,
        request: AuthedRequest,
        task_id: FromPath[UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> LogPage:
        """Lines the task's code wrote with ``current_task().log(...)``, oldest first."""
        if await queries.get_task_view(_ctx(request), task_id, request.user) is None:
            raise NotFoundException(f"task {task_id} not found")
        return LogPage(items=await queries.task_logs(_ctx(request), task_id, limit))

    @delete("/{task_id:uuid}", status_code=HTTP_200_OK)
    async def cancel_task(self, request: AuthedRequest, task_id: FromPath[UUID]) -> Response[CancelAnswer]:
        """Cancel: a PENDING/SCHEDULED task never runs (200); a RUNNING one is stopped
        within 2 s (202); an ended one is a 409."""
        answer = await lifecycle.cancel_task(_ctx(request), request.user, task_id)
        return Response(answer, status_code=HTTP_200_OK if answer.status == "CANCELLED" else HTTP_202_ACCEPTED)

    @post("/{task_id:uuid}/retry", status_code=HTTP_202_ACCEPTED)
    async def retry_task(self, request: AuthedRequest, task_id: FromPath[UUID]) -> RetryAnswer:
        """Run a FAILED, TIMEOUT or CANCELLED task again; 409 for any other state."""
        return await lifecycle.retry_task(_ctx(request), request.user, task_id)
