"""The rows a projector wrote last, kept in memory so the next batches fold on top of them
without reading them back from PostgreSQL.

Exact only while its projector is the partition's one writer (lock + fencing token): a
projector builds a new cache each time it takes a partition and drops it when it loses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar
from uuid import UUID

from taskflow.projections.batch import Changes
from taskflow.projections.rows import TaskRow, WorkerRow

Row = TypeVar("Row")


class _Recent(Generic[Row]):
    """The ``capacity`` rows written most recently (dicts keep insertion order)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: dict[UUID, Row] = {}

    def pick(self, keys: Iterable[UUID]) -> dict[UUID, Row]:
        """The cached rows of ``keys`` (every one must be cached)."""
        return {k: self._rows[k] for k in keys}

    def missing(self, keys: Iterable[UUID]) -> set[UUID]:
        return {k for k in keys if k not in self._rows}

    def put(self, rows: dict[UUID, Row]) -> None:
        for key, row in rows.items():
            self._rows.pop(key, None)
            self._rows[key] = row
        while len(self._rows) > self.capacity:
            del self._rows[next(iter(self._rows))]


class RowCache:
    """Tasks and workers as the projector last wrote them (committed or about to be).

    A row leaves the cache only after ``capacity`` other rows were written since, i.e.
    many batches later; with one batch in flight at a time, an evicted row is always one
    PostgreSQL already holds, so reading it back there is exact.
    """

    def __init__(self, capacity: int) -> None:
        self.tasks: _Recent[TaskRow] = _Recent(capacity)
        self.workers: _Recent[WorkerRow] = _Recent(capacity)

    def remember(self, changes: Changes) -> None:
        self.tasks.put(changes.tasks)
        self.workers.put(changes.workers)
