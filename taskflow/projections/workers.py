"""The workers projection as a pure fold."""

from __future__ import annotations

from typing import assert_never

import msgspec

from taskflow.events import WorkerDied, WorkerPaused, WorkerResumed, WorkerStarted, WorkerStopped
from taskflow.projections.ids import as_uuid
from taskflow.projections.rows import WorkerRow

WorkerEvent = WorkerStarted | WorkerStopped | WorkerDied | WorkerPaused | WorkerResumed
WORKER_EVENTS = (WorkerStarted, WorkerStopped, WorkerDied, WorkerPaused, WorkerResumed)
_encoder = msgspec.json.Encoder()


def fold_worker(row: WorkerRow | None, event: WorkerEvent) -> WorkerRow | None:
    match event:
        case WorkerStarted():
            return WorkerRow(
                worker_id=as_uuid(event.aggregate_id),
                hostname=event.hostname,
                status="IDLE",
                capacity=event.capacity,
                current_load=0,
                last_heartbeat=event.occurred_at,
                registered_at=event.occurred_at,
                stopped_at=None,
                metadata=_encoder.encode(
                    {"pid": event.pid, "version": event.version, "queues": list(event.queues)}
                ).decode(),
            )
        case WorkerStopped():
            if row is None:
                return None
            # A clean exit is not a death: STOPPED, next to the seed's ACTIVE/IDLE/BUSY/DEAD.
            return msgspec.structs.replace(
                row,
                status="STOPPED",
                current_load=0,
                stopped_at=event.occurred_at,
                last_heartbeat=event.occurred_at,
            )
        case WorkerDied():
            if row is None:
                return None
            return msgspec.structs.replace(row, status="DEAD", current_load=0, stopped_at=event.occurred_at)
        case WorkerPaused() | WorkerResumed():
            if row is None or row.status in ("DEAD", "STOPPED"):
                return row
            return msgspec.structs.replace(row, status="PAUSED" if isinstance(event, WorkerPaused) else "IDLE")
        case _:
            assert_never(event)
