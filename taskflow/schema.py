"""The database schema's version: running the Alembic migrations, and the head and current
revisions (``taskflow migrate``, ``taskflow dev``, ``/ready``).

Apart from ``taskflow.database`` (opening a pool) so that the worker and the projector,
which only open pools, never import Alembic and SQLAlchemy: start-up time and a larger heap
for every process otherwise (ADR 0012).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from asyncpg.pool import PoolConnectionProxy

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
