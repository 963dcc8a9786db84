"""How the projector's loops wait out a dependency that is away: the PostgreSQL errors
that mean it is away (Redis's are ``taskflow.outage.REDIS_AWAY``), and the pause before
trying again. Shared by the run loop (``projector``), the reads (``partition_reader``)
and the dead-letter purge (``retention``)."""

from __future__ import annotations

import asyncpg

# PostgreSQL restarting, failing over or unreachable: wait and try again.
# PostgreSQL restarting, failing over or unreachable, or a connection it cut mid-use
# (asyncpg then reports InternalClientError for the next operation on it).
POSTGRES_AWAY = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
RETRY_DELAY_S = 1.0
