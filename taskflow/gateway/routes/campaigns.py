"""``/api/v1/campaigns``: create (JSON or a CSV upload), list, read, preview, the
recipients and their CSV export. A campaign is its creator's: anyone else gets a 404
(``sees_all`` roles see every campaign)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from taskflow.campaigns.creation import append_campaign
from taskflow.campaigns.ids import normalised
from taskflow.campaigns.intake import MAX_FIELD_CHARS, Rejected
from taskflow.campaigns.templates import FIELD_OF, RenderedMessage, RenderError, render
from taskflow.events.campaign import CampaignRecipient, CampaignStatus, RecipientStatus
from taskflow.gateway import campaign_queries as queries
from taskflow.gateway.auth import Principal
from taskflow.gateway.campaign_queries import CampaignPage, CampaignView, RecipientPage, RecipientView
from taskflow.gateway.campaign_request import MAX_REQUEST_BYTES, CreateOperation, parse_create
from taskflow.gateway.context import Caller, Ctx, GatewayContext, RequestId
from taskflow.gateway.errors import invalid
from taskflow.spreadsheet import safe_cell


class CampaignAccepted(msgspec.Struct, kw_only=True):
    campaign_id: UUID
    status: CampaignStatus
    accepted: int
    rejected: list[Rejected]
    duplicates: int
    # The id of its CampaignCreated event.
    event_id: str


class PreviewRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Whom to render for: a recipient of the campaign (by id or address), or a sample
    made of ``fields`` (with ``email`` and ``name`` if given)."""

    recipient_id: UUID | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=MAX_FIELD_CHARS)] = ""
    fields: dict[str, Annotated[str, msgspec.Meta(max_length=MAX_FIELD_CHARS)]] | None = None


CSV_COLUMNS = (
    "recipient_id",
    "email",
    "name",
    "status",
    "sent_at",
    "task_id",
    "error_message",
    "bounce_reason",
    "fields",
)
# Where the preview's unsubscribe link points: no real token is made for a preview.
PREVIEW_UNSUBSCRIBE_URL = "/unsubscribe/preview"
_fields_json = msgspec.json.Encoder()


class CampaignController(Controller):
    path = "/api/v1/campaigns"

    @post("/", status_code=HTTP_201_CREATED, operation_class=CreateOperation, request_max_body_size=MAX_REQUEST_BYTES)
    async def create_campaign(
        self, ctx: Ctx, principal: Caller, request_id: RequestId, request: Request[Any, Any, Any]
    ) -> Response[CampaignAccepted]:
        """JSON (``recipients: [{email, name?, fields?}]``) or multipart (form fields and a
        CSV file ``recipients``: ``email``, ``name``, other columns are fields). Rows that
        cannot be mailed are reported in ``rejected`` (1-based data row), repeated
        addresses counted in ``duplicates``; templates that cannot be rendered safely
        for every recipient are a 422 naming the template."""
        parsed = await parse_create(request, principal.sub, request_id)
        event_ids = await append_campaign(ctx.redis, ctx.keyspace, parsed.campaign)
        campaign = parsed.campaign
        accepted = CampaignAccepted(
            campaign_id=UUID(campaign.campaign_id),
            status=campaign.status,  # type: ignore[arg-type]
            accepted=len(parsed.audience.recipients),
            rejected=parsed.audience.rejected,
            duplicates=parsed.audience.duplicates,
            event_id=event_ids[0],
        )
        headers = {"Location": f"/api/v1/campaigns/{campaign.campaign_id}"}
        return Response(accepted, status_code=HTTP_201_CREATED, headers=headers)

    @get("/")
    async def list_campaigns(
        self,
        ctx: Ctx,
        principal: Caller,
        status: FromQuery[CampaignStatus | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> CampaignPage:
        """The caller's campaigns, newest first (every campaign for admin, analyst, ops)."""
        return await queries.list_campaigns(ctx, principal, status, limit, cursor)

    @get("/{campaign_id:uuid}")
    async def get_campaign(self, ctx: Ctx, principal: Caller, campaign_id: FromPath[UUID]) -> CampaignView:
        return await _campaign(ctx, campaign_id, principal)

    @post("/{campaign_id:uuid}/preview", status_code=HTTP_200_OK)
    async def preview(
        self, ctx: Ctx, principal: Caller, campaign_id: FromPath[UUID], data: JSONBody[PreviewRequest]
    ) -> RenderedMessage:
        """The message as a recipient would get it: ``{recipient_id}`` or ``{email}`` of
        one of the campaign's recipients, or ``{fields, email?, name?}`` as a sample."""
        await _campaign(ctx, campaign_id, principal)
        template = await queries.campaign_template(ctx, campaign_id)
        if template is None:
            raise NotFoundException(f"campaign {campaign_id} has no templates any more")
        recipient = await _preview_recipient(ctx, campaign_id, data)
        try:
            # CPU-bound, bounded by templates.MAX_RENDER_SECONDS: off the event loop.
            return await asyncio.to_thread(render, template, recipient, PREVIEW_UNSUBSCRIBE_URL)
        except RenderError as e:
            raise invalid(FIELD_OF[e.part], e.message) from e

    @get("/{campaign_id:uuid}/recipients")
    async def list_recipients(
        self,
        ctx: Ctx,
        principal: Caller,
        campaign_id: FromPath[UUID],
        status: FromQuery[RecipientStatus | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: FromQuery[str | None] = None,
    ) -> RecipientPage:
        """The ledger: each recipient and what happened to it."""
        await _campaign(ctx, campaign_id, principal)
        return await queries.recipients_page(ctx, campaign_id, status, limit, cursor)

    @get("/{campaign_id:uuid}/recipients.csv", media_type="text/csv")
    async def export_recipients(
        self,
        ctx: Ctx,
        principal: Caller,
        campaign_id: FromPath[UUID],
        status: FromQuery[RecipientStatus | None] = None,
    ) -> Stream:
        """The ledger as CSV, streamed. A cell that a spreadsheet would run as a formula
        (starting with = + - @, a tab or CR) is written with a leading ``'``."""
        await _campaign(ctx, campaign_id, principal)
        return Stream(
            _csv_lines(queries.all_recipients(ctx, campaign_id, status)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}-recipients.csv"'},
        )


async def _campaign(ctx: GatewayContext, campaign_id: UUID, principal: Principal) -> CampaignView:
    view = await queries.get_campaign(ctx, campaign_id, principal)
    if view is None:
        raise NotFoundException(f"campaign {campaign_id} not found")
    return view


async def _preview_recipient(ctx: GatewayContext, campaign_id: UUID, data: PreviewRequest) -> CampaignRecipient:
    found: RecipientView | None = None
    if data.recipient_id is not None:
        found = await queries.find_recipient(ctx, campaign_id, "recipient_id", data.recipient_id)
    elif data.email is not None and data.fields is None:
        found = await queries.find_recipient(ctx, campaign_id, "email", normalised(data.email))
    else:
        return CampaignRecipient(
            recipient_id="", email=data.email or "preview@example.com", name=data.name, fields=data.fields or {}
        )
    if found is None:
        raise NotFoundException(f"no such recipient in campaign {campaign_id}")
    return CampaignRecipient(
        recipient_id=str(found.recipient_id), email=found.email, name=found.name, fields=found.fields
    )


async def _csv_lines(recipients: AsyncIterator[RecipientView]) -> AsyncIterator[str]:
    yield _line(CSV_COLUMNS)
    async for r in recipients:
        cells = (
            str(r.recipient_id),
            r.email,
            r.name,
            r.status,
            r.sent_at.isoformat() if r.sent_at else "",
            str(r.task_id or ""),
            r.error_message or "",
            r.bounce_reason or "",
            _fields_json.encode(r.fields).decode() if r.fields else "",
        )
        yield _line([safe_cell(c) for c in cells])


def _line(cells: tuple[str, ...] | list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()
