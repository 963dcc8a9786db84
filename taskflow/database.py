"""PostgreSQL plumbing shared by processes: opening a pool, URLs and running the migrations."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from asyncpg.pool import PoolConnectionProxy

from taskflow.errors import ConfigurationError
from taskflow.settings import CONNECT_TIMEOUT_SECONDS, Settings, redact

# Migrations live at the repository top level (see docs/adr/0006); the package is
# installed from the repository, editable in development and copied whole in the image.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://`` as SQLAlchemy wants it for the asyncpg driver."""
    scheme, rest = database_url.split("://", 1)
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://")
    return f"postgresql+asyncpg://{rest}"


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # ConfigParser interpolation would choke on a %-escaped password.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def migrate(database_url: str) -> None:
    """``alembic upgrade head``: blocking, so call it outside a running event loop."""
    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str:
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    return head or ""


async def current_revision(conn: asyncpg.Connection | PoolConnectionProxy) -> str | None:
    """The revision the database is at, or None before the first migration."""
    exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not exists:
        return None
    value: str | None = await conn.fetchval("SELECT version_num FROM alembic_version")
    return value


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
