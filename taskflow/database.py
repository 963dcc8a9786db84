"""Opening PostgreSQL: an asyncpg pool, with bad configuration turned into one clear line.
(The schema's migrations are in ``taskflow.schema``.)"""

from __future__ import annotations

import asyncpg

from taskflow.errors import ConfigurationError
from taskflow.settings import CONNECT_TIMEOUT_SECONDS, Settings, redact


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
