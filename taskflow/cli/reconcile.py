"""``taskflow reconcile``: after Redis lost data, compare it with PostgreSQL's archive and
say what is missing (``taskflow.ops.reconcile``); with --repair, put it back."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
import msgspec

from taskflow.cli._ops import console, run_once, with_redis_and_postgres
from taskflow.cli._runtime import settings_from_env

if TYPE_CHECKING:
    # The CLI imports what a command needs when it runs (ADR 0012): annotations only here.
    import asyncpg
    from redis.asyncio import Redis

    from taskflow.ops.reconcile import Report
    from taskflow.streams.keyspace import Keyspace


@click.command()
@click.option("--repair", is_flag=True, help="Re-create groups, move streams past the archive, re-dispatch lost tasks.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
def reconcile(repair: bool, as_json: bool) -> None:
    """After Redis lost data (an AOF tail lost in a crash, an empty Redis in its place),
    compare it with PostgreSQL's archive and list what is wrong: missing consumer groups,
    streams whose next ids the projector would skip (behind the archive's checkpoint),
    and accepted tasks that have not finished and that Redis no longer has (no marker,
    nothing in line). Exit 0 when nothing is wrong (or, with --repair, everything was
    repaired), 1 otherwise.

    With --repair: the groups are created, the streams moved past the checkpoint
    (XSETID), and each lost task is put back in line from its archived TaskSubmitted
    with a TaskQueued(reason=requeued) event; running it twice dispatches nothing twice.
    Submissions Redis acknowledged but lost before the projector archived them are known
    nowhere and cannot be listed (docs/durability.md).

    \b
    Example:
      taskflow reconcile                      # what is wrong; exit 1 if anything
      taskflow reconcile --json | jq '.lost_tasks[].task_id'
      taskflow reconcile --repair             # after restarting Redis, before the workers
    """
    from taskflow.ops.reconcile import exit_status
    from taskflow.ops.reconcile_repair import repair as apply_repairs
    from taskflow.ops.reconcile_survey import survey

    settings = settings_from_env()

    async def work(redis: Redis, pool: asyncpg.Pool, keyspace: Keyspace) -> Report:
        found = await survey(redis, pool, keyspace)
        if repair and found.report.problems:
            found.report.repairs = await apply_repairs(
                redis,
                pool,
                keyspace,
                found.report,
                found.candidates,
                now=datetime.now(UTC),
                marker_ttl_seconds=settings.idempotency_ttl_seconds,
            )
        return found.report

    report = run_once(with_redis_and_postgres(settings, work))
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
    else:
        _print(report)
    sys.exit(exit_status(report, repaired=repair))


def _print(report: Report) -> None:
    out = console()
    _table(
        f"missing consumer groups ({len(report.missing_groups)})",
        ("stream", "group", "stream exists"),
        [(g.stream, g.group, "yes" if g.stream_exists else "no") for g in report.missing_groups],
    )
    _table(
        f"streams whose next ids would be lost ({len(report.streams_behind)})",
        ("stream", "last generated id", "must pass", "because of"),
        [(s.stream, s.last_generated_id, s.move_to, s.because) for s in report.streams_behind],
    )
    _table(
        f"accepted tasks Redis lost ({len(report.lost_tasks)})",
        ("task id", "name", "status", "submitted at"),
        [(t.task_id, t.task_name, t.status, t.submitted_at.isoformat(timespec="seconds")) for t in report.lost_tasks],
    )
    _table(
        f"repairs ({len(report.repairs)})",
        ("what", "target", "outcome", "detail"),
        [(r.what, r.target, r.outcome, r.detail) for r in report.repairs],
        style_of={"repaired": "green", "already_repaired": "yellow", "failed": "red"},
    )
    if report.unjudged_tasks:
        out.print(
            f"{report.unjudged_tasks:,} unfinished tasks have events the projector has not archived yet: "
            "not judged; run again once it caught up."
        )
    if report.problems == 0:
        out.print(f"namespace {report.deployment!r}: Redis agrees with the archive.")
    elif not report.repairs:
        out.print(f"namespace {report.deployment!r}: {report.problems} problems; --repair fixes them.")


def _table(
    title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], style_of: dict[str, str] | None = None
) -> None:
    """A table of ``rows``, none when there are none; ``style_of`` colours a row by its
    third cell (a repair's outcome)."""
    if not rows:
        return
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    for row in rows:
        table.add_row(*row, style=(style_of or {}).get(row[2]))
    console().print(table)
