"""Live projection tables against a rebuilt copy: which rows differ, and in what."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import msgspec

from taskflow.projections.shadow import KEYS, PROJECTED
from taskflow.projections.store import Connection


class ColumnDifference(msgspec.Struct, frozen=True):
    column: str
    live: str
    rebuilt: str


class RowDifference(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    key: str
    # "changed": both have the row; "missing": only the rebuilt one (live lacks it);
    # "extra": only live has it (no event explains it).
    kind: str
    columns: tuple[ColumnDifference, ...] = ()


class TableDiff(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    live_rows: int
    rebuilt_rows: int
    # Rows of each side with no identical row on the other.
    live_only: int
    rebuilt_only: int
    shown: tuple[RowDifference, ...]

    @property
    def clean(self) -> bool:
        return self.live_only == 0 and self.rebuilt_only == 0


def differences(
    table: str, live: Sequence[Mapping[str, Any]], rebuilt: Sequence[Mapping[str, Any]]
) -> list[RowDifference]:
    """Rows of each side that have no identical twin on the other, paired by key."""
    key = KEYS[table]
    live_by_key = {str(r[key]): r for r in live}
    rebuilt_by_key = {str(r[key]): r for r in rebuilt}
    found = []
    for k in sorted(live_by_key.keys() | rebuilt_by_key.keys()):
        ours, theirs = live_by_key.get(k), rebuilt_by_key.get(k)
        if ours is None:
            found.append(RowDifference(table=table, key=k, kind="missing"))
        elif theirs is None:
            found.append(RowDifference(table=table, key=k, kind="extra"))
        else:
            columns = tuple(ColumnDifference(c, repr(ours[c]), repr(theirs[c])) for c in ours if ours[c] != theirs[c])
            found.append(RowDifference(table=table, key=k, kind="changed", columns=columns))
    return found


async def compare(
    conn: Connection, live: str, rebuilt: str, *, show: int, dead_letter_retention: timedelta
) -> list[TableDiff]:
    """Every projected table of ``live`` against ``rebuilt``, as this transaction sees
    them. Dead letters past retention are left out: live ones wait up to an hour for
    their purge (projections.retention), rebuilt ones are purged at once."""
    result = []
    kept = f"WHERE moved_at >= now() - interval '{dead_letter_retention.total_seconds():.0f} seconds'"
    for table in PROJECTED:
        where = kept if table == "dead_letter_queue" else ""
        ours, theirs = f"SELECT * FROM {live}.{table} {where}", f"SELECT * FROM {rebuilt}.{table} {where}"
        live_only = f"{ours} EXCEPT ALL {theirs}"
        rebuilt_only = f"{theirs} EXCEPT ALL {ours}"
        counts = await conn.fetchrow(
            f"SELECT (SELECT count(*) FROM ({ours}) o) AS live_rows, "
            f"(SELECT count(*) FROM ({theirs}) t) AS rebuilt_rows, "
            f"(SELECT count(*) FROM ({live_only}) d) AS live_only, "
            f"(SELECT count(*) FROM ({rebuilt_only}) d) AS rebuilt_only"
        )
        assert counts is not None
        shown: list[RowDifference] = []
        if counts["live_only"] or counts["rebuilt_only"]:
            live_rows = [dict(r) for r in await conn.fetch(f"SELECT * FROM ({live_only}) d LIMIT $1", show)]
            rebuilt_rows = [dict(r) for r in await conn.fetch(f"SELECT * FROM ({rebuilt_only}) d LIMIT $1", show)]
            shown = differences(table, live_rows, rebuilt_rows)[:show]
        result.append(
            TableDiff(
                table=table,
                live_rows=int(counts["live_rows"]),
                rebuilt_rows=int(counts["rebuilt_rows"]),
                live_only=int(counts["live_only"]),
                rebuilt_only=int(counts["rebuilt_only"]),
                shown=tuple(shown),
            )
        )
    return result
