"""One error shape for every response: ``{status_code, detail, extra?}``.

Litestar answers 400 when a body, query or path value does not decode (malformed JSON,
a wrong type, an unknown field); our contract says 422, so one handler converts every
400 and keeps the per-field list. Other client errors keep their status.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_422_UNPROCESSABLE_ENTITY

from taskflow.errors import TaskFlowError


class GatewayError(TaskFlowError):
    """Root of gateway errors."""


def invalid(field: str, message: str, source: str = "body") -> ValidationException:
    """A 422 naming the offending field, in the same shape Litestar uses for decode errors."""
    return ValidationException(
        detail=f"{field}: {message}", extra=[{"key": field, "message": message, "source": source}]
    )


def client_error(_: Request[Any, Any, Any], exc: ClientException) -> Response[dict[str, Any]]:
    status = HTTP_422_UNPROCESSABLE_ENTITY if exc.status_code == HTTP_400_BAD_REQUEST else exc.status_code
    body: dict[str, Any] = {"status_code": status, "detail": _detail(exc)}
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
