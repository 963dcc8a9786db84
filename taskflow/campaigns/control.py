"""Running a campaign: start (or its scheduled time), pause, resume, resend the failed.

Each is one Lua step (``lua/campaign_control.lua``) that changes the campaign's status,
assigns recipients to send tasks in the ledger and appends the campaign's events; the
send tasks are then submitted through the one submit path. A send task sends only while
the ledger assigns its recipient to it (``ledger.py``), so:

- a pause unassigns every queued recipient in the same step: their tasks find nothing to
  do, nothing is cancelled, and sends already talking to the server finish;
- a resume assigns the still-pending recipients to new tasks: no recipient is ever
  assigned to two tasks, so none is mailed twice;
- a start retried after a crash (tasks not all submitted) assigns the recipients still
  pending to new send tasks of a new run; the tasks of the first try that were submitted
  find their recipient given to another task and end without a mail (``superseded``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal
from uuid import NAMESPACE_URL, uuid5

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskflow.campaigns.audience import Audience
from taskflow.errors import TaskFlowError
from taskflow.events import (
    CampaignCompleted,
    CampaignPaused,
    CampaignRecipient,
    CampaignResumed,
    CampaignStarted,
    Envelope,
    FailedResent,
    OperatorActed,
    TaskSubmitted,
    encode,
    tag_of,
)
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts
from taskflow.streams.submit import Submitter

ControlAction = Literal["start", "pause", "resume", "resend"]
_TASK_SPACE = uuid5(NAMESPACE_URL, "https://taskflow.dev/campaigns/send-tasks")
# Send tasks retry a temporary SMTP refusal (4xx) this often, with the worker's backoff.
SEND_RETRIES = 5
SEND_TIMEOUT_S = 120
# Send tasks submitted per round trip.
SUBMIT_SLICE = 500


class CampaignConflict(TaskFlowError):
    """The action does not apply to the campaign's status (409)."""

    def __init__(self, campaign_id: str, action: str, status: str) -> None:
        super().__init__(f"campaign {campaign_id} is {status}: it cannot {action}")
        self.status = status


class CampaignUnknown(TaskFlowError):
    """No live campaign state in Redis for this id (404)."""


class ControlOutcome(msgspec.Struct, kw_only=True):
    campaign_id: str
    status: Literal["RUNNING", "PAUSED"]
    event_id: str
    # Send tasks submitted by this action (start, resume, resend).
    send_tasks: int


def send_task_id(campaign_id: str, recipient_id: str, run: int) -> str:
    """The send task of a recipient in a run (each start, resume or resend is one):
    the same on a retry of that action, new for the next."""
    return str(uuid5(_TASK_SPACE, f"{campaign_id}:{recipient_id}:{run}"))


class CampaignControl(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.campaigns")
        self._control = self.register("campaign_control")
        self._submitter = Submitter(redis, keyspace)

    async def run(
        self,
        action: ControlAction,
        campaign_id: str,
        envelope: Envelope,
        *,
        audience: Audience,
        reason: str = "",
        audit: bool = True,
        marker_ttl_seconds: int,
    ) -> ControlOutcome:
        """Do ``action``; ``audience`` gives the campaign's recipients (start, resume,
        resend need them). ``envelope`` is the acting principal's (the owner, an admin,
        or the coordinator for a scheduled start)."""
        ks = self.keyspace
        run = int(await self.redis.hget(ks.campaign(campaign_id), "runs") or 0)  # type: ignore[misc]
        recipients: Sequence[CampaignRecipient] = [] if action == "pause" else await audience.recipients(campaign_id)
        pairs = [(r.recipient_id, send_task_id(campaign_id, r.recipient_id, run)) for r in recipients]
        event = _event(action, envelope, reason)
        record = OperatorActed(**envelope, action=action, target_kind="campaign", reason=reason)
        completed = CampaignCompleted(**envelope, sent=0, failed=0, skipped=0)
        partition = ks.partition_of(campaign_id)
        answer = await self._control(
            keys=[
                ks.campaign(campaign_id),
                ks.campaign_ledger(campaign_id),
                ks.events_of(campaign_id),
                ks.campaigns_due(partition),
                ks.campaigns_running(partition),
            ],
            args=[
                action,
                encode(event),
                tag_of(event),
                encode(record) if audit else b"",
                tag_of(record),
                encode(completed),
                tag_of(completed),
                campaign_id,
                *[value for pair in pairs for value in pair],
            ],
        )
        outcome, detail, *assigned = (str(a) for a in answer)
        if outcome == "unknown":
            raise CampaignUnknown(f"no campaign {campaign_id}")
        if outcome == "conflict":
            raise CampaignConflict(campaign_id, action, detail)
        chosen = set(assigned)
        by_id = {r.recipient_id: r for r in recipients}
        tasks = [send_task(by_id[rid], campaign_id, task_id, envelope) for rid, task_id in pairs if rid in chosen]
        # The markers must outlive the sends: a slow campaign runs for days, and a send task
        # without its marker would look gone to the stalled-send sweep.
        rate = int(await self.redis.hget(ks.campaign(campaign_id), "rate_limit_per_minute") or 100)  # type: ignore[misc]
        lasting = marker_ttl_seconds + 2 * 60 * len(tasks) // max(1, rate)
        fingerprint = f"campaign:{campaign_id}"
        # In slices, so the first sends start while the rest are still being submitted:
        # one pipeline of 10,000 kept every worker idle for the whole of it (0.6 s). A
        # submit the server refused does not stop the other slices (in one pipeline, every
        # submit was tried); it is raised once all were. A lost connection is raised at once.
        failure: RedisError | None = None
        for first in range(0, len(tasks), SUBMIT_SLICE):
            try:
                await self._submitter.submit_many(
                    [(t, fingerprint) for t in tasks[first : first + SUBMIT_SLICE]], marker_ttl_seconds=lasting
                )
            except (RedisConnectionError, RedisTimeoutError):
                raise
            except RedisError as e:
                failure = failure or e
        if failure is not None:
            raise failure
        return ControlOutcome(
            campaign_id=campaign_id,
            status="PAUSED" if action == "pause" else "RUNNING",
            event_id=detail,
            send_tasks=len(tasks),
        )


def send_task(recipient: CampaignRecipient, campaign_id: str, task_id: str, envelope: Envelope) -> TaskSubmitted:
    """The ``send_email`` task of one recipient (kwargs per ``campaigns/__init__.py``)."""
    kwargs = {
        "campaign_id": campaign_id,
        "recipient_id": recipient.recipient_id,
        "email": recipient.email,
        "name": recipient.name,
        "fields": recipient.fields,
    }
    return TaskSubmitted(
        aggregate_id=task_id,
        occurred_at=datetime.now(UTC),
        correlation_id=campaign_id,
        causation_id=None,
        traceparent=envelope.get("traceparent"),
        actor=envelope.get("actor"),
        request_id=envelope.get("request_id"),
        task_name="send_email",
        kwargs=msgspec.Raw(msgspec.json.encode(kwargs)),
        max_retries=SEND_RETRIES,
        timeout_seconds=SEND_TIMEOUT_S,
        campaign_id=campaign_id,
    )


def _event(
    action: ControlAction, envelope: Envelope, reason: str
) -> CampaignStarted | CampaignPaused | CampaignResumed | FailedResent:
    # send_tasks=-1 and recipients=() are filled in by the script, which alone knows them.
    if action == "start":
        return CampaignStarted(**envelope, send_tasks=-1)
    if action == "pause":
        return CampaignPaused(**envelope, reason=reason)
    if action == "resume":
        return CampaignResumed(**envelope, reason=reason, send_tasks=-1)
    return FailedResent(**envelope, recipients=())
