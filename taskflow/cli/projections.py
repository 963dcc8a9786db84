"""``taskflow projections``: checkpoints and lag, a rebuild into the shadow schema, a
verify against live (non-zero exit on a difference), and the blue/green swap."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import click
import msgspec

from taskflow.cli._progress import progress_bar
from taskflow.cli._runtime import fail, run, settings_from_env

if TYPE_CHECKING:
    import asyncpg
    from redis.asyncio import Redis

    from taskflow.projections.maintenance import SwapReport, VerifyReport
    from taskflow.projections.rebuild import BuildReport
    from taskflow.settings import Settings
    from taskflow.streams.keyspace import Keyspace

T = TypeVar("T")


@click.group()
def projections() -> None:
    """The PostgreSQL projections: status, rebuild, verify, swap.

    \b
    Example:
      taskflow projections status
      taskflow projections verify || (taskflow projections rebuild && taskflow projections swap --reason "drift")
    """


@projections.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def status(as_json: bool) -> None:
    """Each partition's checkpoint, fencing token and lag; the shadow, if one is built.

    \b
    Example:
      taskflow projections status --json | jq '.per_partition[].unprojected'
    """
    from taskflow.projections.maintenance import status as read_status

    found = _run(settings_from_env(), lambda pool, redis, ks: read_status(pool, redis, ks))
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
        return
    for p in found.per_partition:
        lag = "?" if p.unprojected is None else f"{p.unprojected:,} entries"
        behind = "" if not p.behind_seconds else f", {p.behind_seconds:.1f} s behind"
        click.echo(
            f"partition {p.partition}: checkpoint {p.checkpoint} (fence {p.fence}), "
            f"stream at {p.stream_last_id or '-'}, unprojected {lag}{behind}"
        )
    shadow = found.shadow
    if shadow is None:
        click.echo("shadow: none (taskflow projections rebuild makes one)")
    else:
        click.echo(
            f"shadow: built {shadow.built_at.isoformat()} from {shadow.events:,} events, "
            f"{shadow.behind_live:,} events behind live (a swap folds them in)"
        )


@projections.command()
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on a terminal).")
def rebuild(as_json: bool, progress: bool | None) -> None:
    """Replay the archive into the shadow schema (taskflow_shadow), beside the live
    tables, which stay in use. Then `verify` or `swap`.

    \b
    Example:
      taskflow projections rebuild && taskflow projections swap --reason "new fold"
    """
    from taskflow.projections.maintenance import events_to_rebuild, rebuild_shadow

    settings = settings_from_env()
    retention = timedelta(days=settings.dlq_retention_days)

    async def work(pool: asyncpg.Pool, _redis: Redis, _ks: Keyspace) -> BuildReport:
        with progress_bar("rebuild", await events_to_rebuild(pool), progress) as advance:
            return await rebuild_shadow(pool, dead_letter_retention=retention, on_progress=advance)

    report = _run(settings, work)
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
        return
    _print_build(report, "shadow built")


@projections.command()
@click.option(
    "--show", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Differing rows listed per table."
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on a terminal).")
def verify(show: int, as_json: bool, progress: bool | None) -> None:
    """Rebuild from scratch (in a transaction that leaves nothing behind) and compare
    with the live tables at the same instant. Exit 0 when they match; exit 1 and list
    the differing rows when they do not.

    \b
    Example:
      taskflow projections verify --show 5 || echo "live projections differ from the events"
    """
    from taskflow.projections.maintenance import events_to_rebuild
    from taskflow.projections.maintenance import verify as run_verify

    settings = settings_from_env()
    retention = timedelta(days=settings.dlq_retention_days)

    async def work(pool: asyncpg.Pool, _redis: Redis, _ks: Keyspace) -> VerifyReport:
        with progress_bar("verify", await events_to_rebuild(pool), progress) as advance:
            return await run_verify(pool, dead_letter_retention=retention, show=show, on_progress=advance)

    report = _run(settings, work)
    if as_json:
        click.echo(msgspec.json.encode({"clean": report.clean, **msgspec.to_builtins(report)}).decode())
    else:
        _print_verify(report)
    if not report.clean:
        sys.exit(1)


@projections.command()
@click.option("--reason", default="", metavar="TEXT", help="Why: kept in the audit trail (say it).")
@click.option("--operator", default=None, metavar="NAME", help="Who acts [default: user@host].")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def swap(reason: str, operator: str | None, as_json: bool) -> None:
    """Make the shadow live: fold in what it has not seen, then swap the tables in one
    transaction (readers wait an instant, none fails; the projector goes on with the new
    tables). The old tables are kept in taskflow_previous until the next swap.

    \b
    Example:
      taskflow projections rebuild && taskflow projections swap --reason "fold fix, ticket 42"
    """
    from datetime import UTC, datetime

    from taskflow.events import OperatorActed
    from taskflow.ops.actions import default_operator
    from taskflow.projections.maintenance import NoShadow
    from taskflow.projections.maintenance import swap as run_swap

    # Optional, as `taskflow projections swap` was before the audit trail; recorded either way.
    who = operator or default_operator()
    audit = OperatorActed(
        aggregate_id="projections",
        occurred_at=datetime.now(UTC),
        correlation_id="projections",
        actor=who,
        action="swap",
        target_kind="projections",
        reason=reason,
        via="cli",
    )

    async def work(pool: asyncpg.Pool, redis: Redis, ks: Keyspace) -> SwapReport:
        try:
            return await run_swap(pool, redis, ks, audit)
        except NoShadow as e:
            fail(str(e))

    report = _run(settings_from_env(), work)
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
        return
    click.echo(_swap_text(report))


def _print_verify(report: VerifyReport) -> None:
    _print_build(report.build, "rebuilt for comparison")
    for table in report.tables:
        state = "same" if table.clean else f"{table.live_only:,} live and {table.rebuilt_only:,} rebuilt rows differ"
        click.echo(f"  {table.table:<18} live {table.live_rows:>9,}  rebuilt {table.rebuilt_rows:>9,}  {state}")
        for row in table.shown:
            if row.kind == "missing":
                what = "missing from live"
            elif row.kind == "extra":
                what = "in live only, no event explains it"
            else:
                what = ", ".join(f"{c.column}: live {c.live} != rebuilt {c.rebuilt}" for c in row.columns)
            click.echo(f"    {row.key}: {what}")
    click.echo("verify: clean" if report.clean else "verify: live projections DIFFER from the events")


def _swap_text(report: SwapReport) -> str:
    return (
        f"swapped: the shadow is live ({report.caught_up_before + report.caught_up_locked:,} events folded in "
        f"first, tables locked {report.locked_seconds * 1000:.0f} ms); the old tables are in taskflow_previous"
    )


def _print_build(report: BuildReport, what: str) -> None:
    rows = ", ".join(f"{table} {n:,}" for table, n in report.rows.items())
    click.echo(
        f"{what}: {report.events:,} events in {report.seconds:.2f} s ({report.events_per_second:,.0f} events/s); {rows}"
    )


def _run(settings: Settings, work: Callable[[asyncpg.Pool, Redis, Keyspace], Awaitable[T]]) -> T:
    async def main() -> T:
        from taskflow.database import open_pool
        from taskflow.streams.connection import open_redis
        from taskflow.streams.keyspace import Keyspace

        redis = await open_redis(settings)
        try:
            pool = await open_pool(settings, min_size=1, max_size=2)
            try:
                return await work(pool, redis, Keyspace.of(settings))
            finally:
                await pool.close()
        finally:
            await redis.aclose()

    # The collector tuned and uvloop (a rebuild allocates per event, as the projector does).
    return run(main())
