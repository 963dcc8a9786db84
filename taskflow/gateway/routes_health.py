"""``/health`` (the process is up) and ``/ready`` (its dependencies are)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

import asyncpg
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from redis.exceptions import RedisError

from taskflow.database import current_revision, head_revision
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.schemas import Readiness


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(request: Request[object, object, State]) -> Response[Readiness]:
    ctx: GatewayContext = request.app.state.ctx
    redis_state = await _check_redis(ctx)
    postgres_state, migrations_state = await _check_postgres(ctx)
    ok = redis_state == postgres_state == migrations_state == "ok"
    body = Readiness(
        status="ready" if ok else "not_ready", redis=redis_state, postgres=postgres_state, migrations=migrations_state
    )
    return Response(body, status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE)


async def _check_redis(ctx: GatewayContext) -> str:
    try:
        await cast("Awaitable[bool]", ctx.redis.ping())
    except (RedisError, OSError) as e:
        return f"error: {e}"
    return "ok"


async def _check_postgres(ctx: GatewayContext) -> tuple[str, str]:
    try:
        async with ctx.pool.acquire(timeout=2) as conn:
            revision = await current_revision(conn)
    except (asyncpg.PostgresError, OSError, TimeoutError) as e:
        return f"error: {e}", "unknown"
    head = head_revision()
    if revision != head:
        return "ok", f"at {revision or 'nothing'}, expected {head}: run `taskflow migrate`"
    return "ok", "ok"
