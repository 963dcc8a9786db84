"""UUIDs of projected rows: parsed from event fields, or derived from them (uuid5).

Rows carry asyncpg's UUID type, a C subclass of ``uuid.UUID``: equal to, and hashing like,
the standard one, but parsed, printed, hashed and sent to PostgreSQL several times faster;
the projector handles a few of these per event (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from asyncpg.pgproto.pgproto import UUID as FastUUID

_ID_SPACE = uuid5(NAMESPACE_URL, "https://taskflow.dev/projections")
_ID_SPACE_BYTES = _ID_SPACE.bytes


@lru_cache(maxsize=65_536)
def as_uuid(value: str) -> UUID:
    """``uuid.UUID(value)``, as asyncpg's type (every spelling ``uuid.UUID`` accepts).
    Cached: each event of an aggregate names it again (and its worker), about three
    parses per event, each several times the cost of a cache hit."""
    try:
        return FastUUID(value)
    except ValueError:
        return FastUUID(UUID(value).bytes)  # braces, "urn:uuid:": rare, the slow way


def uuids_of(values: set[str]) -> set[UUID]:
    """The values that are UUIDs, parsed: rows to load for a batch. An event naming no valid
    id fails its own fold and is quarantined alone, not the whole batch."""
    ids = set()
    for value in values:
        try:
            ids.add(as_uuid(value))
        except ValueError:
            continue
    return ids


@lru_cache(maxsize=65_536)
def derived_id(*parts: str | int) -> UUID:
    """``uuid5`` of the parts joined by ":" in the projections' id space: a stable row id
    from the event data that creates the row (cached: the start and the end of an attempt
    name the same execution)."""
    digest = bytearray(hashlib.sha1(_ID_SPACE_BYTES + ":".join(map(str, parts)).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return FastUUID(bytes(digest))


def uuid_or_none(value: str | None) -> UUID | None:
    """An optional id from an event: None when absent or not a UUID (a field written by
    a client or an older writer), never an error that would stop the fold."""
    if value is None:
        return None
    try:
        return as_uuid(value)
    except ValueError:
        return None
