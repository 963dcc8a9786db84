"""How replayed events and snapshots are written: JSON lines, CSV, aligned text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import BinaryIO, Final

import msgspec

from taskflow.events import AnyEvent, tag_of
from taskflow.replay.as_of import Snapshot
from taskflow.spreadsheet import safe_cell

_json = msgspec.json.Encoder()
# Fields every event has; the rest are its own ("data" in CSV, the detail in a table).
ENVELOPE: Final = frozenset(
    {
        "aggregate_id",
        "occurred_at",
        "correlation_id",
        "causation_id",
        "traceparent",
        "actor",
        "request_id",
        "schema_version",
        "event_id",
    }
)
CSV_COLUMNS: Final = (
    "event_id",
    "appended_at",
    "occurred_at",
    "type",
    "aggregate_id",
    "correlation_id",
    "causation_id",
    "actor",
    "request_id",
    "data",
)
DETAIL_WIDTH = 90


def jsonl(event: AnyEvent) -> bytes:
    """One line: the event as stored, with its ``event_id`` and ``type``."""
    return _json.encode(event) + b"\n"


def appended_at(event_id: str) -> datetime:
    """When Redis appended the event: the time in its stream id."""
    return datetime.fromtimestamp(int(event_id.partition("-")[0]) / 1000, UTC)


def data_of(event: AnyEvent) -> dict[str, object]:
    """The event's own fields (its envelope left out); user JSON stays raw."""
    return {name: getattr(event, name) for name in event.__struct_fields__ if name not in ENVELOPE}


def csv_row(event: AnyEvent) -> list[str]:
    cells = [
        event.event_id,
        appended_at(event.event_id).isoformat(),
        event.occurred_at.isoformat(),
        tag_of(event),
        event.aggregate_id,
        event.correlation_id,
        event.causation_id or "",
        event.actor or "",
        event.request_id or "",
        _json.encode(data_of(event)).decode(),
    ]
    return [safe_cell(cell) for cell in cells]


def text_line(event: AnyEvent) -> str:
    detail = _json.encode(data_of(event)).decode()
    if len(detail) > DETAIL_WIDTH:
        detail = detail[: DETAIL_WIDTH - 1] + "…"
    when = appended_at(event.event_id).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{when}  {event.event_id:<22} {tag_of(event):<22} {event.aggregate_id:<36}  {detail}"


TEXT_HEADER: Final = f"{'appended (UTC)':<23}  {'event id':<22} {'type':<22} {'aggregate':<36}  detail"

SNAPSHOT_COLUMNS: Final = ("kind", "id", "name", "status", "worker", "attempts", "holding", "updated_at")


def snapshot_rows(snapshot: Snapshot) -> Iterable[dict[str, object]]:
    """A snapshot as flat rows (tasks, then workers), for JSON lines, CSV and tables."""
    for task in snapshot.tasks:
        yield {
            "kind": "task",
            "id": task.task_id,
            "name": task.task_name,
            "status": task.status,
            "worker": task.worker_id or "",
            "attempts": task.attempts,
            "holding": "",
            "updated_at": task.updated_at.isoformat(),
        }
    for worker in snapshot.workers:
        yield {
            "kind": "worker",
            "id": worker.worker_id,
            "name": worker.hostname or "",
            "status": worker.status,
            "worker": "",
            "attempts": "",
            "holding": " ".join(worker.holding),
            "updated_at": (worker.stopped_at or worker.registered_at).isoformat(),
        }


class EventWriter:
    """Events to a binary stream in one format; JSON lines are written a block at a time."""

    BLOCK = 1000

    def __init__(self, fmt: str, out: BinaryIO) -> None:
        self.fmt = fmt
        self.out = out
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True) if fmt != "jsonl" else None
        self._csv = csv.writer(self._text, lineterminator="\n") if self._text is not None and fmt == "csv" else None
        self._block: list[bytes] = []
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)
        elif self._text is not None:
            self._text.write(TEXT_HEADER + "\n")

    def write(self, event: AnyEvent) -> None:
        if self._csv is not None:
            self._csv.writerow(csv_row(event))
        elif self._text is not None:
            self._text.write(text_line(event) + "\n")
        else:
            self._block.append(jsonl(event))
            if len(self._block) >= self.BLOCK:
                self.flush()

    def flush(self) -> None:
        if self._block:
            self.out.write(b"".join(self._block))
            self._block.clear()
        if self._text is not None:
            self._text.flush()
        self.out.flush()

    def detach(self) -> None:
        """Flush, and leave the stream open for its owner."""
        self.flush()
        if self._text is not None:
            self._text.detach()
