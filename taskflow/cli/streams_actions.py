"""``taskflow streams claim|ack|requeue --task ID --reason TEXT``: ops act on a task's
pending dispatch entry by the task's id; each action is an event naming the operator and
the reason (``GET /api/v1/audit``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

import click
import msgspec

from taskflow.cli._ops import run_once, with_redis
from taskflow.cli._runtime import fail, settings_from_env

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from taskflow.ops.actions import ActionDone, OpsAction
    from taskflow.streams.keyspace import Keyspace


def _task_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a task id (a UUID)") from None


def _action(name: OpsAction, summary: str, example: str) -> click.Command:
    @click.option("--task", "task_id", required=True, callback=_task_id, metavar="ID", help="The task's id.")
    @click.option("--reason", required=True, metavar="TEXT", help="Why: kept in the audit trail.")
    @click.option("--operator", default=None, metavar="NAME", help="Who acts [default: user@host].")
    @click.option("--force", is_flag=True, help="Act even though the entry's owner is a live worker.")
    @click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
    def command(task_id: str, reason: str, operator: str | None, force: bool, as_json: bool) -> None:
        from taskflow.ops.actions import ActionRefused, act, default_operator

        if not reason.strip():
            fail("--reason must say why (it is kept in the audit trail)")
        if len(reason) > 500:
            fail("--reason is longer than 500 characters")
        settings = settings_from_env()
        who = operator or default_operator()

        async def run(redis: Redis, ks: Keyspace) -> ActionDone:
            try:
                return await act(
                    redis, ks, settings, action=name, task_id=task_id, reason=reason, operator=who, force=force
                )
            except ActionRefused as e:
                fail(str(e))

        done = run_once(with_redis(settings, run))
        click.echo(msgspec.json.encode(done).decode() if as_json else _sentence(done))

    command.__doc__ = f"{summary}\n\n\b\nExample:\n  {example}\n"
    return click.command(name)(command)


def _sentence(done: ActionDone) -> str:
    what: dict[str, Callable[[ActionDone], str]] = {
        "claim": lambda d: "handed to the live workers (it looks idle past the lease; the next reclaim takes it)",
        "ack": lambda d: f"acknowledged: the work is given up, the task is CANCELLED ({d.task_event_id})",
        "requeue": lambda d: f"requeued as {d.new_entry_id} ({d.task_event_id})",
    }
    return (
        f"task {done.task_id}: entry {done.entry_id} on {done.stream}, held by {done.previous_owner}, "
        f"{what[done.action](done)}; recorded as {done.audit_event_id or 'operator.acted'} by {done.operator}"
    )


claim = _action(
    "claim",
    "Hand the task's pending dispatch entry to the live workers now, instead of after the lease.",
    'taskflow streams claim --task 0b6f6c1e-8c1d-4a4e-9f57-1d2f3a4b5c6d --reason "worker host lost"',
)
ack = _action(
    "ack",
    "Give the task's pending work up: acknowledge its entry; the task ends CANCELLED.",
    'taskflow streams ack --task 0b6f6c1e-8c1d-4a4e-9f57-1d2f3a4b5c6d --reason "poison input, ticket 123"',
)
requeue = _action(
    "requeue",
    "Put the task back in line as a new dispatch entry (deliveries and runs start again).",
    'taskflow streams requeue --task 0b6f6c1e-8c1d-4a4e-9f57-1d2f3a4b5c6d --reason "fixed the bug"',
)
