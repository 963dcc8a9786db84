"""``taskflow streams consumers``: every group's consumers, and pruning the ones gone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
import msgspec

from taskflow.cli._ops import age, console, run_once, with_redis
from taskflow.cli._runtime import fail, settings_from_env

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from taskflow.ops.consumers import ConsumerInfo, Pruned
    from taskflow.streams.keyspace import Keyspace


@click.command()
@click.option("--prune", is_flag=True, help="Delete consumers holding no pending entry and idle past --min-idle.")
@click.option(
    "--min-idle",
    "min_idle_ms",
    type=click.IntRange(min=0),
    default=None,
    metavar="MS",
    help="Idle time (ms) past which an empty consumer is pruned [default: TASKFLOW_WORKER_DEAD_AFTER_SECONDS].",
)
@click.option("--dry-run", is_flag=True, help="With --prune: say which consumers would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
def consumers(prune: bool, min_idle_ms: int | None, dry_run: bool, as_json: bool) -> None:
    """Every consumer of every group: pending entries, idle time (and inactive time on
    Redis 7.2+). With --prune, delete those holding NO pending entry and idle longer
    than --min-idle; a consumer holding entries is never deleted.

    \b
    Example:
      taskflow streams consumers
      taskflow streams consumers --prune --min-idle 600000 --dry-run
    """
    from taskflow.ops.consumers import list_consumers, prunable
    from taskflow.ops.consumers import prune as delete

    if dry_run and not prune:
        fail("--dry-run goes with --prune")
    settings = settings_from_env()
    # By default, idle as long as a silent worker takes to be declared dead: by then its
    # pending entries have been reclaimed and its name is only clutter.
    min_idle = int(settings.worker_dead_after_seconds * 1000) if min_idle_ms is None else min_idle_ms

    async def run(redis: Redis, ks: Keyspace) -> tuple[list[ConsumerInfo], list[Pruned] | None]:
        found = await list_consumers(redis, ks)
        if not prune:
            return found, None
        chosen = prunable(found, min_idle)
        if dry_run:
            return found, [_would_go(c) for c in chosen]
        return found, await delete(redis, ks, chosen, min_idle)

    found, pruned = run_once(with_redis(settings, run))
    if as_json:
        click.echo(msgspec.json.encode({"consumers": found, "pruned": pruned, "dry_run": dry_run}).decode())
        return
    _print(found, pruned, dry_run=dry_run, min_idle_ms=min_idle)


def _would_go(consumer: ConsumerInfo) -> Pruned:
    from taskflow.ops.consumers import Pruned

    return Pruned(consumer=consumer, deleted=False)


def _print(found: list[ConsumerInfo], pruned: list[Pruned] | None, *, dry_run: bool, min_idle_ms: int) -> None:
    from rich.table import Table

    going = {(p.consumer.key, p.consumer.group, p.consumer.name): p for p in pruned or []}
    table = Table(title=f"consumers ({len(found):,})")
    for column in ("stream", "group", "consumer", "pending", "idle", "inactive", ""):
        table.add_column(column, no_wrap=True, justify="right" if column in ("pending", "idle", "inactive") else "left")
    for c in found:
        p = going.get((c.key, c.group, c.name))
        note = "" if p is None else ("would go" if dry_run else ("deleted" if p.deleted else "kept: busy again"))
        table.add_row(
            c.stream,
            c.group,
            c.name,
            f"[yellow]{c.pending:,}[/]" if c.pending else "0",
            age(c.idle_ms),
            "-" if c.inactive_ms is None else age(c.inactive_ms),
            note,
        )
    out = console()
    out.print(table)
    if pruned is not None:
        verb = "would go" if dry_run else "deleted"
        gone = len(pruned) if dry_run else sum(p.deleted for p in pruned)
        out.print(f"{gone} consumer(s) {verb}: no pending entry, idle over {age(min_idle_ms)}")
