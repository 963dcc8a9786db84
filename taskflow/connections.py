"""Opening Redis and PostgreSQL, with bad configuration turned into one clear line."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskflow.errors import ConfigurationError
from taskflow.settings import Settings

MIN_REDIS_VERSION = (7, 0)
CONNECT_TIMEOUT_SECONDS = 5.0


def redact(url: str) -> str:
    """The URL without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


async def open_redis(settings: Settings) -> Redis:
    """A client for ``TASKFLOW_REDIS_URL``, checked to answer and to be Redis >= 7.0."""
    try:
        client: Redis = Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            health_check_interval=30,
        )
        info = await client.info("server")
    except (RedisError, OSError, ValueError) as e:
        raise ConfigurationError("TASKFLOW_REDIS_URL", f"cannot reach {redact(settings.redis_url)} ({e})") from e
    version = str(info.get("redis_version", "0"))
    if parse_version(version) < MIN_REDIS_VERSION:
        await client.aclose()
        raise ConfigurationError(
            "TASKFLOW_REDIS_URL",
            f"server is Redis {version}; TaskFlow needs Redis >= 7.0 (XAUTOCLAIM, XPENDING IDLE)",
        )
    return client


async def open_pool(settings: Settings, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool for ``TASKFLOW_DATABASE_URL``."""
    try:
        return await asyncpg.create_pool(
            settings.database_url,
            min_size=min_size,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except (TimeoutError, asyncpg.PostgresError, OSError, ValueError) as e:
        raise ConfigurationError("TASKFLOW_DATABASE_URL", f"cannot reach {redact(settings.database_url)} ({e})") from e
