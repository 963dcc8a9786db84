"""Turning a validated submission into ``TaskSubmitted`` + its dispatch entry (invariants 2, 3)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import msgspec
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_409_CONFLICT

from taskflow.events import TaskSubmitted
from taskflow.events.upcasters import priority_level
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.errors import invalid
from taskflow.gateway.request_text import NUL_REFUSED
from taskflow.gateway.schemas import TaskAccepted, TaskStatus, TaskSubmission
from taskflow.storable import json_nul_path, nul_path
from taskflow.streams.dispatch import INITIAL_STATUS, dispatch_mode
from taskflow.tasks import UnknownTaskError, get_task

_IDEMPOTENCY_SPACE = uuid5(NAMESPACE_URL, "https://taskflow.dev/idempotency-key")
_canonical = msgspec.json.Encoder(order="sorted")
_json = msgspec.json.Encoder()
# The largest a task's arguments may be, args and kwargs encoded together: they travel in
# every event of the task and in its row, so they carry data, not files.
MAX_ARGUMENTS_BYTES = 256 * 1024


class Intake(msgspec.Struct, frozen=True):
    """A submission with everything decided: its id, fingerprint and event."""

    task_id: UUID
    fingerprint: str
    event: TaskSubmitted
    client_chose_id: bool


def decide_task_id(submission: TaskSubmission, principal: Principal, idempotency_key: str | None) -> UUID:
    """The client's id, else one derived from the Idempotency-Key (so a retry maps to the
    same task), else a fresh one."""
    if submission.task_id is not None:
        return submission.task_id
    if idempotency_key:
        return uuid5(_IDEMPOTENCY_SPACE, f"{principal.sub}\x00{idempotency_key}")
    return uuid4()


def validate_task(submission: TaskSubmission, idempotency_key: str | None = None) -> None:
    """422 naming the field for what cannot be stored, is too large, or does not fit the
    task function; cheapest checks first."""
    args, kwargs = _json.encode(submission.args), _json.encode(submission.kwargs)
    _refuse_nul(submission, args, kwargs, idempotency_key)
    if len(args) + len(kwargs) > MAX_ARGUMENTS_BYTES:
        field = "kwargs" if len(kwargs) >= len(args) else "args"
        raise invalid(
            field,
            f"args and kwargs encode to {len(args) + len(kwargs)} bytes, "
            f"more than the limit of {MAX_ARGUMENTS_BYTES} bytes",
        )
    try:
        definition = get_task(submission.task_name)
    except UnknownTaskError:
        raise invalid("task_name", f"unknown task {submission.task_name!r}") from None
    problem = definition.check_arguments(submission.args, submission.kwargs)
    if problem is not None:
        raise invalid(problem.path, problem.message)


def _refuse_nul(submission: TaskSubmission, args: bytes, kwargs: bytes, idempotency_key: str | None) -> None:
    """PostgreSQL text cannot hold a NUL, and one in an event would stop the projector
    (ADR 0014): refuse it in every string of the submission, dict keys included."""
    path = (
        nul_path(submission.task_name, "task_name")
        or json_nul_path(args, "args")
        or json_nul_path(kwargs, "kwargs")
        or nul_path(submission.cron, "cron")
        or nul_path(idempotency_key, "Idempotency-Key")
    )
    if path is not None:
        source = "header" if path == "Idempotency-Key" else "body"
        raise invalid(path, NUL_REFUSED, source=source)


def build_intake(
    submission: TaskSubmission,
    principal: Principal,
    idempotency_key: str | None,
    traceparent: str | None,
    now: datetime,
) -> Intake:
    task_id = decide_task_id(submission, principal, idempotency_key)
    priority = submission.priority if isinstance(submission.priority, str) else priority_level(submission.priority)
    event = TaskSubmitted(
        aggregate_id=str(task_id),
        occurred_at=now,
        correlation_id=uuid4().hex,
        traceparent=traceparent,
        actor=principal.sub,
        task_name=submission.task_name,
        args=msgspec.Raw(msgspec.json.encode(submission.args)),
        kwargs=msgspec.Raw(msgspec.json.encode(submission.kwargs)),
        priority=priority,  # type: ignore[arg-type]
        max_retries=submission.max_retries,
        timeout_seconds=submission.timeout_seconds,
        scheduled_at=submission.scheduled_at,
        depends_on=tuple(str(parent) for parent in submission.depends_on),
        idempotency_key=idempotency_key,
    )
    fingerprint = hashlib.sha256(_canonical.encode([principal.sub, submission])).hexdigest()
    return Intake(task_id=task_id, fingerprint=fingerprint, event=event, client_chose_id=submission.task_id is not None)


def waiting_for_parents(intake: Intake) -> Intake:
    """The same submission, held until its parents complete (the coordinator releases it)."""
    return msgspec.structs.replace(intake, event=msgspec.structs.replace(intake.event, waits_for_parents=True))


async def submit(ctx: GatewayContext, intake: Intake) -> tuple[TaskAccepted, bool]:
    """Append atomically; returns the answer and whether it replays an earlier submit."""
    if intake.client_chose_id or intake.event.idempotency_key:
        await _refuse_if_projected_elsewhere(ctx, intake)
    outcome = await ctx.submitter.submit(
        intake.event, fingerprint=intake.fingerprint, marker_ttl_seconds=ctx.settings.idempotency_ttl_seconds
    )
    if not outcome.created and outcome.fingerprint != intake.fingerprint:
        raise _conflict(intake)
    status: TaskStatus = INITIAL_STATUS[dispatch_mode(intake.event)]
    return TaskAccepted(task_id=intake.task_id, status=status, event_id=outcome.event_id), not outcome.created


async def _refuse_if_projected_elsewhere(ctx: GatewayContext, intake: Intake) -> None:
    """The Redis marker forgets an id after the idempotency TTL; the projection does not.
    While the marker lives the submit script decides; after it, a known id is taken."""
    task_id = str(intake.task_id)
    if await ctx.redis.exists(ctx.keyspace.task_marker(task_id)):
        return
    if await ctx.pool.fetchval("SELECT EXISTS (SELECT 1 FROM tasks WHERE task_id = $1)", intake.task_id):
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail=f"task_id {task_id} is already taken")


def _conflict(intake: Intake) -> Exception:
    if intake.client_chose_id:
        return HTTPException(status_code=HTTP_409_CONFLICT, detail=f"task_id {intake.task_id} is already taken")
    return invalid("Idempotency-Key", "was already used with a different request body", source="header")


def now_utc() -> datetime:
    return datetime.now(UTC)
