"""``/health`` (the process is up) and ``/ready`` (its dependencies are)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import cast

import asyncpg
from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from redis.exceptions import RedisError

from taskflow.gateway.context import Ctx, GatewayContext
from taskflow.gateway.errors import DependencyUnavailable
from taskflow.gateway.schemas import Readiness
from taskflow.schema import current_revision, head_revision

# Each check gets this long, both at once, so /ready answers within a second even with a
# dependency stalled: load balancers probe with ~1 s timeouts, and a late probe is read
# as a dead gateway rather than a dead dependency.
READY_CHECK_SECONDS = 0.8


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(ctx: Ctx) -> Response[Readiness]:
    redis_state, (postgres_state, migrations_state) = await asyncio.gather(_check_redis(ctx), _check_postgres(ctx))
    ok = redis_state == postgres_state == migrations_state == "ok"
    body = Readiness(
        status="ready" if ok else "not_ready", redis=redis_state, postgres=postgres_state, migrations=migrations_state
    )
    return Response(body, status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE)


async def _check_redis(ctx: GatewayContext) -> str:
    try:
        async with asyncio.timeout(READY_CHECK_SECONDS):
            await cast("Awaitable[bool]", ctx.redis.ping())
    except TimeoutError:
        return f"unavailable: no answer within {READY_CHECK_SECONDS} s"
    except (RedisError, OSError) as e:
        return f"unavailable: {e}"
    return "ok"


async def _check_postgres(ctx: GatewayContext) -> tuple[str, str]:
    try:
        async with ctx.pool.acquire(timeout_seconds=READY_CHECK_SECONDS) as conn:
            revision = await current_revision(conn)
    except DependencyUnavailable as e:
        cause = e.__cause__
        reason = f"no answer within {READY_CHECK_SECONDS} s" if isinstance(cause, TimeoutError) else str(cause)
        return f"unavailable: {reason}", "unknown"
    except asyncpg.PostgresError as e:
        return f"error: {e}", "unknown"
    head = head_revision()
    if revision != head:
        return "ok", f"at {revision or 'nothing'}, expected {head}: run `taskflow migrate`"
    return "ok", "ok"
