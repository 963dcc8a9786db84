"""Schemas beside the live one: the projection tables rebuilt from the archive (a shadow),
made like the live tables, compared with them, and swapped in (blue/green).

Everything here is SQL on one connection inside the caller's transaction. A shadow table
is created ``LIKE`` its live twin (columns, defaults, checks), loaded without keys or
indexes, and then given the live table's constraints and indexes by their own
definitions, so it is exactly what the migrations made, whatever they made.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

import msgspec

from taskflow.projections.store import Connection

SHADOW: Final = "taskflow_shadow"
# Live tables go here at a swap, until the next rebuild: a way back, by hand.
PREVIOUS: Final = "taskflow_previous"
# The tables the projector derives from events, the referenced one first. The archive,
# the checkpoints and the quarantine are the log and its bookkeeping: never rebuilt.
PROJECTED: Final = (
    "tasks",
    "task_results",
    "task_logs",
    "task_executions",
    "dead_letter_queue",
    "workers",
    "audit_log",
    "campaigns",
    "email_recipients",
)
KEYS: Final = {
    "tasks": "task_id",
    "task_results": "result_id",
    "task_logs": "log_id",
    "task_executions": "execution_id",
    "dead_letter_queue": "dlq_id",
    "workers": "worker_id",
    "audit_log": "audit_id",
    "campaigns": "campaign_id",
    "email_recipients": "recipient_id",
}
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class Definition(msgspec.Struct, frozen=True):
    """A live table's keys and indexes as SQL to give a shadow twin the same."""

    table: str
    constraints: list[tuple[str, str]]  # (name, definition), keys before foreign keys
    indexes: list[str]  # CREATE INDEX statements, schema-qualified for the shadow


async def live_schema(conn: Connection) -> str:
    schema: str = await conn.fetchval("SELECT current_schema()")
    return schema


async def definitions(conn: Connection, live: str, shadow: str) -> list[Definition]:
    """Read with the caller's search path (the live schema visible), so references to
    live tables come unqualified and resolve to the shadow's under its search path."""
    found = []
    for table in PROJECTED:
        qualified = f"{live}.{table}"
        constraints = await conn.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
            "WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'f') "
            "ORDER BY contype = 'f', conname",
            qualified,
        )
        indexes = await conn.fetch(
            "SELECT pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i "
            "WHERE i.indrelid = $1::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) "
            "ORDER BY i.indexrelid",
            qualified,
        )
        found.append(
            Definition(
                table=table,
                constraints=[(c["conname"], _unqualified(c["definition"], live)) for c in constraints],
                indexes=[_retargeted(i["definition"], live, shadow) for i in indexes],
            )
        )
    return found


async def create_bare(conn: Connection, live: str, shadow: str) -> None:
    """The shadow schema with empty twins of the projected tables, without keys or
    indexes (loaded faster so), and with nothing left from an earlier rebuild."""
    _check(shadow)
    await conn.execute(f"DROP SCHEMA IF EXISTS {shadow} CASCADE; CREATE SCHEMA {shadow}")
    for table in PROJECTED:
        await conn.execute(
            f"CREATE TABLE {shadow}.{table} (LIKE {live}.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING GENERATED INCLUDING STORAGE)"
        )
    await conn.execute(
        f"CREATE TABLE {shadow}.shadow_checkpoints (partition SMALLINT PRIMARY KEY, "
        "last_ms BIGINT NOT NULL, last_seq BIGINT NOT NULL)"
    )
    await conn.execute(
        f"CREATE TABLE {shadow}.shadow_built (built_at TIMESTAMPTZ NOT NULL DEFAULT now(), events BIGINT NOT NULL)"
    )


async def finish(conn: Connection, shadow: str, found: list[Definition]) -> None:
    """Keys, foreign keys and indexes as the live tables have them, then statistics."""
    for definition in found:
        for name, sql in definition.constraints:
            await conn.execute(f"ALTER TABLE {shadow}.{definition.table} ADD CONSTRAINT {name} {sql}")
    for definition in found:
        for sql in definition.indexes:
            await conn.execute(sql)
    for table in PROJECTED:
        await conn.execute(f"ANALYZE {shadow}.{table}")


async def use(conn: Connection, shadow: str, live: str) -> None:
    """Unqualified projection tables mean the shadow's for the rest of the transaction;
    the archive and checkpoints (not in the shadow) still resolve to the live schema."""
    _check(shadow)
    _check(live)
    await conn.execute(f"SET LOCAL search_path TO {shadow}, {live}")


async def purge_expired_dead_letters(conn: Connection, shadow: str, retention: timedelta) -> None:
    """The retention the live table gets (projections.retention), so the two compare."""
    await conn.execute(f"DELETE FROM {shadow}.dead_letter_queue WHERE moved_at < now() - $1::interval", retention)


async def exists(conn: Connection, shadow: str) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables "
        "WHERE table_schema = $1 AND table_name = 'shadow_built')",
        shadow,
    )
    return found


async def move_in(conn: Connection, live: str, shadow: str) -> None:
    """The swap itself: live tables to PREVIOUS, shadow tables to live, in one go. The
    caller holds the checkpoints; readers queue on the table locks for the instant this
    takes and then read the new tables (PostgreSQL looks a name up again after a wait)."""
    await conn.execute(f"DROP SCHEMA IF EXISTS {PREVIOUS} CASCADE; CREATE SCHEMA {PREVIOUS}")
    await conn.execute(
        f"LOCK TABLE {', '.join(f'{live}.{t}' for t in PROJECTED)}, "
        f"{', '.join(f'{shadow}.{t}' for t in PROJECTED)} IN ACCESS EXCLUSIVE MODE"
    )
    for table in PROJECTED:
        await conn.execute(f"ALTER TABLE {live}.{table} SET SCHEMA {PREVIOUS}")
    for table in PROJECTED:
        await conn.execute(f"ALTER TABLE {shadow}.{table} SET SCHEMA {live}")
    await conn.execute(f"DROP SCHEMA {shadow} CASCADE")


def _unqualified(definition: str, live: str) -> str:
    return definition.replace(f"REFERENCES {live}.", "REFERENCES ")


def _retargeted(definition: str, live: str, shadow: str) -> str:
    return definition.replace(f" ON {live}.", f" ON {shadow}.", 1)


def _check(name: str) -> None:
    # Schema names are ours (constants, current_schema()), but they go into SQL text.
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a plain schema name: {name!r}")
