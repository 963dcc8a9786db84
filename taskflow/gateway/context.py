"""What every handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from redis.asyncio import Redis

from taskflow.gateway.auth import Principal
from taskflow.gateway.bounded_pool import BoundedPool
from taskflow.scripts import Scripts
from taskflow.settings import Settings


@dataclass(frozen=True)
class GatewayContext:
    settings: Settings
    # Both bounded by settings.dependency_timeout_seconds (connections.open_redis, BoundedPool).
    redis: Redis
    pool: BoundedPool
    scripts: Scripts


def provide_context(state: State) -> GatewayContext:
    """Litestar dependency ``ctx``: what the lifespan built."""
    ctx: GatewayContext = state.ctx
    return ctx


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    """Litestar dependency ``principal``: the caller the JWT middleware authenticated."""
    return request.user


# How handlers ask for them (``ctx: Ctx, principal: Caller``), resolved by name from the
# app's ``dependencies``.
Ctx = NamedDependency[GatewayContext]
Caller = NamedDependency[Principal]
