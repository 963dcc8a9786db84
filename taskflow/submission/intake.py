"""Turning a submission into ``TaskSubmitted``: its checks, its id, its fingerprint. Pure:
no I/O, the caller's clock and identity passed in, so every producer decides alike."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from taskflow.events import TaskSubmitted
from taskflow.events.upcasters import priority_level
from taskflow.ids import new_uuid
from taskflow.storable import NUL_REFUSED, json_nul_path, nul_path
from taskflow.streams.dispatch import INITIAL_STATUS, InitialStatus, dispatch_mode
from taskflow.streams.submit import SubmitOutcome
from taskflow.submission.errors import IdempotencyConflict, InvalidSubmission, SubmissionError, TaskIdTaken
from taskflow.submission.schema import TaskSubmission
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

    @property
    def status(self) -> InitialStatus:
        """What the task is once appended: PENDING, SCHEDULED or WAITING."""
        return INITIAL_STATUS[dispatch_mode(self.event)]


def decide_task_id(submission: TaskSubmission, actor: str, idempotency_key: str | None) -> UUID:
    """The client's id, else one derived from the Idempotency-Key (so a retry maps to the
    same task), else a fresh one."""
    if submission.task_id is not None:
        return submission.task_id
    if idempotency_key:
        return uuid5(_IDEMPOTENCY_SPACE, f"{actor}\x00{idempotency_key}")
    return new_uuid()


def validate_task(submission: TaskSubmission, idempotency_key: str | None = None) -> None:
    """``InvalidSubmission`` naming the field for what cannot be stored, is too large, or
    does not fit the task function; cheapest checks first."""
    args, kwargs = _json.encode(submission.args), _json.encode(submission.kwargs)
    _refuse_nul(submission, args, kwargs, idempotency_key)
    if len(args) + len(kwargs) > MAX_ARGUMENTS_BYTES:
        field = "kwargs" if len(kwargs) >= len(args) else "args"
        raise InvalidSubmission(
            field,
            f"args and kwargs encode to {len(args) + len(kwargs)} bytes, "
            f"more than the limit of {MAX_ARGUMENTS_BYTES} bytes",
        )
    try:
        definition = get_task(submission.task_name)
    except UnknownTaskError:
        raise InvalidSubmission("task_name", f"unknown task {submission.task_name!r}") from None
    problem = definition.check_arguments(submission.args, submission.kwargs)
    if problem is not None:
        raise InvalidSubmission(problem.path, problem.message)
    if submission.depends_on and submission.scheduled_at is not None:
        raise InvalidSubmission("scheduled_at", "cannot be combined with depends_on (not supported yet)")


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
        raise InvalidSubmission(path, NUL_REFUSED, source="header" if path == "Idempotency-Key" else "body")


def build_intake(
    submission: TaskSubmission,
    actor: str,
    idempotency_key: str | None,
    traceparent: str | None,
    now: datetime,
    request_id: str | None = None,
) -> Intake:
    task_id = decide_task_id(submission, actor, idempotency_key)
    priority = submission.priority if isinstance(submission.priority, str) else priority_level(submission.priority)
    event = TaskSubmitted(
        aggregate_id=str(task_id),
        occurred_at=now,
        correlation_id=new_uuid().hex,
        traceparent=traceparent,
        actor=actor,
        request_id=request_id,
        task_name=submission.task_name,
        args=msgspec.Raw(_json.encode(submission.args)),
        kwargs=msgspec.Raw(_json.encode(submission.kwargs)),
        priority=priority,  # type: ignore[arg-type]
        max_retries=submission.max_retries,
        timeout_seconds=submission.timeout_seconds,
        scheduled_at=submission.scheduled_at,
        depends_on=tuple(str(parent) for parent in submission.depends_on),
        idempotency_key=idempotency_key,
    )
    fingerprint = hashlib.sha256(_canonical.encode([actor, submission])).hexdigest()
    return Intake(task_id=task_id, fingerprint=fingerprint, event=event, client_chose_id=submission.task_id is not None)


def build_batch(
    submissions: Sequence[TaskSubmission],
    actor: str,
    traceparent: str | None,
    now: datetime,
    *,
    prefix: str = "",
    request_id: str | None = None,
) -> list[Intake]:
    """Check and build every submission of a batch before any is appended: the first
    refusal names its index (``tasks[3].kwargs.seconds``) and nothing is taken. A batch
    holds plain tasks: a cron schedule or a dependency is submitted on its own."""
    intakes = []
    for index, submission in enumerate(submissions):
        try:
            validate_task(submission)
            if submission.cron is not None:
                raise InvalidSubmission("cron", "a schedule is created on its own, not in a batch")
            if submission.depends_on:
                raise InvalidSubmission("depends_on", "a task with parents is submitted on its own, not in a batch")
        except InvalidSubmission as e:
            raise InvalidSubmission(f"{prefix}[{index}].{e.field}", e.message) from None
        intakes.append(build_intake(submission, actor, None, traceparent, now, request_id))
    return intakes


def waiting_for_parents(intake: Intake) -> Intake:
    """The same submission, held until its parents complete (the coordinator releases it)."""
    return msgspec.structs.replace(intake, event=msgspec.structs.replace(intake.event, waits_for_parents=True))


def refusal_of(intake: Intake, outcome: SubmitOutcome) -> SubmissionError | None:
    """Why an append that found the id already taken is refused; None for a new task or
    an identical resubmission (which answers with the first one)."""
    if outcome.created or outcome.fingerprint == intake.fingerprint:
        return None
    if intake.client_chose_id:
        return TaskIdTaken(str(intake.task_id))
    return IdempotencyConflict()


def now_utc() -> datetime:
    return datetime.now(UTC)
