"""One log line per request (``request``): method, path, status, duration, user, and the
request id bound by ``RequestIdMiddleware``. The query string is left out: it may hold a
feed ticket, a credential. Probes (``/health``, ``/ready``, ``/metrics``) are not logged;
errors are logged once more, with their traceback, by ``errors.internal_error``."""

from __future__ import annotations

import time

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from taskflow.gateway.auth import Principal
from taskflow.gateway.request_id import request_id_of

log = structlog.get_logger()


class AccessLogMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = (r"^/health$", r"^/ready$", r"^/metrics$")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status = 500  # what the client gets if nothing was sent (the server answers 500)

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, noting_status)
        finally:
            user = scope.get("user")
            log.info(
                "request",
                method=scope.get("method"),
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                user=user.sub if isinstance(user, Principal) else None,
                # Bound for the request's other lines too; said here so the line stands alone.
                request_id=request_id_of(scope),
            )
