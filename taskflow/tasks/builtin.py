"""Tasks every TaskFlow installation ships: handy for smoke tests, demos and benchmarks."""

from __future__ import annotations

import asyncio
from typing import Any

from taskflow.campaigns.requests import SendRequest, SendResult
from taskflow.errors import TaskFlowError
from taskflow.tasks.context import current_task
from taskflow.tasks.registry import task


class TaskFailedOnPurpose(TaskFlowError):
    """Raised by the ``fail`` task."""


@task
async def echo(**kwargs: Any) -> dict[str, Any]:
    """Returns its keyword arguments."""
    return kwargs


@task
async def sleep(seconds: float = 1.0) -> float:
    """Sleeps ``seconds`` without blocking the worker, then returns them."""
    await asyncio.sleep(seconds)
    return seconds


@task
def fail(message: str = "failed on purpose") -> None:
    """Raises ``TaskFailedOnPurpose(message)``."""
    raise TaskFailedOnPurpose(message)


@task
def noop() -> None:
    """Does nothing: measures the pipeline, not the task."""


@task(isolation="thread")
def noop_thread() -> None:
    """Does nothing, in a thread of the worker (``isolation="thread"``, ADR 0018)."""


@task
async def send_email(
    campaign_id: str, recipient_id: str, email: str, name: str = "", fields: dict[str, str] | None = None
) -> SendResult:
    """Mails one recipient of a campaign (``taskflow.campaigns.send``): at most once, at
    the campaign's rate, recorded in its ledger. Result ``{"status": "SENT" | "FAILED" |
    "BOUNCED" | "SKIPPED", "message_id": ...}``; an SMTP 4xx is retried with backoff."""
    # The sending machinery (SMTP, templates, DKIM and its DNS library) loads on the first
    # send: a worker that never sends starts ~90 ms sooner (docs/benchmarks.md, issue 11).
    from taskflow.campaigns.context import SendContext
    from taskflow.campaigns.send import send_campaign_mail

    request = SendRequest(campaign_id, recipient_id, email, name, fields or {})
    return await send_campaign_mail(await SendContext.for_this_loop(), current_task(), request)
