"""One error shape for every response: ``{status_code, detail, extra?}``.

Litestar answers 400 when a body, query or path value does not decode (malformed JSON,
a wrong type, an unknown field); our contract says 422, so one handler converts every
400 and keeps the per-field list. Other client errors keep their status.

A dependency that does not answer (stalled, down, or cutting the connection) is a 503
with ``Retry-After`` naming it, never a 500: PostgreSQL calls raise
``DependencyUnavailable`` themselves (``bounded_pool``: asyncpg's timeout is a bare
``TimeoutError`` that could come from anywhere), while redis-py's own connection and
timeout errors name Redis already and are mapped here, in the handler map.

Any other exception is a bug: ``internal_error`` logs it once, with its traceback and the
request's method, path and id, and answers a plain 500 that leaks nothing. (Litestar logs
nothing itself: the app has ``logging_config=None``, as logging is ours.)
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import structlog
from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskflow.errors import TaskFlowError
from taskflow.gateway.request_id import request_id_of
from taskflow.submission.errors import InvalidSubmission, SubmissionError

log = structlog.get_logger()

Dependency = Literal["redis", "postgres"]


class GatewayError(TaskFlowError):
    """Root of gateway errors."""


class DependencyUnavailable(GatewayError):
    """Raised when Redis or PostgreSQL does not answer a call within
    ``TASKFLOW_DEPENDENCY_TIMEOUT_SECONDS``, refuses the connection or drops it mid-call.
    The request is answered 503 with ``Retry-After``; the cause is kept as ``__cause__``."""

    def __init__(self, dependency: Dependency, cause: BaseException) -> None:
        reason = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        super().__init__(f"{dependency} is unavailable ({reason})")
        self.dependency: Dependency = dependency


def dependency_unavailable(
    request: Request[Any, Any, Any],
    exc: DependencyUnavailable | RedisConnectionError | RedisTimeoutError | RedisReadOnlyError,
) -> Response[dict[str, Any]]:
    if isinstance(exc, DependencyUnavailable):
        error = exc
    else:
        error = DependencyUnavailable("redis", exc)
        error.__cause__ = exc
    # Retry once the dependency had time to come back: the bound itself, in whole seconds.
    retry_after = math.ceil(request.app.state.ctx.settings.dependency_timeout_seconds)
    # One line per refused request, with the cause the client does not see (host, port).
    log.warning(
        "request_refused_dependency_unavailable",
        dependency=error.dependency,
        error=str(error),
        method=request.method,
        path=request.url.path,
    )
    body: dict[str, Any] = {
        "status_code": HTTP_503_SERVICE_UNAVAILABLE,
        "detail": f"{error.dependency} is unavailable; retry in {retry_after} s",
    }
    return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(retry_after)})


def invalid(field: str, message: str, source: str = "body") -> ValidationException:
    """A 422 naming the offending field, in the same shape Litestar uses for decode errors."""
    return ValidationException(
        detail=f"{field}: {message}", extra=[{"key": field, "message": message, "source": source}]
    )


def submission_refused(request: Request[Any, Any, Any], exc: SubmissionError) -> Response[dict[str, Any]]:
    """The shared intake's refusals: a field that cannot be accepted is a 422 naming it;
    a taken task id is a 409."""
    if isinstance(exc, InvalidSubmission):
        return client_error(request, invalid(exc.field, exc.message, exc.source))
    return _error_response(HTTP_409_CONFLICT, str(exc), HTTPException(status_code=HTTP_409_CONFLICT))


def client_error(_: Request[Any, Any, Any], exc: ClientException) -> Response[dict[str, Any]]:
    status = HTTP_422_UNPROCESSABLE_ENTITY if exc.status_code == HTTP_400_BAD_REQUEST else exc.status_code
    return _error_response(status, _detail(exc), exc)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, HTTPException) and exc.status_code != HTTP_500_INTERNAL_SERVER_ERROR:
        # Raised on purpose with its own status (a 503 while a dependency is down): no bug.
        return _error_response(exc.status_code, exc.detail, exc)
    log.error(
        "unhandled_exception",
        method=request.method,
        path=request.scope["path"],
        # Also bound by RequestIdMiddleware, but an exception raised in a middleware reaches
        # this handler after that context is gone.
        request_id=request_id_of(request.scope),
        exc_info=exc,
    )
    return Response(
        {"status_code": HTTP_500_INTERNAL_SERVER_ERROR, "detail": "Internal Server Error"},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _error_response(status: int, detail: str, exc: HTTPException) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=status, headers=exc.headers)


def _detail(exc: HTTPException) -> str:
    # Litestar's own decode errors say "Validation failed for POST /..."; name the fields.
    if isinstance(exc.extra, list) and exc.extra and exc.detail.startswith("Validation failed"):
        first = exc.extra[0]
        if isinstance(first, dict) and "message" in first:
            message = str(first["message"])
            unknown = _UNKNOWN_FIELD.search(message)
            key = unknown.group(1) if unknown else first.get("key")
            if unknown:
                first["key"] = key
            return f"{key}: {message}" if key else message
    if exc.detail.startswith("JSON is malformed"):
        return f"body: {exc.detail}"
    return exc.detail


# msgspec says "Object contains unknown field `priorty`"; Litestar reports the key as "data".
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
