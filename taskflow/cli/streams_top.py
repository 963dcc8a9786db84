"""``taskflow streams top``: entries in and out per second, lag and its trend, the oldest
pending entry, and the workers' heartbeats, sampled every interval."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import click
import msgspec

from taskflow.cli._ops import age, console, run_once, with_redis
from taskflow.cli._runtime import settings_from_env

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from rich.console import Group

    from taskflow.ops.top import Sample, TopSnapshot
    from taskflow.streams.keyspace import Keyspace

_TRENDS = {"rising": "[red]rising[/]", "falling": "[green]falling[/]", "flat": "flat", None: "-"}


@click.command()
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between samples.",
)
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="Stop after this many snapshots.")
@click.option("--json", "as_json", is_flag=True, help="One JSON snapshot per line (JSONL) instead of tables.")
def top(interval_s: float, iterations: int | None, as_json: bool) -> None:
    """A live view of the streams, like top: per stream and group, entries in and out
    (acknowledged) per second, pending, lag and its trend, the oldest pending entry's
    age; and every registered worker's last heartbeat and load. Ctrl-C stops.

    \b
    Example:
      taskflow streams top
      taskflow streams top --interval 5 --iterations 12 --json > top.jsonl
    """
    from taskflow.ops.top import TREND_SAMPLES, snapshot, take_sample

    settings = settings_from_env()
    live = sys.stdout.isatty() and not as_json

    async def run(redis: Redis, ks: Keyspace) -> None:
        samples: deque[Sample] = deque([await take_sample(redis, ks)], maxlen=TREND_SAMPLES)
        with _display(live, as_json) as show:
            shown = 0
            while iterations is None or shown < iterations:
                await asyncio.sleep(interval_s)
                samples.append(await take_sample(redis, ks))
                show(snapshot(samples))
                shown += 1

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a live view ends: status 0
        run_once(with_redis(settings, run))


@contextlib.contextmanager
def _display(live: bool, as_json: bool) -> Iterator[Callable[[TopSnapshot], None]]:
    """How each snapshot is shown: redrawn in place on a terminal (rich Live), else one
    after the other (tables, or JSON lines for scripts)."""
    if as_json:
        yield lambda snap: click.echo(msgspec.json.encode(snap).decode())
    elif not live:
        out = console()
        yield lambda snap: out.print(_render(snap))
    else:
        from rich.live import Live

        with Live(console=console(), auto_refresh=False) as view:
            yield lambda snap: view.update(_render(snap), refresh=True)


def _render(snap: TopSnapshot) -> Group:
    from rich.console import Group
    from rich.table import Table

    streams = Table(title=f"streams (over the last {snap.interval_s:.1f} s)")
    for column in ("stream", "group", "in/s", "out/s", "pending", "lag", "trend", "oldest pending"):
        streams.add_column(column, justify="left" if column in ("stream", "group", "trend") else "right")
    for f in snap.streams:
        streams.add_row(
            f.stream,
            f.group or "-",
            _rate(f.in_per_s),
            _rate(f.out_per_s),
            f"[yellow]{f.pending:,}[/]" if f.pending else "0",
            "?" if f.lag is None else f"{f.lag:,}",
            _TRENDS[f.lag_trend],
            "-" if f.oldest_pending_age_ms is None else age(f.oldest_pending_age_ms),
        )
    workers = Table(title=f"workers ({len(snap.workers)})")
    for column in ("worker", "partition", "last heartbeat", "status", "load"):
        workers.add_column(column, justify="right" if column in ("partition", "last heartbeat", "load") else "left")
    for w in snap.workers:
        load = "-" if w.load is None else f"{w.load}/{w.capacity if w.capacity is not None else '?'}"
        workers.add_row(w.worker_id, str(w.partition), f"{age(w.heartbeat_age_ms)} ago", w.status or "gone?", load)
    return Group(streams, workers)


def _rate(per_s: float | None) -> str:
    return "?" if per_s is None else f"{per_s:,.1f}"
