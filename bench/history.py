"""Issue 13 benchmark: the analysts' side, on an archive of 1,000,000 events.

- replay to JSON lines: ``taskflow.replay`` (typed events, written as JSONL to
  /dev/null), and the command as users run it (``taskflow replay --format jsonl``),
  against the ceiling of PostgreSQL itself streaming the same payloads (``COPY … TO``);
- rebuild of every projection from that archive into the shadow schema.

The archive is written directly (COPY), from events a real run would append: each task
is submitted, started, logs a line, reports progress and succeeds; one in ten fails for
good (no retries left: dead-lettered). Workers start and stop around them.

    python bench/history.py [--events 1000000] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis
from support.bench import with_database
from support.report import machine_info

from taskflow.archive import PROJECTION
from taskflow.events import (
    AnyEvent,
    TaskFailed,
    TaskLogged,
    TaskProgressed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    WorkerStarted,
    WorkerStopped,
    encode,
    tag_of,
)
from taskflow.projections.maintenance import rebuild_shadow
from taskflow.projections.store import ArchiveRecord
from taskflow.replay import EventFilter, History
from taskflow.replay.formats import EventWriter
from taskflow.schema import migrate
from taskflow.streams.keyspace import Keyspace

ROOT = Path(__file__).resolve().parent.parent
PER_TASK = 5  # events per task
WORKERS = 20


def synthetic_history(events: int) -> list[AnyEvent]:
    """About ``events`` events of tasks run by a few workers, in append order."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    out: list[AnyEvent] = []
    workers = [str(uuid.uuid4()) for _ in range(WORKERS)]
    clock = start

    def env(aggregate: str, correlation: str) -> dict[str, Any]:
        return {"aggregate_id": aggregate, "occurred_at": clock, "correlation_id": correlation, "actor": "bench"}

    for w in workers:
        out.append(WorkerStarted(**env(w, w), hostname="bench", pid=1, capacity=10, queues=("medium",), version="b"))
    tasks = max(1, (events - 2 * WORKERS) // PER_TASK)
    for i in range(tasks):
        clock = start + timedelta(milliseconds=i)
        task_id, correlation, worker = str(uuid.uuid4()), uuid.uuid4().hex, workers[i % WORKERS]
        e = env(task_id, correlation)
        args = msgspec.Raw(msgspec.json.encode({"to": f"user{i}@example.com", "n": i}))
        out.append(TaskSubmitted(**e, task_name="echo", kwargs=args))
        out.append(TaskStarted(**e, worker_id=worker, attempt=1, dispatch_id=f"{i}-0"))
        out.append(TaskLogged(**e, level="INFO", message=f"working on {i}", worker_id=worker))
        out.append(TaskProgressed(**e, percent=50.0, message="half", worker_id=worker))
        if i % 10:
            out.append(TaskSucceeded(**e, worker_id=worker, attempt=1, result=args, duration_ms=1.5))
        else:
            out.append(
                TaskFailed(
                    **e,
                    worker_id=worker,
                    attempt=1,
                    error_type="ValueError",
                    error="no",
                    traceback="tb",
                    duration_ms=2.0,
                )
            )
    for w in workers:
        out.append(WorkerStopped(**env(w, w), reason="shutdown", processed=tasks // WORKERS))
    return out


async def write_archive(conn: asyncpg.Connection, events: list[AnyEvent]) -> str:
    """The events as archived rows of partition 0 and the checkpoint after the last."""
    base_ms = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
    records = []
    for n, event in enumerate(events):
        ms, seq = base_ms + n // 10, n % 10
        event_id = f"{ms}-{seq}"
        records.append(
            tuple(
                msgspec.structs.astuple(
                    ArchiveRecord(
                        partition=0,
                        event_id=event_id,
                        id_ms=ms,
                        id_seq=seq,
                        event_type=tag_of(event),
                        schema_version=event.schema_version,
                        aggregate_id=event.aggregate_id,
                        occurred_at=event.occurred_at,
                        correlation_id=event.correlation_id,
                        causation_id=None,
                        traceparent=None,
                        actor=event.actor,
                        payload=encode(event).decode(),
                    )
                )
            )
        )
    for start in range(0, len(records), 100_000):
        await conn.copy_records_to_table(
            "event_archive", records=records[start : start + 100_000], columns=list(ArchiveRecord.__struct_fields__)
        )
    last_ms, last_seq = records[-1][2], records[-1][3]
    await conn.execute(
        "INSERT INTO projection_checkpoints (projection, partition, last_ms, last_seq) VALUES ($1, 0, $2, $3)",
        PROJECTION,
        last_ms,
        last_seq,
    )
    await conn.execute("ANALYZE event_archive")
    return f"{last_ms}-{last_seq}"


async def replay_in_process(redis: Redis, pool: asyncpg.Pool, namespace: str) -> tuple[int, float]:
    history = History(redis, pool, Keyspace(namespace, 1))
    with open(os.devnull, "wb") as sink:
        writer = EventWriter("jsonl", sink)
        started = time.perf_counter()
        n = 0
        async for _, event in history.positioned(EventFilter()):
            writer.write(event)
            n += 1
        writer.detach()
    return n, time.perf_counter() - started


def replay_command(env: dict[str, str]) -> tuple[int, float, str]:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "taskflow", "replay", "--format", "jsonl", "--no-progress"],
            env=env,
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
    elapsed = time.perf_counter() - started
    summary = done.stderr.strip().splitlines()[-1]
    return int(summary.split()[1].replace(",", "")), elapsed, summary


async def copy_ceiling(conn: asyncpg.Connection) -> tuple[int, float]:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        status = await conn.copy_from_query(
            "SELECT payload FROM event_archive WHERE partition = 0 ORDER BY id_ms, id_seq", output=sink
        )
    return int(status.split()[-1]), time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:10]
    database, namespace = f"bench_history_{run}", f"benchhistory{run}"
    admin = await asyncpg.connect(args.pg_admin_url)
    await admin.execute(f"CREATE DATABASE {database}")
    url = with_database(args.pg_admin_url, database)
    redis = Redis.from_url(args.redis_url, decode_responses=True)
    results: dict[str, Any] = {}
    try:
        await asyncio.to_thread(migrate, url)
        t = time.perf_counter()
        events = synthetic_history(args.events)
        conn = await asyncpg.connect(url)
        checkpoint = await write_archive(conn, events)
        print(f"archive: {len(events):,} events written in {time.perf_counter() - t:.1f} s (checkpoint {checkpoint})")
        del events
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)

        rows, seconds = await copy_ceiling(conn)
        results["copy_ceiling_rows_per_s"] = rows / seconds
        print(f"ceiling: PostgreSQL COPY of the payloads: {rows:,} in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")

        n, seconds = await replay_in_process(redis, pool, namespace)
        results["replay_api_events_per_s"] = n / seconds
        print(f"replay (taskflow.replay -> JSONL): {n:,} events in {seconds:.2f} s = {n / seconds:,.0f} events/s")

        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
        env.update(TASKFLOW_REDIS_URL=args.redis_url, TASKFLOW_DATABASE_URL=url, TASKFLOW_NAMESPACE=namespace)
        n, seconds, summary = await asyncio.to_thread(replay_command, env)
        results["replay_cli_events_per_s"] = n / seconds
        print(
            f"replay (taskflow replay --format jsonl, whole process): {n:,} events in {seconds:.2f} s = {n / seconds:,.0f} events/s [{summary}]"
        )

        started = time.perf_counter()
        report = await rebuild_shadow(pool, dead_letter_retention=timedelta(days=3650))
        seconds = time.perf_counter() - started
        results["rebuild_events"] = report.events
        results["rebuild_seconds"] = seconds
        results["rebuild_events_per_s"] = report.events / seconds
        results["rebuild_phases_s"] = report.phases
        print(
            f"rebuild: {report.events:,} events in {seconds:.2f} s = {report.events / seconds:,.0f} events/s; rows {report.rows}; phases { ({k: round(v, 2) for k, v in report.phases.items()}) }"
        )
        results["replay_vs_copy_ceiling"] = results["replay_api_events_per_s"] / results["copy_ceiling_rows_per_s"]
        print(
            f"targets: replay >= 100,000 events/s: {results['replay_api_events_per_s']:,.0f} "
            f"({results['replay_vs_copy_ceiling']:.2f}x the COPY ceiling); "
            f"rebuild >= 50,000 events/s: {results['rebuild_events_per_s']:,.0f}"
        )
        await pool.close()
        await conn.close()
        redis_version = str((await redis.info("server"))["redis_version"])
        pg_version = str(await admin.fetchval("SHOW server_version"))
        results["machine"] = machine_info(redis_version, pg_version)
        results["date"] = datetime.now(UTC).isoformat()
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        await redis.aclose()
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    # As the commands run: the collector tuned (tune_gc), uvloop.
    from taskflow.cli._runtime import event_loop_factory, tune_gc

    tune_gc()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())
