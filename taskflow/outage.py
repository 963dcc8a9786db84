"""A dependency outage as the loops that retry it see it: logged once, and its end once.

Workers, the projector and the coordinator retry Redis and PostgreSQL every second or so
while one is away; a warning per retry (``read_failed`` each second, per loop) buried the
two lines an operator needs: when it went away, and when and after how long it came back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import asyncpg
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger()

Dependency = Literal["redis", "postgres"]

# Redis away (down, restarting, stalled, unreachable). Other RedisErrors (a script error,
# a missing group) are answers, not outages, and keep their own log lines.
REDIS_AWAY = (RedisConnectionError, RedisTimeoutError, OSError)
# PostgreSQL away (unreachable, stalled, restarting, failing over, out of connections,
# memory or disk), or a connection it cut mid-use (asyncpg then reports InterfaceError or
# InternalClientError for the next operation on it). Errors in the statement itself (a
# constraint, a syntax error) are answers, not outages.
POSTGRES_AWAY = (
    TimeoutError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    # SQLSTATE class 53: the server, not the request.
    asyncpg.InsufficientResourcesError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class Outage:
    """Tracks one dependency for one process. Every loop that calls it reports each
    failure and each success; only the first failure and the first success after it log."""

    def __init__(self, dependency: Dependency, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.dependency: Dependency = dependency
        self._clock = clock
        self._since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException, **context: object) -> None:
        """A call failed for want of the dependency: logs ``dependency_unavailable`` if it
        was up until now."""
        if self._since is None:
            self._since = self._clock()
            log.warning("dependency_unavailable", dependency=self.dependency, error=repr(error), **context)

    def succeeded(self) -> None:
        """A call answered: logs ``dependency_recovered`` with the outage's length if one
        was ongoing."""
        if self._since is not None:
            outage_s = round(self._clock() - self._since, 3)
            self._since = None
            log.info("dependency_recovered", dependency=self.dependency, outage_s=outage_s)
