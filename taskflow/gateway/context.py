"""What every handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from taskflow.scripts import Scripts
from taskflow.settings import Settings


@dataclass(frozen=True)
class GatewayContext:
    settings: Settings
    redis: Redis
    pool: asyncpg.Pool
    scripts: Scripts
