"""What the REST client raises: the gateway's refusals, typed by status."""

from __future__ import annotations

from typing import Any

from taskflow.errors import TaskFlowError


class ApiError(TaskFlowError):
    """The gateway answered with an error: ``status``, its ``detail`` (naming the field
    for a 422) and ``extra`` (per-field details), and the request id to quote."""

    def __init__(self, status: int, detail: str, extra: Any = None, request_id: str | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.extra = extra
        self.request_id = request_id


class NotFound(ApiError):
    """404: no such task, or not yours."""


class Conflict(ApiError):
    """409: the task is not in a state for this (cancel after it ended, retry before)."""


class Invalid(ApiError):
    """422: a field refused; ``detail`` names it."""


class RateLimited(ApiError):
    """429: wait ``retry_after`` seconds."""

    def __init__(self, status: int, detail: str, extra: Any, request_id: str | None, retry_after: float) -> None:
        super().__init__(status, detail, extra, request_id)
        self.retry_after = retry_after


class Unauthorized(ApiError):
    """401 (no, bad or expired token) or 403 (a role that may not do this)."""


def error_for(status: int, body: Any, request_id: str | None, retry_after: str | None) -> ApiError:
    detail = str(body.get("detail", "")) if isinstance(body, dict) else str(body)
    extra = body.get("extra") if isinstance(body, dict) else None
    if status == 429:
        return RateLimited(status, detail, extra, request_id, float(retry_after or 1))
    kind = {404: NotFound, 409: Conflict, 422: Invalid, 401: Unauthorized, 403: Unauthorized}.get(status, ApiError)
    return kind(status, detail, extra, request_id)
