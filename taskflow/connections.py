"""Opening Redis and PostgreSQL, with bad configuration turned into one clear line."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
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


async def open_redis(settings: Settings) -> Redis:
    """A client for ``TASKFLOW_REDIS_URL``, checked to answer and to be Redis >= 7.0."""
    try:
        client: Redis = Redis.from_url(
            settings.redis_url,
            # For redis:// only; unix:// and rediss:// bring their own connection class.
            connection_class=_HiredisPackedConnection,
            decode_responses=True,
            encoding_errors=DECODE_ERRORS,
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
