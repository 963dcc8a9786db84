"""``taskflow streams quarantine``: the entries the projector could not project, and
their retry once a fix makes them events again (``taskflow.ops.quarantine``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
import msgspec

from taskflow.cli._ops import console, run_once, with_redis_and_postgres
from taskflow.cli._runtime import fail, settings_from_env

if TYPE_CHECKING:
    from taskflow.ops.quarantine import QuarantinedEntry, RetryOutcome
    from taskflow.settings import Settings


@click.command()
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Entries listed.")
@click.option("--retry", is_flag=True, help="Re-append entries that decode now, so the projector projects them.")
@click.option("--entry", "entries", multiple=True, metavar="STREAM:ID", help="With --retry: this entry (repeatable).")
@click.option("--all", "retry_all", is_flag=True, help="With --retry: every quarantined entry.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def quarantine(limit: int, retry: bool, entries: tuple[str, ...], retry_all: bool, as_json: bool) -> None:
    """Entries kept in the quarantine instead of being projected (stream, entry id,
    source, event type, aggregate, error, when), newest first. With --retry, entries
    that decode now are appended again as new events and leave the quarantine; the
    others stay, with their error. Dispatch entries (source worker) are not retried
    here: requeue their task from the dead-letter queue.

    \b
    Example:
      taskflow streams quarantine --limit 20
      taskflow streams quarantine --retry --entry events:0:1733400000000-0
      taskflow streams quarantine --retry --all --json
    """
    if (entries or retry_all) and not retry:
        fail("--entry and --all go with --retry")
    if retry and not (entries or retry_all):
        fail("--retry needs --entry STREAM:ID or --all")
    if entries and retry_all:
        fail("--entry and --all exclude each other")
    settings = settings_from_env()
    if retry:
        _retry(settings, None if retry_all else [_entry(settings, text) for text in entries], as_json)
        return
    from taskflow.ops.quarantine import quarantined_entries

    found = run_once(with_redis_and_postgres(settings, lambda _redis, pool, _ks: quarantined_entries(pool, limit)))
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
        return
    _print(found)


def _entry(settings: Settings, text: str) -> tuple[str, str]:
    """``events:0:1733400000000-0`` (or the stream's key instead of its name) as (stream
    key, entry id)."""
    from taskflow.ops.streams import stream_names
    from taskflow.streams.keyspace import Keyspace

    stream, _, entry_id = text.rpartition(":")
    ms, dash, seq = entry_id.partition("-")
    if not stream or not ms.isdigit() or (dash and not seq.isdigit()):
        fail(f"--entry {text!r}: expected STREAM:ID, e.g. events:0:1733400000000-0")
    return stream_names(Keyspace.of(settings)).get(stream, stream), entry_id if dash else f"{entry_id}-0"


def _retry(settings: Settings, chosen: list[tuple[str, str]] | None, as_json: bool) -> None:
    from taskflow.ops.quarantine import retry

    outcomes = run_once(with_redis_and_postgres(settings, lambda redis, pool, ks: retry(redis, pool, ks, chosen)))
    missing = sorted({f"{s}:{i}" for s, i in chosen or []} - {f"{o.stream}:{o.entry_id}" for o in outcomes})
    if as_json:
        click.echo(msgspec.json.encode({"outcomes": outcomes, "not_found": missing}).decode())
    else:
        _print_outcomes(outcomes)
    if missing:
        fail(f"not in the quarantine: {', '.join(missing)}")


def _print(found: list[QuarantinedEntry]) -> None:
    from rich.table import Table

    table = Table(title=f"quarantined entries ({len(found):,}, newest first)")
    for column in ("stream", "entry id", "source", "event type", "aggregate", "error", "when"):
        table.add_column(column, no_wrap=column != "error", overflow="fold")
    for e in found:
        table.add_row(
            e.stream,
            e.entry_id,
            e.source,
            e.event_type or "-",
            e.aggregate_id or "-",
            e.error,
            e.quarantined_at.isoformat(timespec="seconds"),
        )
    console().print(table)


def _print_outcomes(outcomes: list[RetryOutcome]) -> None:
    from rich.table import Table

    table = Table(title=f"retried ({len(outcomes):,})")
    for column in ("stream", "entry id", "outcome", "new entry id / error"):
        table.add_column(column, no_wrap=column != "new entry id / error", overflow="fold")
    styles = {"reappended": "green", "still_failing": "red", "not_retryable": "yellow"}
    for o in outcomes:
        table.add_row(o.stream, o.entry_id, o.outcome, o.new_entry_id or o.error or "", style=styles[o.outcome])
    console().print(table)
