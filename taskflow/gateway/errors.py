"""One error shape for every response: ``{status_code, detail, extra?}``.

Litestar raises ``ValidationException`` (400) when a body, query or path value does not
decode; our contract says 422, so one handler converts it and keeps the per-field list.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from taskflow.errors import TaskFlowError


class GatewayError(TaskFlowError):
    """Root of gateway errors."""


def invalid(field: str, message: str, source: str = "body") -> ValidationException:
    """A 422 naming the offending field, in the same shape Litestar uses for decode errors."""
    return ValidationException(detail=f"{field}: {message}", extra=[{"key": field, "message": message, "source": source}])


def validation_to_422(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": HTTP_422_UNPROCESSABLE_ENTITY, "detail": _detail(exc)}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=HTTP_422_UNPROCESSABLE_ENTITY)


def _detail(exc: HTTPException) -> str:
    # Litestar's own decode errors say "Validation failed for POST /..."; name the fields.
    if isinstance(exc.extra, list) and exc.extra and exc.detail.startswith("Validation failed"):
        first = exc.extra[0]
        if isinstance(first, dict) and "message" in first:
            key = first.get("key")
            return f"{key}: {first['message']}" if key else str(first["message"])
    return exc.detail
