"""Appending a checked submission from the gateway (invariants 2, 3). The checks, the
event and the refusals are ``taskflow.submission``'s, shared with the in-process producer."""

from __future__ import annotations

from taskflow.gateway.context import GatewayContext
from taskflow.gateway.schemas import TaskAccepted
from taskflow.submission.intake import Intake, refusal_of
from taskflow.submission.known_ids import ScalarQuery, refuse_if_projected_elsewhere


async def submit(ctx: GatewayContext, intake: Intake) -> tuple[TaskAccepted, bool]:
    """Append atomically; returns the answer and whether it replays an earlier submit."""

    async def database() -> ScalarQuery:
        return ctx.pool

    await refuse_if_projected_elsewhere(ctx.redis, ctx.keyspace, database, [intake])
    outcome = await ctx.submitter.submit(
        intake.event, fingerprint=intake.fingerprint, marker_ttl_seconds=ctx.settings.idempotency_ttl_seconds
    )
    if (refusal := refusal_of(intake, outcome)) is not None:
        raise refusal
    return TaskAccepted(task_id=intake.task_id, status=intake.status, event_id=outcome.event_id), not outcome.created


async def submit_batch(ctx: GatewayContext, intakes: list[Intake]) -> list[TaskAccepted]:
    """Append every submission in one pipeline (each its own atomic script call), in
    order. A resubmitted batch answers with the tasks it made the first time."""

    async def database() -> ScalarQuery:
        return ctx.pool

    await refuse_if_projected_elsewhere(ctx.redis, ctx.keyspace, database, intakes)
    outcomes = await ctx.submitter.submit_many(
        [(intake.event, intake.fingerprint) for intake in intakes],
        marker_ttl_seconds=ctx.settings.idempotency_ttl_seconds,
    )
    for intake, outcome in zip(intakes, outcomes, strict=True):
        if (refusal := refusal_of(intake, outcome)) is not None:
            raise refusal
    return [
        TaskAccepted(task_id=intake.task_id, status=intake.status, event_id=outcome.event_id)
        for intake, outcome in zip(intakes, outcomes, strict=True)
    ]
