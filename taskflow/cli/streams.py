"""``taskflow streams``: the namespace's streams and consumer groups, and the entries
still pending, for people (tables) and scripts (``--json``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import click
import msgspec

from taskflow.cli._ops import age, console, run_once, size, with_redis
from taskflow.cli._runtime import fail, settings_from_env
from taskflow.cli.streams_actions import ack, claim, requeue
from taskflow.cli.streams_consumers import consumers
from taskflow.cli.streams_quarantine import quarantine
from taskflow.cli.streams_top import top

if TYPE_CHECKING:
    # The CLI imports what a command needs when it runs (ADR 0012): annotations only here.
    from redis.asyncio import Redis

    from taskflow.events import AnyEvent
    from taskflow.streams.keyspace import Keyspace


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
@click.pass_context
def streams(ctx: click.Context, as_json: bool) -> None:
    """Every stream of the namespace (length, first/last id, memory) and its consumer
    groups (consumers, pending, lag, last delivered id).

    \b
    Example:
      taskflow streams
      taskflow streams --json | jq '.[] | select(.length > 0)'
    """
    if ctx.invoked_subcommand is not None:
        return
    from taskflow.ops.streams import describe
    from taskflow.streams.keyspace import Keyspace

    settings = settings_from_env()
    found = run_once(with_redis(settings, lambda redis, ks: describe(redis, ks)))
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
        return
    from rich.table import Table

    table = Table(title=f"streams of namespace {Keyspace.of(settings).describe()!r}")
    for column in (
        "stream",
        "length",
        "first id",
        "last id",
        "memory",
        "group",
        "consumers",
        "pending",
        "lag",
        "last delivered",
    ):
        table.add_column(
            column, justify="right" if column in ("length", "memory", "consumers", "pending", "lag") else "left"
        )
    for stream in found:
        memory = "-" if stream.memory_bytes is None else size(stream.memory_bytes)
        head = [stream.name, f"{stream.length:,}", stream.first_id or "-", stream.last_id or "-", memory]
        if not stream.groups:
            table.add_row(*head, "-", "-", "-", "-", "-")
        for i, group in enumerate(stream.groups):
            cells = head if i == 0 else [""] * len(head)
            pending = f"[yellow]{group.pending:,}[/]" if group.pending else "0"
            lag = "?" if group.lag is None else f"{group.lag:,}"
            table.add_row(*cells, group.name, str(group.consumers), pending, lag, group.last_delivered_id)
    console().print(table)


@streams.command()
@click.option(
    "--stream", "stream_names", multiple=True, metavar="NAME", help="events:P or dispatch:P:PRIORITY (repeatable)."
)
@click.option("--consumer", default=None, help="Only entries held by this consumer (a worker id, projector-P).")
@click.option(
    "--min-idle",
    "min_idle_s",
    type=click.FloatRange(min=0),
    default=0,
    help="Only entries idle this many seconds or more.",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Entries per stream.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say which entries a reclaim would take over now (idle past the lease); change nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
def pending(
    stream_names: tuple[str, ...], consumer: str | None, min_idle_s: float, limit: int, dry_run: bool, as_json: bool
) -> None:
    """Pending entries by task id: owner, idle time, deliveries, runs begun; an age
    histogram; likely poison (one more run and it is dead-lettered) in red.

    \b
    Example:
      taskflow streams pending --stream dispatch:0:high --min-idle 30
      taskflow streams pending --dry-run --json
    """
    from taskflow.ops.pending import Limits, PendingEntry, age_histogram, pending_entries
    from taskflow.ops.streams import stream_names as all_names
    from taskflow.streams.keyspace import Keyspace

    settings = settings_from_env()
    known = all_names(Keyspace.of(settings))
    unknown = [name for name in stream_names if name not in known]
    if unknown:
        fail(f"unknown stream {unknown[0]!r}; streams are: {', '.join(known)}")
    limits = Limits(max_deliveries=settings.max_deliveries, lease_ms=settings.lease_ms)

    async def read(redis: Redis, ks: Keyspace) -> list[PendingEntry]:
        return await pending_entries(
            redis,
            ks,
            limits,
            streams=list(stream_names) or None,
            consumer=consumer,
            min_idle_ms=int(min_idle_s * 1000),
            count=limit,
        )

    entries = run_once(with_redis(settings, read))
    if dry_run:
        entries = [e for e in entries if e.reclaimable]
    if as_json:
        click.echo(msgspec.json.encode({"entries": entries, "age_histogram": dict(age_histogram(entries))}).decode())
        return
    from rich.table import Table

    title = "a reclaim would take over these now" if dry_run else "pending entries"
    table = Table(title=f"{title} ({len(entries):,})")
    for column in ("stream", "task id", "entry id", "owner", "idle", "deliveries", "runs begun", ""):
        table.add_column(column, no_wrap=True)
    for e in entries:
        style = "red" if e.likely_poison else None
        note = "likely poison" if e.likely_poison else ("reclaimable" if e.reclaimable else "")
        runs = "-" if e.runs_begun is None else str(e.runs_begun)
        table.add_row(
            e.stream,
            e.task_id or "?",
            e.entry_id,
            e.consumer,
            age(e.idle_ms),
            str(e.deliveries),
            runs,
            note,
            style=style,
        )
    out = console()
    out.print(table)
    histogram = Table(title="age of pending entries")
    histogram.add_column("idle")
    histogram.add_column("entries", justify="right")
    for label, n in age_histogram(entries):
        histogram.add_row(label, f"{n:,}")
    out.print(histogram)


@streams.command()
@click.option("--count", type=click.IntRange(1, 100_000), default=20, show_default=True, help="Events shown first.")
@click.option("--follow", "-f", is_flag=True, help="Go on printing events as they arrive (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line (JSONL) instead of text.")
def tail(count: int, follow: bool, as_json: bool) -> None:
    """The newest events of every partition, decoded, oldest first; with --follow, the
    ones appended after them too.

    \b
    Example:
      taskflow streams tail --count 50
      taskflow streams tail --follow --json | jq 'select(.type == "task.failed")'
    """
    from taskflow.events import tag_of
    from taskflow.ops.tail import follow_events, last_events

    settings = settings_from_env()

    def show(event: AnyEvent) -> None:
        if as_json:
            click.echo(msgspec.json.encode(event).decode())
        else:
            click.echo(f"{event.event_id}  {tag_of(event):<22} {event.aggregate_id}  actor={event.actor or '-'}")

    async def run(redis: Redis, ks: Keyspace) -> None:
        newest, read_up_to = await last_events(redis, ks, count)
        for event in newest:
            show(event)
        if follow:
            async for event in follow_events(redis, read_up_to):
                show(event)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a --follow
        run_once(with_redis(settings, run))


for _command in (top, consumers, quarantine, claim, ack, requeue):
    streams.add_command(_command)
