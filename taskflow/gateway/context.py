"""What every handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

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
