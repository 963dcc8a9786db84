"""``/api/v1/quarantine`` (admin): stream entries that could not be projected or run,
kept whole with their error (ADR 0014), newest first."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import get
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromQuery, QueryParameter

from taskflow.gateway.context import Caller, Ctx
from taskflow.gateway.cursor import decode_cursor, encode_cursor
from taskflow.ops.quarantine import QuarantinedEntry as QuarantinedRow


class QuarantinedEntry(QuarantinedRow, kw_only=True):
    """A row as ``taskflow streams quarantine`` lists it, with the bytes as read: exactly,
    in base64, and as text for a reader (bytes that are not UTF-8 written as \\xNN)."""

    raw_base64: str
    raw_text: str


class QuarantinePage(msgspec.Struct, kw_only=True):
    items: list[QuarantinedEntry]
    next_cursor: str | None


class _Cursor(msgspec.Struct, array_like=True):
    quarantined_at: datetime
    stream: str
    entry_id: str


_COLUMNS = "stream, entry_id, partition, source, event_type, aggregate_id, error, quarantined_at, raw"


@get("/api/v1/quarantine")
async def list_quarantine(
    ctx: Ctx,
    principal: Caller,
    source: FromQuery[Literal["projector", "worker"] | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    cursor: FromQuery[str | None] = None,
) -> QuarantinePage:
    # Entries may hold any user's data, unowned once they cannot be read: admins (and the
    # read-only analyst and ops roles) only.
    if not principal.sees_all:
        raise PermissionDeniedException("the quarantine needs the admin, analyst or ops role")
    where: list[str] = []
    params: list[object] = [limit + 1]
    if source is not None:
        params.append(source)
        where.append(f"source = ${len(params)}")
    if cursor is not None:
        after = decode_cursor(cursor, _Cursor)
        params += [after.quarantined_at, after.stream, after.entry_id]
        n = len(params)
        where.append(f"(quarantined_at, stream, entry_id) < (${n - 2}, ${n - 1}, ${n})")
    rows = await ctx.pool.fetch(
        f"SELECT {_COLUMNS} FROM quarantined_entries"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY quarantined_at DESC, stream DESC, entry_id DESC LIMIT $1",
        *params,
    )
    items = [
        QuarantinedEntry(
            **{k: v for k, v in dict(r).items() if k != "raw"},
            raw_base64=base64.b64encode(r["raw"]).decode(),
            raw_text=bytes(r["raw"]).decode("utf-8", "backslashreplace"),
        )
        for r in rows[:limit]
    ]
    last = items[-1] if len(rows) > limit else None
    next_cursor = None if last is None else encode_cursor(_Cursor(last.quarantined_at, last.stream, last.entry_id))
    return QuarantinePage(items=items, next_cursor=next_cursor)
