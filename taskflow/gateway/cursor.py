"""Opaque page cursors: a Struct of the last row's sort key, as URL-safe base64 JSON.

A cursor comes back from the client, so it is input like any other: one that does not
decode, or decodes to what PostgreSQL cannot compare (a time outside its range, a NUL),
is a 422 naming ``cursor``, never a 500 from the query that uses it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from taskflow.gateway.errors import invalid
from taskflow.storable import nul_path

C = TypeVar("C", bound=msgspec.Struct)

# PostgreSQL's timestamptz covers 4713 BC to 294276 AD; Python's datetime, years 1-9999.
# An offset can carry year 1 to year 0 in UTC, which PostgreSQL then refuses.
_EARLIEST = datetime(2, 1, 1, tzinfo=UTC)


def encode_cursor(key: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(cursor: str, key_type: type[C]) -> C:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = msgspec.json.decode(raw, type=key_type)
    except (binascii.Error, ValueError, msgspec.DecodeError) as e:
        raise _not_ours() from e
    for value in msgspec.structs.astuple(key):
        if isinstance(value, datetime) and (value.tzinfo is None or value < _EARLIEST):
            raise _not_ours()
        if nul_path(value, "cursor") is not None:
            raise _not_ours()
    return key


def _not_ours() -> Exception:
    return invalid("cursor", "is not a cursor this API returned", source="query")
