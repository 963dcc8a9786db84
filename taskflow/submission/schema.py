"""What a producer sends: one task to run. Unknown fields are refused, so a misspelled
field is an error, not a silent default."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from taskflow.events import Priority
from taskflow.submission.errors import InvalidSubmission


class TaskSubmission(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    task_name: Annotated[str, Meta(min_length=1, max_length=255)]
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    # A level name, or the seed's integer 1-10 (higher = more urgent), mapped on intake.
    priority: Priority | Annotated[int, Meta(ge=1, le=10)] = "medium"
    max_retries: Annotated[int, Meta(ge=0, le=100)] = 5
    timeout_seconds: Annotated[int, Meta(ge=1, le=86_400)] = 300
    # With a timezone; a time in the past dispatches at once.
    scheduled_at: Annotated[datetime, Meta(tz=True)] | None = None
    # A recurring schedule instead of one task: each tick submits one (see /api/v1/schedules).
    cron: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    # Runs only after every parent COMPLETED; a parent that fails for good cancels it.
    depends_on: Annotated[list[UUID], Meta(max_length=100)] = msgspec.field(default_factory=list)
    task_id: UUID | None = None


# msgspec names the place inside a value as "... - at `$.priority`".
_AT = re.compile(r"^(?P<message>.*) - at `\$\.?(?P<path>[^`]*)`$", re.DOTALL)


def submission_of(fields: dict[str, Any]) -> TaskSubmission:
    """A ``TaskSubmission`` from Python values (the producer's keyword arguments), checked
    as the gateway checks a body: ``InvalidSubmission`` names the field."""
    try:
        return msgspec.convert(fields, TaskSubmission)
    except msgspec.ValidationError as e:
        found = _AT.match(str(e))
        if found is None:
            raise InvalidSubmission("submission", str(e)) from None
        raise InvalidSubmission(found["path"] or "submission", found["message"]) from None
