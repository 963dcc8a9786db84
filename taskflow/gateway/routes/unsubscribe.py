"""``/unsubscribe/{token}``: no JWT, no cookie; the signed token is the credential
(``campaigns.unsubscribe``).

- ``POST`` is RFC 8058 one-click (the mailbox provider posts ``List-Unsubscribe=One-Click``)
  or the confirmation page's button: the recipient is UNSUBSCRIBED at once, and answered
  200 with a tiny page, never a redirect (RFC 8058 section 3.2: a provider does not follow
  one).
- ``GET`` only shows a page whose button POSTs: link scanners and mail security gateways
  prefetch every GET in a mail, and must not unsubscribe anyone by doing so.

A forged, tampered or unknown token gets the same 404 whichever it is, after the same one
Redis round trip, so probing tells nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from litestar import Request, Response, get, post
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from taskflow.campaigns.unsubscribe import UnsubscribeTarget, read_token
from taskflow.events import RecipientUnsubscribed
from taskflow.gateway.context import Ctx, GatewayContext, RequestId

_NOT_FOUND = "no such unsubscribe link"
_DONE = (
    "<!doctype html><title>Unsubscribed</title><p>You are unsubscribed. You will get no more mail from this sender.</p>"
)
# action="": the form posts to the page's own address, so it also works behind a proxy that
# serves the gateway under a path prefix (TASKFLOW_PUBLIC_URL with a path).
_CONFIRM = """<!doctype html><title>Unsubscribe</title>
<form method="post" action="">
<input type="hidden" name="via" value="page">
<p>Stop receiving these emails?</p>
<button type="submit">Unsubscribe</button>
</form>"""


@get("/unsubscribe/{token:str}", media_type=MediaType.HTML, raises=[NotFoundException])
async def unsubscribe_page(ctx: Ctx, token: FromPath[str]) -> str:
    """A confirmation page; nothing changes until its button is pressed."""
    if await _owner(ctx, read_token(ctx.unsubscribe_key, token)) is None:
        raise NotFoundException(_NOT_FOUND)
    return _CONFIRM


@post("/unsubscribe/{token:str}", media_type=MediaType.HTML, status_code=HTTP_200_OK, raises=[NotFoundException])
async def unsubscribe(
    ctx: Ctx, request_id: RequestId, token: FromPath[str], request: Request[Any, Any, Any]
) -> Response[str]:
    """Unsubscribe the recipient the token names (idempotent: a second POST says the same)."""
    target = read_token(ctx.unsubscribe_key, token)
    owner = await _owner(ctx, target)
    if target is None or owner is None:
        raise NotFoundException(_NOT_FOUND)
    via = _via(await request.body())
    event = RecipientUnsubscribed(
        aggregate_id=target.campaign_id,
        occurred_at=datetime.now(UTC),
        correlation_id=target.campaign_id,
        actor=f"recipient:{target.recipient_id}",
        request_id=request_id,
        recipient_id=target.recipient_id,
        email=target.email,
        via=via,
    )
    recorded = await ctx.campaigns.record(target.campaign_id, target.recipient_id, "unsubscribed", event)
    if recorded.outcome == "unknown":
        raise NotFoundException(_NOT_FOUND)
    # The owner's suppression list is in no campaign's slot, so not in the script's step;
    # added right after, and again by any repeated POST (SADD is idempotent).
    await ctx.redis.sadd(ctx.keyspace.suppressed(owner), target.email)  # type: ignore[misc]
    return Response(_DONE, media_type=MediaType.HTML, status_code=HTTP_200_OK)


async def _owner(ctx: GatewayContext, target: UnsubscribeTarget | None) -> str | None:
    # A refused token costs the same round trip as a good one (on a campaign that
    # cannot exist), so timing does not tell a forgery from an unknown campaign.
    campaign_id = target.campaign_id if target is not None else "-"
    owner: str | None = await ctx.redis.hget(ctx.keyspace.campaign(campaign_id), "owner")  # type: ignore[misc]
    return owner if target is not None else None


def _via(body: bytes) -> Literal["one-click", "page"]:
    """The page's button sends ``via=page``; RFC 8058 providers send ``List-Unsubscribe=One-Click``."""
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=5)
    return "page" if form.get("via") == ["page"] else "one-click"
