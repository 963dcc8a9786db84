"""``GET /api/v1/audit`` (admin): operator actions — who cancelled, retried, requeued,
paused, claimed, acknowledged or swapped what, when and why — newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

import msgspec
from litestar import get
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromQuery, QueryParameter

from taskflow.events.operator import Action, TargetKind
from taskflow.gateway.context import Caller, Ctx
from taskflow.gateway.cursor import decode_cursor, encode_cursor
from taskflow.gateway.errors import invalid

ACTIONS = frozenset(get_args(Action))


class AuditEntry(msgspec.Struct, kw_only=True):
    event_id: str
    occurred_at: datetime
    actor: str
    action: Action
    target_kind: TargetKind
    target: str
    reason: str
    via: Literal["rest", "cli"]
    request_id: str | None
    detail: dict[str, str]


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntry]
    next_cursor: str | None


class _Cursor(msgspec.Struct, array_like=True):
    occurred_at: datetime
    audit_id: UUID


_COLUMNS = "audit_id, event_id, occurred_at, actor, action, target_kind, target, reason, via, request_id, detail"
_detail = msgspec.json.Decoder(dict[str, str])


@get("/api/v1/audit")
async def list_audit(
    ctx: Ctx,
    principal: Caller,
    actor: Annotated[str | None, QueryParameter(max_length=255)] = None,
    action: Annotated[str | None, QueryParameter(max_length=32)] = None,
    target: Annotated[str | None, QueryParameter(max_length=64, description="A task or worker id.")] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    cursor: FromQuery[str | None] = None,
) -> AuditPage:
    """Operator actions with actor and reason, newest first; filters combine."""
    if not principal.is_admin:
        raise PermissionDeniedException("the audit trail needs the admin role")
    if action is not None and action not in ACTIONS:
        raise invalid("action", f"{action!r} is not one of {', '.join(sorted(ACTIONS))}", source="query")
    params: list[Any] = [limit + 1]
    where: list[str] = []

    def condition(sql: str, value: object) -> None:
        params.append(value)
        where.append(sql.format(f"${len(params)}"))

    for column, value in (("actor", actor), ("action", action), ("target", target)):
        if value is not None:
            condition(f"{column} = {{}}", value)
    if since is not None:
        condition("occurred_at >= {}", since)
    if until is not None:
        condition("occurred_at < {}", until)
    if cursor is not None:
        after = decode_cursor(cursor, _Cursor)
        params += [after.occurred_at, after.audit_id]
        where.append(f"(occurred_at, audit_id) < (${len(params) - 1}, ${len(params)})")
    rows = await ctx.pool.fetch(
        f"SELECT {_COLUMNS} FROM audit_log"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY occurred_at DESC, audit_id DESC LIMIT $1",
        *params,
    )
    items = [
        AuditEntry(
            **{k: v for k, v in dict(r).items() if k not in ("audit_id", "detail")}, detail=_detail.decode(r["detail"])
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(_Cursor(last["occurred_at"], last["audit_id"]))
    return AuditPage(items=items, next_cursor=next_cursor)


def _entry(row: dict[str, Any]) -> AuditEntry:
    fields = {k: v for k, v in row.items() if k not in ("audit_id", "detail")}
    return AuditEntry(**fields, detail=_detail.decode(row["detail"]))
