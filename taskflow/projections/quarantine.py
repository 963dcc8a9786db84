"""The quarantine: stream entries kept whole, with their error, instead of being projected.

An event that does not decode, one PostgreSQL refuses (a data error on its rows), one a
fold fails on, and a dispatch entry a worker could not read (``DispatchRejected``) each
become one ``quarantined_entries`` row, written in the transaction of the batch that met
it, so the projector goes on and nothing is dropped unseen (ADR 0014). Pure builders only.
"""

from __future__ import annotations

import asyncpg
import msgspec

from taskflow.events import DispatchRejected
from taskflow.storable import escape_nul

# Column widths of quarantined_entries (tables.py): a record must always fit, whatever
# the entry held, or the quarantine itself would refuse it.
_SHORT = 64
_STREAM = 255
_ERROR = 4000

# SQLSTATE classes of errors caused by the data written, not by the server or by us:
# 22 data exception (a NUL in text, a value out of range, a string too long) and 54
# program limit exceeded (a row or index entry too large). Any other error says nothing
# about one event and must not quarantine events one by one: an integrity violation (23)
# is a fold's bug, which would otherwise empty the projection into the quarantine.
_REFUSED_DATA_CLASSES = frozenset({"22", "54"})
# Stream ids are two unsigned 64-bit numbers; the columns are signed. Ids that high are
# only ever written by hand, and still kept (entry_id holds them exactly).
_BIGINT_MAX = 2**63 - 1


class QuarantineRecord(msgspec.Struct, frozen=True, array_like=True, gc=False):
    stream: str
    entry_id: str
    partition: int
    id_ms: int
    id_seq: int
    source: str
    event_type: str | None
    aggregate_id: str | None
    raw: bytes
    error: str

    @property
    def stream_id(self) -> tuple[int, int]:
        return self.id_ms, self.id_seq


def quarantined(
    *,
    stream: str,
    entry_id: str,
    partition: int,
    source: str,
    raw: bytes,
    error: str,
    event_type: str | None = None,
    aggregate_id: str | None = None,
) -> QuarantineRecord:
    """A record that fits its columns whatever the entry held (NULs escaped, cut to width)."""
    ms, _, seq = entry_id.partition("-")
    return QuarantineRecord(
        stream=_fit(stream, _STREAM),
        entry_id=entry_id,
        partition=partition,
        id_ms=min(int(ms), _BIGINT_MAX),
        id_seq=min(int(seq or 0), _BIGINT_MAX),
        source=source,
        event_type=None if event_type is None else _fit(event_type, _SHORT),
        aggregate_id=None if aggregate_id is None else _fit(aggregate_id, _SHORT),
        raw=raw,
        error=_fit(error, _ERROR),
    )


def of_rejected(event: DispatchRejected) -> QuarantineRecord:
    """The dispatch entry a worker could not read, as the worker reported it."""
    return quarantined(
        stream=event.stream,
        entry_id=event.entry_id,
        partition=event.partition,
        source="worker",
        raw=msgspec.json.encode(event.fields),
        error=event.error,
        event_type="dispatch",
        aggregate_id=event.task_id,
    )


def refused_by_postgres(error: BaseException) -> bool:
    """Whether PostgreSQL (or asyncpg, encoding an argument: SQLSTATE 22000) refused the
    data written, so the event behind it is to be quarantined rather than the write retried."""
    if isinstance(error, asyncpg.PostgresError):
        return str(error.sqlstate or "")[:2] in _REFUSED_DATA_CLASSES
    return False


def describe(error: BaseException) -> str:
    """The error as the quarantine keeps it: its type, message and PostgreSQL's detail."""
    text = f"{type(error).__name__}: {error}"
    detail = getattr(error, "detail", None)
    return f"{text} ({detail})" if detail and detail not in text else text


def _fit(text: str, width: int) -> str:
    text = escape_nul(text)
    return text if len(text) <= width else text[: width - 1] + "…"
