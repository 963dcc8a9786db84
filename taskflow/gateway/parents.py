"""Checks on ``depends_on`` at submit time: parents exist, are yours, have not failed,
and the new edge closes no cycle (a DFS over the stored graph)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast
from uuid import UUID

from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.errors import invalid
from taskflow.gateway.queries import submitted_event, visible_to
from taskflow.streams.marker import ENDED_BADLY, STATE_OF_STATUS


async def check_parents(ctx: GatewayContext, principal: Principal, task_id: UUID, parents: list[UUID]) -> bool:
    """Refuse a bad graph with a 422; True when every parent has already completed."""
    if task_id in parents:
        raise invalid("depends_on", f"task {task_id} cannot depend on itself (a cycle)")
    completed = True
    for parent in dict.fromkeys(parents):
        state, owner = await _state_and_owner(ctx, parent)
        if state is None or not visible_to(principal, owner):
            raise invalid("depends_on", f"unknown task {parent}")
        if state in ENDED_BADLY:
            raise invalid("depends_on", f"task {parent} has already ended as {state}; it can never complete")
        completed = completed and state == "succeeded"
    if await _reaches(ctx, start=parents, target=task_id):
        raise invalid("depends_on", f"task {task_id} is already an ancestor of its parents (a cycle)")
    return completed


async def _state_and_owner(ctx: GatewayContext, task_id: UUID) -> tuple[str | None, str | None]:
    """The live state from the task marker, else the projection's status in the same words."""
    row = await ctx.pool.fetchrow("SELECT status, created_by FROM tasks WHERE task_id = $1", task_id)
    state = await cast("Awaitable[str | None]", ctx.redis.hget(ctx.keyspace.task_marker(str(task_id)), "state"))
    if row is not None:
        return state or STATE_OF_STATUS.get(row["status"], "pending"), row["created_by"]
    submitted = await submitted_event(ctx, task_id)
    return (state, submitted.actor) if submitted is not None else (None, None)


async def _parents_of(ctx: GatewayContext, task_id: UUID) -> list[UUID]:
    stored = await ctx.pool.fetchval("SELECT depends_on FROM tasks WHERE task_id = $1", task_id)
    if stored is not None:
        return list(stored)
    submitted = await submitted_event(ctx, task_id)
    return [UUID(p) for p in submitted.depends_on] if submitted is not None else []


async def _reaches(ctx: GatewayContext, start: list[UUID], target: UUID) -> bool:
    """Depth-first walk up the depends_on edges from ``start``: is ``target`` among them?"""
    stack, seen = list(start), set()
    while stack:
        node = stack.pop()
        if node == target:
            return True
        if node in seen:
            continue
        seen.add(node)
        stack.extend(await _parents_of(ctx, node))
    return False
