"""Every projected row shape matches its table in tables.py (the one schema source)."""

from __future__ import annotations

import msgspec
import pytest

from taskflow.projections import tables
from taskflow.projections.rows import DeadLetterRow, ExecutionRow, LogRow, ResultRow, TaskRow, WorkerRow
from taskflow.projections.store import ArchiveRecord


@pytest.mark.parametrize(
    ("row", "table"),
    [
        (TaskRow, tables.tasks),
        (WorkerRow, tables.workers),
        (ExecutionRow, tables.task_executions),
        (ResultRow, tables.task_results),
        (DeadLetterRow, tables.dead_letter_queue),
        (LogRow, tables.task_logs),
        (ArchiveRecord, tables.event_archive),
    ],
)
def test_row_fields_are_columns_of_their_table(row: type[msgspec.Struct], table: object) -> None:
    columns = set(table.c.keys())  # type: ignore[attr-defined]
    assert set(row.__struct_fields__) <= columns
    # Columns a row leaves out must be ones the database fills (defaults or nullable).
    for name in columns - set(row.__struct_fields__):
        column = table.c[name]  # type: ignore[attr-defined]
        assert column.nullable or column.server_default is not None, name
