"""Reads of the campaigns projection (``campaigns``, ``email_recipients``), and of the
campaign hash in Redis while the projection has not caught up with a new campaign
(read-your-writes, ARCHITECTURE invariant 9). Ownership is checked here: a campaign
that is not the caller's is None, as one that does not exist (the routes answer 404)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg
import msgspec

from taskflow.campaigns.templates import CampaignTemplate
from taskflow.events.campaign import CampaignStatus, RecipientStatus
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.cursor import decode_cursor, encode_cursor
from taskflow.gateway.queries import visible_to


class CampaignView(msgspec.Struct, kw_only=True):
    campaign_id: UUID
    name: str
    status: CampaignStatus
    template_subject: str
    template_body: str
    template_variables: dict[str, str]
    rate_limit_per_minute: int
    created_by: str | None
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    total_recipients: int
    sent_count: int
    failed_count: int
    pending_count: int
    # Share of recipients no longer pending (sent, failed, skipped), two decimals.
    progress_percent: float


class CampaignPage(msgspec.Struct, kw_only=True):
    items: list[CampaignView]
    next_cursor: str | None


class RecipientView(msgspec.Struct, kw_only=True):
    recipient_id: UUID
    email: str
    name: str
    status: RecipientStatus
    fields: dict[str, str]
    sent_at: datetime | None
    task_id: UUID | None
    error_message: str | None
    bounce_reason: str | None


class RecipientPage(msgspec.Struct, kw_only=True):
    items: list[RecipientView]
    next_cursor: str | None


class _CampaignCursor(msgspec.Struct, array_like=True):
    created_at: datetime
    campaign_id: UUID


class _RecipientCursor(msgspec.Struct, array_like=True):
    recipient_id: UUID


_SELECT = """
SELECT c.*, (SELECT count(*) FROM email_recipients r
             WHERE r.campaign_id = c.campaign_id AND r.status = 'PENDING') AS pending_count
FROM campaigns c
"""
_personalization = msgspec.json.Decoder(dict[str, str])
_template = msgspec.json.Decoder(CampaignTemplate)
_variables = msgspec.json.Decoder(dict[str, str])


def progress_percent(total: int, pending: int) -> float:
    return round(100 * (total - pending) / total, 2) if total else 0.0


def _view(row: asyncpg.Record) -> CampaignView:
    fields = {k: row[k] for k in CampaignView.__struct_fields__ if k not in ("progress_percent", "template_variables")}
    return CampaignView(
        **fields,
        template_variables=_variables.decode(row["template_variables"] or "{}"),
        progress_percent=progress_percent(row["total_recipients"], row["pending_count"]),
    )


async def get_campaign(ctx: GatewayContext, campaign_id: UUID, principal: Principal) -> CampaignView | None:
    row = await ctx.pool.fetchrow(_SELECT + " WHERE c.campaign_id = $1", campaign_id)
    if row is not None:
        return _view(row) if visible_to(principal, row["created_by"]) else None
    return await _from_redis(ctx, campaign_id, principal)


async def _from_redis(ctx: GatewayContext, campaign_id: UUID, principal: Principal) -> CampaignView | None:
    """A campaign created a moment ago, before the projector wrote its row."""
    state: dict[str, str] = await ctx.redis.hgetall(ctx.keyspace.campaign(str(campaign_id)))  # type: ignore[misc]
    if not state or not visible_to(principal, state.get("owner")):
        return None
    template = _template.decode(state["template"])
    counts = {k: int(state.get(k, "0")) for k in ("pending", "sent", "failed", "skipped")}
    total = sum(counts.values())
    return CampaignView(
        campaign_id=campaign_id,
        name=state.get("name", ""),
        status=state["status"].upper(),  # type: ignore[arg-type]
        template_subject=template.subject,
        template_body=template.body,
        template_variables=template.variables,
        rate_limit_per_minute=int(state["rate_limit_per_minute"]),
        created_by=state["owner"],
        created_at=datetime.fromisoformat(state["created_at"]),
        scheduled_at=datetime.fromisoformat(state["scheduled_at"]) if state.get("scheduled_at") else None,
        started_at=None,
        completed_at=None,
        total_recipients=total,
        sent_count=counts["sent"],
        failed_count=counts["failed"],
        pending_count=counts["pending"],
        progress_percent=progress_percent(total, counts["pending"]),
    )


async def list_campaigns(
    ctx: GatewayContext, principal: Principal, status: str | None, limit: int, cursor: str | None
) -> CampaignPage:
    params: list[object] = [limit + 1]
    where = []
    if not principal.sees_all:
        params.append(principal.sub)
        where.append(f"c.created_by = ${len(params)}")
    if status is not None:
        params.append(status)
        where.append(f"c.status = ${len(params)}")
    if cursor is not None:
        after = decode_cursor(cursor, _CampaignCursor)
        params += [after.created_at, after.campaign_id]
        where.append(f"(c.created_at, c.campaign_id) < (${len(params) - 1}, ${len(params)})")
    rows = await ctx.pool.fetch(
        _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY c.created_at DESC, "
        "c.campaign_id DESC LIMIT $1",
        *params,
    )
    items = [_view(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor(_CampaignCursor(items[-1].created_at, items[-1].campaign_id))
    return CampaignPage(items=items, next_cursor=next_cursor)


_RECIPIENT_COLUMNS = "recipient_id, email, status, personalization, sent_at, task_id, error_message, bounce_reason"


def recipient_view(row: asyncpg.Record) -> RecipientView:
    fields = _personalization.decode(row["personalization"] or "{}")
    name = fields.pop("name", "")
    return RecipientView(
        recipient_id=row["recipient_id"],
        email=row["email"],
        name=name,
        status=row["status"],
        fields=fields,
        sent_at=row["sent_at"],
        task_id=row["task_id"],
        error_message=row["error_message"],
        bounce_reason=row["bounce_reason"],
    )


async def recipients_page(
    ctx: GatewayContext, campaign_id: UUID, status: str | None, limit: int, cursor: str | None
) -> RecipientPage:
    after = decode_cursor(cursor, _RecipientCursor).recipient_id if cursor is not None else None
    rows = await _recipient_rows(ctx, campaign_id, status, after, limit + 1)
    items = [recipient_view(r) for r in rows[:limit]]
    next_cursor = encode_cursor(_RecipientCursor(items[-1].recipient_id)) if len(rows) > limit else None
    return RecipientPage(items=items, next_cursor=next_cursor)


async def _recipient_rows(
    ctx: GatewayContext, campaign_id: UUID, status: str | None, after: UUID | None, limit: int
) -> list[asyncpg.Record]:
    # Keyset on the primary key: pages stay exact however the ledger changes meanwhile.
    rows: list[asyncpg.Record] = await ctx.pool.fetch(
        f"SELECT {_RECIPIENT_COLUMNS} FROM email_recipients WHERE campaign_id = $1 "
        "AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR recipient_id > $3) "
        "ORDER BY recipient_id LIMIT $4",
        campaign_id,
        status,
        after,
        limit,
    )
    return rows


async def all_recipients(
    ctx: GatewayContext, campaign_id: UUID, status: str | None, chunk: int = 1_000
) -> AsyncIterator[RecipientView]:
    """Every recipient, a page at a time (the CSV export streams them)."""
    after: UUID | None = None
    while True:
        rows = await _recipient_rows(ctx, campaign_id, status, after, chunk)
        for row in rows:
            yield recipient_view(row)
        if len(rows) < chunk:
            return
        after = rows[-1]["recipient_id"]


Lookup = Literal["recipient_id", "email"]


async def find_recipient(ctx: GatewayContext, campaign_id: UUID, by: Lookup, value: object) -> RecipientView | None:
    column = "recipient_id" if by == "recipient_id" else "lower(email)"
    row = await ctx.pool.fetchrow(
        f"SELECT {_RECIPIENT_COLUMNS} FROM email_recipients WHERE campaign_id = $1 AND {column} = $2 LIMIT 1",
        campaign_id,
        value,
    )
    return recipient_view(row) if row is not None else None


async def campaign_template(ctx: GatewayContext, campaign_id: UUID) -> CampaignTemplate | None:
    """The templates as the send task reads them: from the campaign hash."""
    raw: str | None = await ctx.redis.hget(ctx.keyspace.campaign(str(campaign_id)), "template")  # type: ignore[misc]
    return _template.decode(raw) if raw else None
