"""The Alembic migrations build exactly the schema the SQLAlchemy tables declare."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from taskflow.projections.tables import metadata
from taskflow.schema import head_revision, migrate, sqlalchemy_url

SEED_TABLES = {
    "tasks",
    "task_results",
    "task_logs",
    "workers",
    "task_executions",
    "campaigns",
    "email_recipients",
    "dead_letter_queue",
    "event_archive",
    "projection_checkpoints",
}


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def _schema_diff(database_url: str) -> tuple[list[object], set[str], str | None]:
    engine = create_async_engine(sqlalchemy_url(database_url))
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
        tables = set(
            (await conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
        )
        revision = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar()
    await engine.dispose()
    return diff, tables, revision


def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    diff, tables, revision = asyncio.run(_schema_diff(database_url))
    assert diff == []
    assert tables >= SEED_TABLES
    assert revision == head_revision()


def test_migrating_twice_is_harmless(database_url: str) -> None:
    migrate(database_url)
    diff, _, revision = asyncio.run(_schema_diff(database_url))
    assert diff == [] and revision == head_revision()


def test_the_seed_indexes_exist(database_url: str) -> None:
    async def indexes() -> set[str]:
        engine = create_async_engine(sqlalchemy_url(database_url))
        async with engine.connect() as conn:
            names = set(
                (await conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")).scalars()
            )
        await engine.dispose()
        return names

    expected = {
        "idx_status_priority",
        "idx_scheduled_at",
        "idx_campaign_id",
        "idx_created_at",
        "idx_task_logs_task_id",
        "idx_workers_heartbeat",
        "idx_email_campaign_status",
    }
    assert expected <= asyncio.run(indexes())
