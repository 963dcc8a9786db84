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
from taskflow.gateway.scripts import GatewayScripts
from taskflow.settings import Settings
from taskflow.streams.cancel import Canceller
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.submit import Submitter


@dataclass(frozen=True)
class GatewayContext:
    settings: Settings
    keyspace: Keyspace
    # Both bounded by settings.dependency_timeout_seconds (streams.connection.open_redis,
    # BoundedPool).
    redis: Redis
    pool: BoundedPool
    scripts: GatewayScripts
    submitter: Submitter
    canceller: Canceller

    @classmethod
    def build(cls, settings: Settings, redis: Redis, pool: BoundedPool) -> GatewayContext:
        keyspace = Keyspace.of(settings)
        return cls(
            settings=settings,
            keyspace=keyspace,
            redis=redis,
            pool=pool,
            scripts=GatewayScripts(redis, keyspace),
            submitter=Submitter(redis, keyspace),
            canceller=Canceller(redis, keyspace),
        )


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
