"""Running a campaign over REST: ``POST /api/v1/campaigns/{id}/start``, ``/pause``,
``/resume``, ``/resend-failed`` (each with ``?reason=`` for the audit trail). Only the
campaign's owner (or an admin) acts on it; anyone else gets 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from litestar import post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_409_CONFLICT

from taskflow.campaigns.audience import Audience
from taskflow.campaigns.control import CampaignConflict, CampaignControl, CampaignUnknown, ControlOutcome
from taskflow.events import Envelope
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import Caller, Ctx, GatewayContext, Reason, RequestId


@post("/api/v1/campaigns/{campaign_id:uuid}/start", status_code=HTTP_202_ACCEPTED)
async def start_campaign(
    ctx: Ctx, principal: Caller, request_id: RequestId, campaign_id: FromPath[UUID], reason: Reason = ""
) -> ControlOutcome:
    """DRAFT or SCHEDULED -> RUNNING: one send task per pending recipient, appended in
    batches. Starting a RUNNING campaign again submits what a crash may have left out."""
    return await _control(ctx, principal, request_id, campaign_id, "start", reason)


@post("/api/v1/campaigns/{campaign_id:uuid}/pause", status_code=HTTP_202_ACCEPTED)
async def pause_campaign(
    ctx: Ctx, principal: Caller, request_id: RequestId, campaign_id: FromPath[UUID], reason: Reason = ""
) -> ControlOutcome:
    """RUNNING -> PAUSED: no new send starts (sends already talking to the server finish)."""
    return await _control(ctx, principal, request_id, campaign_id, "pause", reason)


@post("/api/v1/campaigns/{campaign_id:uuid}/resume", status_code=HTTP_202_ACCEPTED)
async def resume_campaign(
    ctx: Ctx, principal: Caller, request_id: RequestId, campaign_id: FromPath[UUID], reason: Reason = ""
) -> ControlOutcome:
    """PAUSED -> RUNNING: the recipients still pending are sent; none is mailed twice."""
    return await _control(ctx, principal, request_id, campaign_id, "resume", reason)


@post("/api/v1/campaigns/{campaign_id:uuid}/resend-failed", status_code=HTTP_202_ACCEPTED)
async def resend_failed(
    ctx: Ctx, principal: Caller, request_id: RequestId, campaign_id: FromPath[UUID], reason: Reason = ""
) -> ControlOutcome:
    """Send again to the FAILED recipients only (not the bounced or unsubscribed)."""
    return await _control(ctx, principal, request_id, campaign_id, "resend", reason)


async def _control(
    ctx: GatewayContext,
    principal: Principal,
    request_id: str,
    campaign_id: UUID,
    action: Literal["start", "pause", "resume", "resend"],
    reason: str,
) -> ControlOutcome:
    cid = str(campaign_id)
    owner = await ctx.redis.hget(ctx.keyspace.campaign(cid), "owner")  # type: ignore[misc]
    if owner is None or (owner != principal.sub and not principal.is_admin):
        raise NotFoundException(f"campaign {campaign_id} not found")
    envelope: Envelope = {
        "aggregate_id": cid,
        "occurred_at": datetime.now(UTC),
        "correlation_id": cid,
        "causation_id": None,
        "traceparent": None,
        "actor": principal.sub,
        "request_id": request_id,
    }
    control = CampaignControl(ctx.redis, ctx.keyspace)
    try:
        return await control.run(
            action,
            cid,
            envelope,
            audience=Audience(ctx.redis, ctx.pool, ctx.keyspace),
            reason=reason,
            marker_ttl_seconds=ctx.settings.idempotency_ttl_seconds,
        )
    except CampaignUnknown:
        raise NotFoundException(f"campaign {campaign_id} not found") from None
    except CampaignConflict as e:
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(e)) from None
