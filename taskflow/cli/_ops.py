"""What the ``taskflow streams`` commands share: a Redis (and PostgreSQL) connection for
one command, a console that suits a terminal or a pipe, and durations and sizes as people
read them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from taskflow.cli._runtime import fail
from taskflow.errors import ConfigurationError

if TYPE_CHECKING:
    # The CLI imports what a command needs when it runs (ADR 0012): annotations only here.
    import asyncpg
    from redis.asyncio import Redis
    from rich.console import Console

    from taskflow.settings import Settings
    from taskflow.streams.keyspace import Keyspace

T = TypeVar("T")


def run_once(main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; an unreachable Redis or PostgreSQL (or one never
    migrated) is one line and exit 1, not a traceback."""
    try:
        return asyncio.run(main)
    except ConfigurationError as e:
        fail(str(e))


async def with_redis(settings: Settings, read: Callable[[Redis, Keyspace], Awaitable[T]]) -> T:
    from taskflow.streams.connection import open_redis
    from taskflow.streams.keyspace import Keyspace

    redis = await open_redis(settings)
    try:
        return await read(redis, Keyspace.of(settings))
    finally:
        await redis.aclose()


async def with_redis_and_postgres(
    settings: Settings, work: Callable[[Redis, asyncpg.Pool, Keyspace], Awaitable[T]]
) -> T:
    import asyncpg

    from taskflow.database import open_pool

    pool = await open_pool(settings, min_size=1, max_size=2)
    try:
        return await with_redis(settings, lambda redis, ks: work(redis, pool, ks))
    except asyncpg.UndefinedTableError as e:
        raise ConfigurationError("TASKFLOW_DATABASE_URL", f"{e}: run `taskflow migrate` first") from e
    finally:
        await pool.close()


def console() -> Console:
    """Colour and the terminal's width on a terminal; piped, plain text wide enough that
    ids are never cut."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=220, no_color=True)


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def age(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
