"""The ``send_email`` task's work: one recipient of a campaign, mailed at most once per
attempt, its fate recorded in the ledger with the campaign event (ARCHITECTURE
invariant 2). The steps, in order:

1. ``begin_send`` (one round trip): done already -> its state, no mail; campaign paused,
   or its rate has no slot soon -> ``Postponed``; a go claims the recipient and reserves a
   slot of the campaign's rate;
2. suppressed (the owner's list, read just after the claim) -> SKIPPED;
3. build the mail (a header injection -> FAILED, nothing reaches the wire);
4. wait for the reserved slot;
5. unless admitted just now, still running? (a pause stops new sends within the wait of
   one slot) else ``Postponed``;
6. SMTP: accepted -> SENT; 5xx -> BOUNCED (recipient refused) / FAILED, at once; 4xx or a
   broken connection -> ``SmtpTemporaryFailure`` (retried with backoff), FAILED on the last try.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import aiosmtplib
import structlog
from redis.exceptions import RedisError

from taskflow.campaigns.context import SendContext, SendingCampaign
from taskflow.campaigns.errors import HeaderInjection, SmtpTemporaryFailure
from taskflow.campaigns.ids import message_id
from taskflow.campaigns.ledger import Admission, Outcome, RecipientEvent, Recorded
from taskflow.campaigns.message import Addressing, build_message
from taskflow.campaigns.rendering import RecipientFields, render_for
from taskflow.campaigns.requests import SendRequest, SendResult, SendStatus
from taskflow.campaigns.signing import sign
from taskflow.campaigns.smtp import Refusal, UnsendableAddress, refusal_of
from taskflow.campaigns.templates import RenderError
from taskflow.campaigns.unsubscribe import make_token
from taskflow.events import Envelope, RecipientFailed, RecipientSent, RecipientSkipped
from taskflow.tasks import Postponed, TaskRun

log = structlog.get_logger("taskflow.campaigns.send")
# Pauses between tries of recording an outcome while Redis is away (about 15 s in all).
RECORD_RETRY_PAUSES_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)

# A paused (or not yet started) campaign's tasks look again this often: resuming takes
# effect within it, and a long pause costs one TaskFailed(Postponed) per task per period.
PAUSED_RECHECK_S = 2.0
# The longest a task sleeps for its rate slot; a slot further off is not reserved and the
# task comes back later (a slow campaign must not hold worker slots, or outlive timeouts),
# when the slot ``begin_send`` told it of is this close (``postponement_s``): each waiting
# task comes back about once, in its turn, instead of all trying every second.
MAX_RATE_WAIT_MS = 10_000
# How much nearer than the longest wait a postponed task's slot is when it comes back: it
# still gets its go when the rate has run this far past the slot it was told (a retried
# send took a slot meanwhile, or the workers' clocks differ a little).
RETURN_MARGIN_MS = 2_000
# A send that reaches its rate slot within this long of ``begin_send`` (which saw the
# campaign running) does not look at the campaign's status again: a pause meanwhile lets
# this one mail out at most this late, well inside the promise that a pause stops new
# sends within 1 s (at high rates nearly every send waits a little, and the look cost 7%
# of a sending worker's CPU).
RECHECK_AFTER_S = 0.25
_STATUS_OF_STATE: dict[str, SendStatus] = {
    "sent": "SENT",
    "failed": "FAILED",
    "bounced": "BOUNCED",
    "skipped": "SKIPPED",
    "unsubscribed": "SKIPPED",
}


async def send_campaign_mail(ctx: SendContext, run: TaskRun, request: SendRequest) -> SendResult:
    campaign = await ctx.campaign(request.campaign_id)
    if campaign is None:
        return SendResult("SKIPPED", reason="no such campaign")
    admission = await ctx.ledger.begin_send(
        request.campaign_id,
        request.recipient_id,
        run.task_id,
        owner=campaign.owner,
        email=request.email,
        now_ms=int(time.time() * 1000),
        max_wait_ms=MAX_RATE_WAIT_MS,
    )
    admitted = time.monotonic()
    if (settled := await _settled(ctx, run, request, admission)) is not None:
        return settled
    mid = message_id(request.campaign_id, request.recipient_id, ctx.message_domain)
    try:
        wire = _wire(ctx, campaign, request, mid)
    except (HeaderInjection, RenderError) as e:
        return await _failed(
            ctx, run, request, mid, Refusal(permanent=True, bounced=False, smtp_code=None, text=str(e))
        )
    await _wait_for_rate(ctx, request.campaign_id, admission.wait_ms, admitted)
    if (final := await _transmit(ctx, run, request, wire)) is not None:
        return await _failed(ctx, run, request, mid, final)
    sent = RecipientSent(**_envelope(request), recipient_id=request.recipient_id, task_id=run.task_id, message_id=mid)
    return await _finish(ctx, request, "sent", sent, SendResult("SENT", message_id=mid))


async def _settled(ctx: SendContext, run: TaskRun, request: SendRequest, admission: Admission) -> SendResult | None:
    """Steps 1 and 2: None when this run may mail the recipient (claimed in the ledger),
    else the result without a mail; ``Postponed`` while the campaign is not running.
    The claim comes first: only the task the ledger gives the recipient to may record it
    (a superseded task skipping it would move the counters under another one's send)."""
    match admission.answer:
        case "unknown":
            return SendResult("SKIPPED", reason="not a recipient of the campaign")
        case "done":
            state = await ctx.ledger.state_of(request.campaign_id, request.recipient_id) or "sent"
            return SendResult(_STATUS_OF_STATE.get(state, "SENT"), reason="already done")
        case "superseded":
            return SendResult("SUPERSEDED", reason="the ledger gave this recipient to another send task")
        case "paused":
            raise Postponed("the campaign is not running", PAUSED_RECHECK_S)
        case "later":
            raise Postponed("the campaign's send rate has no slot soon", postponement_s(admission.wait_ms))
    if admission.suppressed:
        skipped = RecipientSkipped(
            **_envelope(request), recipient_id=request.recipient_id, reason="suppressed", task_id=run.task_id
        )
        return await _finish(ctx, request, "skipped", skipped, SendResult("SKIPPED", reason="suppressed"))
    return None


def postponement_s(told_slot_ms: int) -> float:
    """When a task told of a rate slot ``told_slot_ms`` off comes back: once that slot is
    within the longest wait, less the margin; at least 1 s."""
    return max(1.0, (told_slot_ms - MAX_RATE_WAIT_MS + RETURN_MARGIN_MS) / 1000)


async def _transmit(ctx: SendContext, run: TaskRun, request: SendRequest, wire: bytes) -> Refusal | None:
    """Step 6: None when the server accepted the mail; the refusal when it is final (5xx,
    or any failure on the last try); ``SmtpTemporaryFailure`` to be retried."""
    try:
        await ctx.pool.send(wire, ctx.sender_address, request.email.strip())
    except UnsendableAddress as e:
        return Refusal(permanent=True, bounced=False, smtp_code=None, text=str(e))
    except aiosmtplib.SMTPException as e:
        refusal = refusal_of(e)
        if refusal.permanent or run.last_try:
            return refusal
        raise SmtpTemporaryFailure(refusal.text, refusal.smtp_code) from e
    except OSError as e:  # refused or reset before aiosmtplib could name it
        if run.last_try:
            return Refusal(permanent=False, bounced=False, smtp_code=None, text=str(e))
        raise SmtpTemporaryFailure(f"cannot reach the SMTP server: {e}") from e
    return None


def _wire(ctx: SendContext, campaign: SendingCampaign, request: SendRequest, mid: str) -> bytes:
    token = make_token(ctx.unsubscribe_key, request.campaign_id, request.email)
    url = f"{ctx.settings.public_url.rstrip('/')}/unsubscribe/{token}"
    rendered = render_for(campaign.template, RecipientFields(request.email, request.name, request.fields), url)
    addressing = Addressing(ctx.settings.smtp_from, request.email, request.name, mid, url)
    wire = build_message(rendered, addressing, datetime.now(UTC))
    return sign(wire, ctx.dkim_key) if ctx.dkim_key is not None else wire


async def _wait_for_rate(ctx: SendContext, campaign_id: str, wait_ms: int, admitted: float) -> None:
    """Steps 4 and 5: sleep until the reserved slot (counted from the admission, so the
    time spent building the mail is not added to it), then, unless the admission was just
    now, make sure a pause in the meantime holds."""
    remaining_s = wait_ms / 1000 - (time.monotonic() - admitted)
    if remaining_s > 0:
        await asyncio.sleep(remaining_s)
    if time.monotonic() - admitted > RECHECK_AFTER_S and await ctx.ledger.status_of(campaign_id) != "running":
        raise Postponed("the campaign was paused", PAUSED_RECHECK_S)


async def _failed(ctx: SendContext, run: TaskRun, request: SendRequest, mid: str, refusal: Refusal) -> SendResult:
    log.warning("campaign_mail_refused", smtp_code=refusal.smtp_code, bounced=refusal.bounced, error=refusal.text)
    event = RecipientFailed(
        **_envelope(request),
        recipient_id=request.recipient_id,
        task_id=run.task_id,
        error=refusal.text,
        smtp_code=refusal.smtp_code,
        bounced=refusal.bounced,
    )
    status: SendStatus = "BOUNCED" if refusal.bounced else "FAILED"
    result = SendResult(status, message_id=mid, reason=refusal.text)
    return await _finish(ctx, request, "bounced" if refusal.bounced else "failed", event, result)


async def _finish(
    ctx: SendContext, request: SendRequest, outcome: Outcome, event: RecipientEvent, result: SendResult
) -> SendResult:
    recorded = await _record_persistently(ctx, request, outcome, event)
    if recorded.outcome == "already":
        # Someone else settled it first (an unsubscribe, a duplicate run): theirs stands.
        return SendResult(_STATUS_OF_STATE.get(recorded.state, result.status), result.message_id, "already done")
    return result


async def _record_persistently(
    ctx: SendContext, request: SendRequest, outcome: Outcome, event: RecipientEvent
) -> Recorded:
    """``record``, tried again in place through a short Redis outage: after the server took
    the mail, a failed record would make the task's retry mail the recipient again."""
    for attempt, pause in enumerate(RECORD_RETRY_PAUSES_S):
        try:
            return await ctx.ledger.record(request.campaign_id, request.recipient_id, outcome, event)
        except (RedisError, OSError) as e:
            log.warning("campaign_record_retry", attempt=attempt + 1, error=repr(e))
            await asyncio.sleep(pause)
    return await ctx.ledger.record(request.campaign_id, request.recipient_id, outcome, event)


def _envelope(request: SendRequest) -> Envelope:
    return {
        "aggregate_id": request.campaign_id,
        "occurred_at": datetime.now(UTC),
        "correlation_id": request.campaign_id,
        "causation_id": None,
        "traceparent": None,
        "actor": "send_email",
    }
