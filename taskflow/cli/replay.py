"""``taskflow replay``: the event history for analysts (table, JSON lines, CSV) and the
state of tasks and workers at a moment (``--as-of``)."""

from __future__ import annotations

import csv
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from taskflow.cli._progress import progress_bar
from taskflow.cli._runtime import fail, run, settings_from_env
from taskflow.spreadsheet import safe_cell

if TYPE_CHECKING:
    from taskflow.replay import EventFilter, History, Snapshot
    from taskflow.settings import Settings

FORMATS = ("table", "jsonl", "csv")
TASK_STATUSES = ("PENDING", "SCHEDULED", "WAITING", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT", "CANCELLED")


class Moment(click.ParamType):  # type: ignore[type-arg]
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        from taskflow.replay.moments import BadMoment, parse_moment

        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value), datetime.now(UTC))
        except BadMoment as e:
            self.fail(str(e), param, ctx)


@click.command()
@click.option("--aggregate", default=None, metavar="ID", help="One task's (or worker's) events.")
@click.option("--type", "types", multiple=True, metavar="T", help="Event type, e.g. task.failed (repeatable).")
@click.option("--correlation-id", default=None, metavar="ID", help="Events of one correlation id.")
@click.option("--since", type=Moment(), default=None, help="Appended at or after (ISO 8601, now, -15m, -2h, -7d).")
@click.option("--until", type=Moment(), default=None, help="Appended before this time.")
@click.option("--as-of", "as_of", type=Moment(), default=None, help="The state of tasks and workers at this time.")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(TASK_STATUSES), help="With --as-of: tasks in this status."
)
@click.option("--worker", default=None, metavar="ID", help="With --as-of: this worker and its tasks.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=None, help="Default: table on a terminal, else jsonl."
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl: one JSON document per line.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many events.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when it is a terminal).")
def replay(
    aggregate: str | None,
    types: tuple[str, ...],
    correlation_id: str | None,
    since: datetime | None,
    until: datetime | None,
    as_of: datetime | None,
    statuses: tuple[str, ...],
    worker: str | None,
    fmt: str | None,
    as_json: bool,
    limit: int | None,
    progress: bool | None,
) -> None:
    """Replay the event history: the PostgreSQL archive and the live Redis tail as one
    ordered history, filtered. Times are when Redis appended each event.

    \b
    Examples:
      taskflow replay --aggregate 0b6f6c1e-...            one task's history, in order
      taskflow replay --type task.failed --since -2h --format csv > failures.csv
      taskflow replay --since 2026-12-06T10:00Z --until 2026-12-06T11:00Z --format jsonl
      taskflow replay --as-of 2026-12-06T10:03Z --status RUNNING    what was running at 10:03
      taskflow replay --as-of 2026-12-06T10:03Z --worker WORKER_ID  what a worker held then
    """
    from taskflow.replay import UnknownEventType, event_filter

    if as_json and fmt not in (None, "jsonl"):
        fail(f"--json and --format {fmt} disagree; give one")
    fmt = "jsonl" if as_json else fmt or ("table" if sys.stdout.isatty() else "jsonl")
    show_progress = sys.stderr.isatty() if progress is None else progress
    if as_of is not None and (types or correlation_id or since or until or limit):
        fail("--as-of folds every event up to that time: it takes only --aggregate, --status and --worker")
    if as_of is None and (statuses or worker):
        fail("--status and --worker go with --as-of")
    if since is not None and until is not None and until <= since:
        fail("--until must be later than --since")
    settings = settings_from_env()
    if as_of is not None:
        snapshot = run(_snapshot(settings, as_of, aggregate, frozenset(statuses), worker))
        _write_snapshot(snapshot, fmt)
        return
    try:
        selection = event_filter(
            aggregate=aggregate, types=types, correlation_id=correlation_id, since=since, until=until
        )
    except UnknownEventType as e:
        fail(str(e))
    run(_replay(settings, selection, fmt, limit, show_progress))


async def _replay(settings: Settings, selection: EventFilter, fmt: str, limit: int | None, show_progress: bool) -> None:
    from taskflow.errors import ConfigurationError
    from taskflow.replay import History

    try:
        async with History.open(settings) as history:
            await _write_events(history, selection, fmt, limit, show_progress)
    except ConfigurationError as e:
        fail(str(e))


async def _write_events(
    history: History, selection: EventFilter, fmt: str, limit: int | None, show_progress: bool
) -> None:
    from taskflow.replay.formats import EventWriter

    writer = EventWriter(fmt, sys.stdout.buffer)
    total = await history.estimate(selection) if show_progress else 0
    started = time.perf_counter()
    written = 0
    try:
        with progress_bar("replay", total, show_progress) as advance:
            async for _, event in history.positioned(selection):
                writer.write(event)
                written += 1
                if advance is not None and written % 1000 == 0:
                    advance(written)
                if written == limit:
                    break
        writer.detach()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        sys.stderr.close()
        return
    elapsed = time.perf_counter() - started
    skipped = f", {history.tally.undecodable:,} undecodable skipped" if history.tally.undecodable else ""
    rate = written / elapsed if elapsed > 0 else 0.0
    click.echo(f"replayed {written:,} events in {elapsed:.2f} s ({rate:,.0f} events/s){skipped}", err=True)


async def _snapshot(
    settings: Settings, as_of: datetime, aggregate: str | None, statuses: frozenset[str], worker: str | None
) -> Snapshot:
    from taskflow.errors import ConfigurationError
    from taskflow.replay import History
    from taskflow.replay.as_of import narrowed

    try:
        async with History.open(settings) as history:
            snapshot = await history.as_of(as_of, aggregate=aggregate)
    except ConfigurationError as e:
        fail(str(e))
    return narrowed(snapshot, statuses=statuses, worker=worker)


def _write_snapshot(snapshot: Snapshot, fmt: str) -> None:
    import msgspec

    from taskflow.replay import formats

    rows = list(formats.snapshot_rows(snapshot))
    if fmt == "jsonl":
        encoder = msgspec.json.Encoder()
        sys.stdout.buffer.write(b"".join(encoder.encode(row) + b"\n" for row in rows))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(formats.SNAPSHOT_COLUMNS)
        writer.writerows([safe_cell(str(row[c])) for c in formats.SNAPSHOT_COLUMNS] for row in rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=f"as of {snapshot.as_of.isoformat()}: {len(snapshot.tasks):,} tasks, "
            f"{len(snapshot.workers):,} workers ({snapshot.events:,} events folded)"
        )
        for column in formats.SNAPSHOT_COLUMNS:
            table.add_column(column, no_wrap=column != "holding")
        for row in rows:
            table.add_row(*(str(row[c]) for c in formats.SNAPSHOT_COLUMNS))
        console = Console() if sys.stdout.isatty() else Console(width=220, no_color=True)
        console.print(table)
    sys.stdout.flush()
