"""Entries read from a partition's event stream, parsed into a ``Batch``: the events with
their archive records, and the entries that did not decode (for the quarantine)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from taskflow.events import AnyEvent, EventDecodeError, decode_stored, tag_of
from taskflow.projections import store
from taskflow.projections.quarantine import QuarantineRecord, quarantined
from taskflow.streams.fields import field_bytes, field_text

# Events decoded or folded between two looks at the commit in flight.
FOLD_SLICE = 100


class Batch(msgspec.Struct):
    """Entries read from one partition's stream: their ids (all to be acked), the events
    and their archive records, and the entries that did not decode (to quarantine)."""

    stream: str
    entry_ids: list[str]
    events: list[AnyEvent]
    records: list[store.ArchiveRecord]
    undecodable: list[QuarantineRecord] = msgspec.field(default_factory=list)

    def after(self, checkpoint: store.StreamId) -> Batch:
        """The entries above ``checkpoint`` (all the entry ids: every one gets acked)."""
        fresh = [i for i, r in enumerate(self.records) if (r.id_ms, r.id_seq) > checkpoint]
        undecodable = [q for q in self.undecodable if q.stream_id > checkpoint]
        if len(fresh) == len(self.records) and len(undecodable) == len(self.undecodable):
            return self
        return Batch(
            self.stream, self.entry_ids, [self.events[i] for i in fresh], [self.records[i] for i in fresh], undecodable
        )

    @property
    def size(self) -> int:
        return len(self.records) + len(self.undecodable)

    @property
    def last(self) -> store.StreamId:
        ids = [q.stream_id for q in self.undecodable[-1:]]
        if self.records:
            ids.append((self.records[-1].id_ms, self.records[-1].id_seq))
        return max(ids)

    def split(self) -> tuple[Batch, Batch]:
        """The older and the newer half, in stream order (to find an entry PostgreSQL
        refuses by bisection)."""
        ids = sorted([(r.id_ms, r.id_seq) for r in self.records] + [q.stream_id for q in self.undecodable])
        middle = ids[len(ids) // 2 - 1]
        return self._select(lambda i: i <= middle), self._select(lambda i: i > middle)

    def _select(self, keep: Callable[[store.StreamId], bool]) -> Batch:
        chosen = [i for i, r in enumerate(self.records) if keep((r.id_ms, r.id_seq))]
        return Batch(
            self.stream,
            [e for e in self.entry_ids if keep(store.parse_stream_id(e))],
            [self.events[i] for i in chosen],
            [self.records[i] for i in chosen],
            [q for q in self.undecodable if keep(q.stream_id)],
        )

    def refused(self, error: str) -> Batch:
        """This one-entry batch with its event quarantined instead of projected (an entry
        quarantined already, which PostgreSQL refused too, stays as it is)."""
        kept = [quarantined_record(self.stream, record, error) for record in self.records]
        return Batch(self.stream, self.entry_ids, [], [], kept + self.undecodable)


def quarantined_record(stream: str, record: store.ArchiveRecord, error: str) -> QuarantineRecord:
    """An event that decoded but cannot be projected, kept as it was written."""
    return quarantined(
        stream=stream,
        entry_id=record.event_id,
        partition=record.partition,
        source="projector",
        raw=record.payload.encode(),
        error=error,
        event_type=record.event_type,
        aggregate_id=record.aggregate_id,
    )


def parse_batch(partition: int, stream: str, entries: list[tuple[str, dict[str, str]]]) -> Batch:
    batch = Batch(stream, [], [], [])
    for entry_id, fields in entries:
        batch.entry_ids.append(entry_id)
        payload = fields.get("data", "")
        try:
            event, stored_version = decode_stored(entry_id, field_bytes(payload))
        except EventDecodeError as e:
            # It never will decode: kept in the quarantine with the batch, never retried.
            batch.undecodable.append(
                quarantined(
                    stream=stream,
                    entry_id=entry_id,
                    partition=partition,
                    source="projector",
                    raw=field_bytes(payload) if "data" in fields else _fields_json(fields),
                    error=f"undecodable: {e}",
                    event_type=field_text(fields["type"]) if "type" in fields else None,
                )
            )
            continue
        batch.events.append(event)
        batch.records.append(_archive_record(partition, event, stored_version, payload))
    return batch


def _fields_json(fields: dict[str, str]) -> bytes:
    """An entry that is no event at all (no ``data`` field), as JSON."""
    return msgspec.json.encode({field_text(k): field_text(v) for k, v in fields.items()})


def _archive_record(partition: int, event: AnyEvent, stored_version: int, payload: str) -> store.ArchiveRecord:
    ms, seq = store.parse_stream_id(event.event_id)
    return store.ArchiveRecord(
        partition=partition,
        event_id=event.event_id,
        id_ms=ms,
        id_seq=seq,
        event_type=tag_of(event),
        # The archive keeps the payload as written; upcasting happens on every read.
        schema_version=stored_version,
        aggregate_id=event.aggregate_id,
        occurred_at=event.occurred_at,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        traceparent=event.traceparent,
        actor=event.actor,
        payload=payload,
    )


async def parse_in_slices(partition: int, stream: str, entries: list[tuple[str, dict[str, str]]]) -> Batch:
    """``parse_batch``, yielding to the commit in flight between slices (see ``Projector._fold``)."""
    batch = Batch(stream, [], [], [])
    for start in range(0, len(entries), FOLD_SLICE):
        part = parse_batch(partition, stream, entries[start : start + FOLD_SLICE])
        batch.entry_ids += part.entry_ids
        batch.events += part.events
        batch.records += part.records
        batch.undecodable += part.undecodable
        await asyncio.sleep(0)
    return batch
