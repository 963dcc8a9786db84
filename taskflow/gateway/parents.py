"""Checks on ``depends_on`` at submit time: parents exist, are yours, have not failed,
and the new edge closes no cycle (a breadth-first walk up the stored graph, one level per
round trip)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast
from uuid import UUID

from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.errors import invalid
from taskflow.gateway.queries import submitted_event, submitted_events, visible_to
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
    if await reaches(parents, task_id, lambda tasks: _parents_of(ctx, tasks)):
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


ParentsOf = Callable[[list[UUID]], Awaitable[dict[UUID, list[UUID]]]]


async def reaches(start: list[UUID], target: UUID, parents_of: ParentsOf) -> bool:
    """Is ``target`` among ``start`` or their ancestors? Walks the depends_on edges one
    level at a time, asking ``parents_of`` once per level for all its tasks, so the cost is
    the graph's depth in round trips, not its size. Each task is asked about once."""
    frontier, seen = set(start), set[UUID]()
    while frontier:
        if target in frontier:
            return True
        seen |= frontier
        edges = await parents_of(sorted(frontier))
        frontier = {parent for parents in edges.values() for parent in parents} - seen
    return False


async def _parents_of(ctx: GatewayContext, tasks: list[UUID]) -> dict[UUID, list[UUID]]:
    """Each task's parents: from the projection, else (not projected yet) its submission."""
    rows = await ctx.pool.fetch("SELECT task_id, depends_on FROM tasks WHERE task_id = ANY($1::uuid[])", tasks)
    edges: dict[UUID, list[UUID]] = {row["task_id"]: list(row["depends_on"]) for row in rows}
    missing = [task for task in tasks if task not in edges]
    if missing:
        for task, submitted in (await submitted_events(ctx, missing)).items():
            edges[task] = [UUID(parent) for parent in submitted.depends_on]
    return edges
