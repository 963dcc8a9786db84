"""The gateway's PostgreSQL calls, each bounded by ``TASKFLOW_DEPENDENCY_TIMEOUT_SECONDS``.

asyncpg's own timeouts are not enough against a stalled server: after a statement times
out, asyncpg sends a CancelRequest and, when the connection is released, waits for the
server to acknowledge it (up to ``command_timeout`` again) before resetting the
connection, so a request would take twice the bound, and a ``Pool.fetch`` with no acquire
timeout waits for a free connection for ever. Here one deadline covers acquiring
(connecting included) and the statements; a connection whose call timed out, was
cancelled or lost its server is terminated, never reused (its protocol state is unknown),
and its pool slot connects afresh on the next acquire, which is how the pool recovers
after the stall.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from taskflow.gateway.errors import DependencyUnavailable
from taskflow.outage import POSTGRES_AWAY


class BoundedPool:
    """The few ``asyncpg.Pool`` calls the gateway makes, each within ``timeout_seconds``."""

    def __init__(self, pool: asyncpg.Pool, timeout_seconds: float) -> None:
        self._pool = pool
        self.timeout_seconds = timeout_seconds

    @asynccontextmanager
    async def acquire(self, *, timeout_seconds: float | None = None) -> AsyncIterator[PoolConnectionProxy]:
        """A connection for the block, which must finish within the deadline (acquiring
        included); else ``DependencyUnavailable("postgres")``."""
        try:
            async with asyncio.timeout(timeout_seconds or self.timeout_seconds):
                conn = await self._pool.acquire()
                try:
                    yield conn
                except (*POSTGRES_AWAY, asyncio.CancelledError):
                    # Releasing would wait for the server to acknowledge asyncpg's cancel.
                    conn.terminate()
                    raise
                finally:
                    await self._pool.release(conn)
        except POSTGRES_AWAY as e:
            raise DependencyUnavailable("postgres", e) from e

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(query, *args)
            return row

    async def fetchval(self, query: str, *args: object) -> Any:  # the column's type, as asyncpg
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        async with self.acquire() as conn:
            status: str = await conn.execute(query, *args)
            return status

    async def close(self) -> None:
        await self._pool.close()
