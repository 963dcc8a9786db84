"""Opening Redis and PostgreSQL, with bad configuration turned into one clear line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, RedisError
from redis.typing import EncodableT

from taskflow.errors import ConfigurationError
from taskflow.settings import Settings
from taskflow.streams import DECODE_ERRORS

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


class _HiredisPackedConnection(Connection):
    """redis-py's asyncio connection packs commands in Python (its sync one uses hiredis):
    a worker spends ~8% of its CPU there. hiredis' C packer gives the same bytes."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        return [self._pack(args)]

    def pack_commands(self, commands: Iterable[Iterable[EncodableT]]) -> list[bytes]:
        return [b"".join(self._pack(tuple(command)) for command in commands)]

    @staticmethod
    def _pack(args: tuple[EncodableT, ...]) -> bytes:
        # Like redis-py: a command name given as "CONFIG GET" is two arguments.
        name = args[0]
        head = name.encode().split() if isinstance(name, str) else bytes(name).split()  # type: ignore[arg-type]
        try:
            # hiredis' stub types the argument as a 1-tuple; it takes any length.
            return bytes(hiredis.pack_command((*head, *args[1:])))  # type: ignore[arg-type]
        except TypeError as e:
            raise DataError(str(e)) from e


def _bounded_redis_options(timeout_seconds: float) -> dict[str, Any]:
    """Options that bound every command to ``timeout_seconds`` end to end.

    redis-py 7 retries a timed-out command 3 times with up to 10 s of backoff by default,
    so a stalled server would take ~4x the timeout plus backoff to fail. Here a timeout is
    never retried; a dropped connection (a restarted Redis) is retried once, at once, on a
    fresh connection, so a restart costs no failed request.
    """
    return {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "retry": Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    }


async def open_redis(settings: Settings, *, command_timeout_seconds: float | None = None) -> Redis:
    """A client for ``TASKFLOW_REDIS_URL``, checked to answer and to be Redis >= 7.0.

    With ``command_timeout_seconds`` (the gateway) no call waits longer than that; without
    it (workers, projector, coordinator) calls may block as long as they ask, as
    XREADGROUP BLOCK does, and redis-py's default retries stay.
    """
    options: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if command_timeout_seconds is not None:
        options = _bounded_redis_options(command_timeout_seconds)
    try:
        client: Redis = Redis.from_url(
            settings.redis_url,
            # For redis:// only; unix:// and rediss:// bring their own connection class.
            connection_class=_HiredisPackedConnection,
            decode_responses=True,
            encoding_errors=DECODE_ERRORS,
            health_check_interval=30,
            **options,
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


async def open_pool(
    settings: Settings, *, min_size: int = 1, max_size: int = 10, command_timeout_seconds: float | None = None
) -> asyncpg.Pool:
    """An asyncpg pool for ``TASKFLOW_DATABASE_URL``.

    With ``command_timeout_seconds`` (the gateway), connecting and each statement are
    bounded by it; the gateway's ``BoundedPool`` also bounds acquiring and discards a
    connection whose call timed out.
    """
    try:
        return await asyncpg.create_pool(
            settings.database_url,
            min_size=min_size,
            max_size=max_size,
            timeout=command_timeout_seconds or CONNECT_TIMEOUT_SECONDS,
            command_timeout=command_timeout_seconds,
        )
    except (TimeoutError, asyncpg.PostgresError, OSError, ValueError) as e:
        raise ConfigurationError("TASKFLOW_DATABASE_URL", f"cannot reach {redact(settings.database_url)} ({e})") from e
