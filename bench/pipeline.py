#!/usr/bin/env python3
"""Issue 3 benchmark: TaskFlow's core pipeline against taskiq + taskiq-redis, same Redis.

    .venv/bin/python bench/pipeline.py [--tasks 20000] [--runs 3] [--concurrency 100]

Each run measures, with a fresh namespace (Redis key prefix / stream name) and, for
TaskFlow, a fresh PostgreSQL database cloned from a template migrated by `taskflow migrate`:

* ``tf-echo``   TaskFlow, async ``echo`` (no kwargs): N tasks pre-submitted, then ONE
                ``taskflow worker --concurrency C`` and ONE ``taskflow projector`` are
                started; timed until every dispatch entry is acknowledged AND every event
                (3 per task + WorkerStarted) is projected into PostgreSQL and acked by
                the projector. Verified afterwards in PostgreSQL (tasks COMPLETED = N,
                event_archive = 3N + 1, checkpoint = last stream id).
* ``tf-noop``   the same with the sync ``noop`` task (however the worker runs sync tasks:
                a thread in early trees, a child process since the ChildPool landed).
* ``tq-async``  taskiq RedisStreamBroker, async no-op task: N tasks pre-enqueued (kiq),
                then ONE ``taskiq worker --workers 1 --max-async-tasks C``; timed until
                every stream entry is delivered and acknowledged (taskiq's default ack
                type is ``when_saved``: after the task ran and its result was "saved").
* ``tq-sync``   the same with a sync no-op task (taskiq runs it in its thread pool).
* ``tf-split``  TaskFlow ``echo`` with the worker ALONE (no projector): worker-only
                jobs/s; the worker is then stopped and the projector started ALONE on the
                full event log (3N + 2 events): projector events/s.

Pre-submission is the same for both systems and not timed into the drain: N calls of
the public submit API (TaskFlow: ``Submitter.submit``, the atomic Lua script the gateway
uses; taskiq: ``task.kiq()``), 1,000 in flight at a time over a 50-connection pool.

Times are taken from the moment the worker (and projector) processes are spawned, so
they include process start-up; the "warm" figures start when the first dispatch entry
is read (observed by polling XINFO GROUPS every 5 ms) and exclude start-up.

The phases of a run alternate between the systems. Other people share this machine, so
before each phase the script waits (up to --quiet-wait s) for an idle second, measures
the CPU everything else used during the timed window ("other"), and repeats a phase whose
window saw more than --max-other-load cores of it (up to --noisy-retries times).

The package is copied aside at start (with its migrations) and every subprocess imports
that snapshot through PYTHONPATH and runs with the snapshot as its working directory (the
worker's sync-task children, started with ``python -m``, put the working directory first
on sys.path), so all phases run the same code while the tree keeps changing; its sha256 is
printed. The completion checks rely on the ``workers`` and
``projector`` consumer groups (acknowledged = done) and on Submitter.submit.

After the runs, the REST gateway alone (no worker, no projector) serves sequential
POST /api/v1/tasks and GET /api/v1/tasks/{id} (read-your-writes: the projection has not
seen the task, so the GET answers from the TaskSubmitted event in Redis).

Clean-up: every database created is dropped, every key of every namespace is removed with
SCAN + UNLINK (never FLUSHALL: the Redis is shared), every subprocess is stopped.

The snapshot, the processes, the stack and the report's machine details are helpers shared
with ``bench/lifecycle.py``, in ``bench/support/``; the phases and the report are here.
``bench/sync_tasks.py`` reuses the phases (``taskflow_end_to_end``, ``taskiq_run``,
``time_worker``), ``run_phase``, the shared options (``add_*_arguments``, ``config_from``)
and ``run_script``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from support.bench import Bench, Config, unlink_matching
from support.cpu import ServerCpu, other_load, wait_until_quiet
from support.errors import PhaseError
from support.processes import Proc, exe
from support.report import fmt_runs, machine_info, med, percentile, server_versions
from support.snapshot import BENCH_DIR, SNAPSHOT
from support.stack import SUBMIT_IN_FLIGHT, TaskFlowStack
from support.waiting import (
    DONE_POLL_S,
    FIRST_READ_POLL_S,
    all_done,
    any_started,
    group_done,
    group_info,
    group_started,
    wait_for,
)
from taskiq_app import NOOP_ASYNC, NOOP_SYNC, make_broker

from taskflow.dev.ports import free_port
from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP

# --------------------------------------------------------------------------- the phases


def _phase_timeout(cfg: Config) -> float:
    return cfg.phase_timeout


async def taskflow_end_to_end(bench: Bench, task_name: str) -> dict[str, Any]:
    """Pre-submit N, then worker + projector together; until all completed AND projected."""
    cfg = bench.cfg
    n = cfg.tasks
    async with TaskFlowStack(bench, f"tf-{task_name}") as st:
        submit_s = await st.submit(n, task_name)
        cpu0 = await ServerCpu.sample(st.redis)
        started = time.perf_counter()
        worker = st.worker()
        projector = st.spawn("projector")
        deadline = started + _phase_timeout(cfg)
        procs = [worker, projector]
        first = await wait_for(
            lambda: any_started(st.redis, st.dispatch_streams, WORKERS_GROUP),
            what="the worker's first read",
            interval=FIRST_READ_POLL_S,
            deadline=deadline,
            procs=procs,
        )
        executed = await wait_for(
            lambda: all_done(st.redis, st.dispatch_streams, WORKERS_GROUP),
            what="every dispatch entry acknowledged",
            interval=DONE_POLL_S,
            deadline=deadline,
            procs=procs,
        )
        ended = await wait_for(
            lambda: all_done(st.redis, st.events_streams, PROJECTOR_GROUP),
            what="every event projected",
            interval=DONE_POLL_S,
            deadline=deadline,
            procs=procs,
        )
        cpu1 = await ServerCpu.sample(st.redis)
        cpu = cpu0.until(cpu1, {"worker": worker.cpu_seconds(), "projector": projector.cpu_seconds()})
        rows = await st.verify(n, 3 * n + 1)
        return {
            "submit_s": submit_s,
            "startup_s": first - started,
            "executed_s": executed - started,
            "drain_s": ended - started,
            "warm_s": ended - first,
            "jobs_per_s": n / (ended - started),
            "warm_jobs_per_s": n / (ended - first),
            "cpu_s": cpu,
            "rows": rows,
        }


async def taskflow_split(bench: Bench) -> dict[str, Any]:
    """Worker alone (no projection), then the projector alone on the whole event log."""
    cfg = bench.cfg
    n = cfg.tasks
    async with TaskFlowStack(bench, "tf-split") as st:
        submit_s = await st.submit(n, "echo")
        w_cpu0 = await ServerCpu.sample(st.redis)
        started = time.perf_counter()
        worker = st.worker()
        deadline = started + _phase_timeout(cfg)
        first = await wait_for(
            lambda: any_started(st.redis, st.dispatch_streams, WORKERS_GROUP),
            what="the worker's first read",
            interval=FIRST_READ_POLL_S,
            deadline=deadline,
            procs=[worker],
        )
        executed = await wait_for(
            lambda: all_done(st.redis, st.dispatch_streams, WORKERS_GROUP),
            what="every dispatch entry acknowledged",
            interval=DONE_POLL_S,
            deadline=deadline,
            procs=[worker],
        )
        worker_cpu = w_cpu0.until(await ServerCpu.sample(st.redis), {"worker": worker.cpu_seconds()})
        if worker.stop() != 0:  # SIGTERM: the worker appends WorkerStopped and exits 0
            raise PhaseError(f"the worker did not stop cleanly:\n{worker.log_tail()}")
        events = sum([int(await st.redis.xlen(stream)) for stream in st.events_streams])
        if events != 3 * n + 2:
            raise PhaseError(f"the event log holds {events} events, expected {3 * n + 2}")
        if await any_started(st.redis, st.events_streams, PROJECTOR_GROUP):
            raise PhaseError("something projected before the projector was started")

        cpu0 = await ServerCpu.sample(st.redis)
        p_started = time.perf_counter()
        projector = st.spawn("projector")
        deadline = p_started + _phase_timeout(cfg)
        p_first = await wait_for(
            lambda: any_started(st.redis, st.events_streams, PROJECTOR_GROUP),
            what="the projector's first read",
            interval=FIRST_READ_POLL_S,
            deadline=deadline,
            procs=[projector],
        )
        p_ended = await wait_for(
            lambda: all_done(st.redis, st.events_streams, PROJECTOR_GROUP),
            what="every event projected",
            interval=DONE_POLL_S,
            deadline=deadline,
            procs=[projector],
        )
        cpu1 = await ServerCpu.sample(st.redis)
        projector_cpu = projector.cpu_seconds()
        rows = await st.verify(n, events)
        return {
            "submit_s": submit_s,
            "worker_startup_s": first - started,
            "worker_s": executed - started,
            "worker_jobs_per_s": n / (executed - started),
            "worker_warm_jobs_per_s": n / (executed - first),
            "worker_cpu_s": worker_cpu,
            "events": events,
            "projector_startup_s": p_first - p_started,
            "projector_s": p_ended - p_started,
            "events_per_s": events / (p_ended - p_started),
            "warm_events_per_s": events / (p_ended - p_first),
            "projector_cpu_s": cpu0.until(cpu1, {"projector": projector_cpu}),
            "rows": rows,
        }


async def time_worker(
    bench: Bench,
    label: str,
    argv: list[str],
    env: dict[str, str],
    *,
    started: Callable[[], Awaitable[bool]],
    done: Callable[[], Awaitable[bool]],
) -> dict[str, Any]:
    """Spawn ONE worker process (a peer's: its queue is already filled) and time it from
    the spawn to its first read (``started``) and to the end (``done``); it is stopped on
    the way out. Returns the times, N / those times, and the CPU used in the window."""
    cfg = bench.cfg
    n = cfg.tasks
    assert bench.redis is not None
    worker: Proc | None = None
    profiler: Proc | None = None
    try:
        cpu0 = await ServerCpu.sample(bench.redis)
        spawned = time.perf_counter()
        worker = Proc(label, argv, env, cfg.logdir)
        profiler = bench.profile(worker)
        deadline = spawned + _phase_timeout(cfg)
        first = await wait_for(
            started,
            what=f"the {label} worker's first read",
            interval=FIRST_READ_POLL_S,
            deadline=deadline,
            procs=[worker],
        )
        ended = await wait_for(
            done, what=f"every {label} entry acknowledged", interval=DONE_POLL_S, deadline=deadline, procs=[worker]
        )
        cpu1 = await ServerCpu.sample(bench.redis)
        return {
            "startup_s": first - spawned,
            "drain_s": ended - spawned,
            "warm_s": ended - first,
            "jobs_per_s": n / (ended - spawned),
            "warm_jobs_per_s": n / (ended - first),
            "cpu_s": cpu0.until(cpu1, {"worker": worker.cpu_seconds()}),
        }
    finally:
        if worker is not None:
            worker.stop()
            if profiler is not None:
                profiler.stop()


async def taskiq_run(bench: Bench, task_name: str) -> dict[str, Any]:
    """Pre-enqueue N (kiq), then ONE taskiq worker process; until every entry is acked."""
    cfg = bench.cfg
    n = cfg.tasks
    assert bench.redis is not None
    redis = bench.redis
    queue = bench.new_name("tq")
    group = f"{queue}-workers"
    label = "tq-async" if task_name == NOOP_ASYNC else "tq-sync"
    try:
        broker = make_broker(cfg.redis_url, queue, max_connections=cfg.submit_connections)
        await broker.startup()  # creates the consumer group (at "0") before the first entry
        try:
            task = broker.find_task(task_name)
            assert task is not None
            submit_started = time.perf_counter()
            for done in range(0, n, SUBMIT_IN_FLIGHT):
                await asyncio.gather(*(task.kiq() for _ in range(min(SUBMIT_IN_FLIGHT, n - done))))
            submit_s = time.perf_counter() - submit_started
        finally:
            await broker.shutdown()
        if int(await redis.xlen(queue)) != n:
            raise PhaseError(f"{label}: the stream holds {await redis.xlen(queue)} entries, expected {n}")

        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
        env.update(BENCH_TASKIQ_QUEUE=queue, BENCH_REDIS_URL=cfg.redis_url)
        argv = [
            exe("taskiq"),
            "worker",
            "taskiq_app:broker",
            "--app-dir",
            str(BENCH_DIR),
            "--workers",
            "1",
            "--max-async-tasks",
            str(cfg.concurrency),
            "--log-level",
            "WARNING",
        ]
        timed = await time_worker(
            bench,
            label,
            argv,
            env,
            started=lambda: group_started(redis, queue, group),
            done=lambda: group_done(redis, queue, group),
        )
        info = await group_info(redis, queue, group)
        entries_read = info.get("entries-read")
        if entries_read is not None and int(entries_read) != n:
            raise PhaseError(f"{label}: the group read {entries_read} entries, expected {n}")
        return {"submit_s": submit_s, **timed}
    finally:
        with contextlib.suppress(Exception):
            await unlink_matching(redis, queue)


def _rest_loop(base_url: str, token: str, n: int, warmup: int) -> tuple[list[float], list[float]]:
    post_ms: list[float] = []
    get_ms: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    body = {"task_name": "echo"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            posted = client.post("/api/v1/tasks", json=body)
            t1 = time.perf_counter()
            if posted.status_code != 201:
                raise PhaseError(f"POST answered {posted.status_code}: {posted.text[:300]}")
            task_id = posted.json()["task_id"]
            t2 = time.perf_counter()
            read = client.get(f"/api/v1/tasks/{task_id}")
            t3 = time.perf_counter()
            if read.status_code != 200 or read.json()["task_id"] != task_id:
                raise PhaseError(f"GET right after POST answered {read.status_code}: {read.text[:300]}")
            if i >= warmup:
                post_ms.append((t1 - t0) * 1000)
                get_ms.append((t3 - t2) * 1000)
    return post_ms, get_ms


async def rest_latency(bench: Bench) -> dict[str, Any]:
    cfg = bench.cfg
    async with TaskFlowStack(bench, "rest") as st:
        port = free_port()
        gateway = st.spawn("gateway", "--port", str(port))
        issued = await asyncio.to_thread(
            subprocess.run,
            [exe("taskflow"), "token", "--sub", "bench"],
            env=st.env,
            cwd=SNAPSHOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        token = issued.stdout.strip()
        base_url = f"http://127.0.0.1:{port}"

        async def healthy() -> bool:
            try:
                async with httpx.AsyncClient(timeout=1) as client:
                    return (await client.get(f"{base_url}/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(
            healthy, what="the gateway's /health", interval=0.1, deadline=time.perf_counter() + 60, procs=[gateway]
        )
        post_ms, get_ms = await asyncio.wait_for(
            asyncio.to_thread(_rest_loop, base_url, token, cfg.rest_requests, cfg.rest_warmup), cfg.phase_timeout
        )

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "mean": statistics.fmean(values),
            "max": max(values),
        }

    return {"requests": len(post_ms), "post_ms": summary(post_ms), "get_ms": summary(get_ms)}


# --------------------------------------------------------------------------- reporting


def print_header(title: str, command: str, machine: dict[str, str]) -> None:
    """A report's head: the title with the date, the command, the machine."""
    print()
    print("=" * 100)
    print(f"{title}   ({datetime.now(UTC):%Y-%m-%d %H:%M UTC})")
    print(f"command: {command}")
    print("-" * 100)
    for k, v in machine.items():
        print(f"{k:>11}: {v}")
    print("-" * 100)


def print_report(
    cfg: Config,
    machine: dict[str, str],
    results: dict[str, list[dict[str, Any]]],
    rest: dict[str, Any] | None,
    command: str,
) -> dict[str, Any]:
    n, c = cfg.tasks, cfg.concurrency
    print_header("Issue 3 - core pipeline benchmark", command, machine)
    print(
        f"N = {n:,} tasks per run, {cfg.runs} run(s), medians shown; worker concurrency = {c} for both "
        f"(TaskFlow --concurrency {c}, taskiq --max-async-tasks {c} --workers 1); "
        f"TASKFLOW_PARTITIONS={cfg.partitions}"
    )
    print()

    tf_e, tf_n, tq_a, tq_s, split = (results[k] for k in ("tf-echo", "tf-noop", "tq-async", "tq-sync", "tf-split"))
    rows = [
        (
            "TaskFlow echo (async): worker+projector, all projected",
            [r["jobs_per_s"] for r in tf_e],
            [r["warm_jobs_per_s"] for r in tf_e],
            [r["startup_s"] for r in tf_e],
        ),
        (
            "TaskFlow noop (sync):  worker+projector, all projected",
            [r["jobs_per_s"] for r in tf_n],
            [r["warm_jobs_per_s"] for r in tf_n],
            [r["startup_s"] for r in tf_n],
        ),
        (
            "TaskFlow echo (async): worker only, no projector",
            [r["worker_jobs_per_s"] for r in split],
            [r["worker_warm_jobs_per_s"] for r in split],
            [r["worker_startup_s"] for r in split],
        ),
        (
            "taskiq no-op (async)",
            [r["jobs_per_s"] for r in tq_a],
            [r["warm_jobs_per_s"] for r in tq_a],
            [r["startup_s"] for r in tq_a],
        ),
        (
            "taskiq no-op (sync, thread pool)",
            [r["jobs_per_s"] for r in tq_s],
            [r["warm_jobs_per_s"] for r in tq_s],
            [r["startup_s"] for r in tq_s],
        ),
    ]
    print(f"{'throughput (jobs/s)':<56} {'median':>9} {'warm med':>9} {'start-up':>9}   per run")
    for label, cold, warm, startup in rows:
        print(f"{label:<56} {med(cold):>9,.0f} {med(warm):>9,.0f} {med(startup):>8.2f}s   {fmt_runs(cold)}")
    print("  median: N / (spawn -> done), incl. process start-up; warm: N / (first dispatch read -> done)")
    print()

    def ratio(a: list[float], b: list[float]) -> float:
        return med(a) / med(b)

    ratios = {
        "tf_echo_e2e/tq_async": ratio(rows[0][1], rows[3][1]),
        "tf_echo_e2e/tq_async (warm)": ratio(rows[0][2], rows[3][2]),
        "tf_noop_e2e/tq_sync": ratio(rows[1][1], rows[4][1]),
        "tf_noop_e2e/tq_sync (warm)": ratio(rows[1][2], rows[4][2]),
        "tf_echo_worker_only/tq_async": ratio(rows[2][1], rows[3][1]),
        "tf_echo_worker_only/tq_async (warm)": ratio(rows[2][2], rows[3][2]),
    }
    print("ratio TaskFlow / taskiq   (target >= 1.5)")
    print(
        f"  HEADLINE  echo e2e (incl. projection) / taskiq async : {ratios['tf_echo_e2e/tq_async']:.2f}"
        f"   (warm {ratios['tf_echo_e2e/tq_async (warm)']:.2f})"
    )
    print(
        f"            noop e2e (incl. projection) / taskiq sync  : {ratios['tf_noop_e2e/tq_sync']:.2f}"
        f"   (warm {ratios['tf_noop_e2e/tq_sync (warm)']:.2f})"
    )
    print(
        f"            echo worker only (no projection) / taskiq  : {ratios['tf_echo_worker_only/tq_async']:.2f}"
        f"   (warm {ratios['tf_echo_worker_only/tq_async (warm)']:.2f})"
    )
    print()

    eps = [r["events_per_s"] for r in split]
    warm_eps = [r["warm_events_per_s"] for r in split]
    print(f"projector alone, {split[0]['events']:,} events (3N+2), worker already finished:")
    print(f"  events/s median {med(eps):,.0f}  (warm {med(warm_eps):,.0f})   per run {fmt_runs(eps)}")
    print()

    def cpu_line(label: str, wall: list[float], cpu: list[dict[str, float]]) -> None:
        i = wall.index(med(wall)) if med(wall) in wall else 0
        parts = ", ".join(f"{k} {v / wall[i] * 100:.0f}%" for k, v in cpu[i].items())
        print(f"  {label:<34} wall {wall[i]:6.2f}s  {parts}")

    print(f"CPU use during the timed window (median run; % of one core; the machine has {machine['nproc']} cores):")
    cpu_line("TaskFlow echo e2e", [r["drain_s"] for r in tf_e], [r["cpu_s"] for r in tf_e])
    cpu_line("TaskFlow noop e2e", [r["drain_s"] for r in tf_n], [r["cpu_s"] for r in tf_n])
    cpu_line("TaskFlow worker only", [r["worker_s"] for r in split], [r["worker_cpu_s"] for r in split])
    cpu_line("TaskFlow projector alone", [r["projector_s"] for r in split], [r["projector_cpu_s"] for r in split])
    cpu_line("taskiq async", [r["drain_s"] for r in tq_a], [r["cpu_s"] for r in tq_a])
    cpu_line("taskiq sync", [r["drain_s"] for r in tq_s], [r["cpu_s"] for r in tq_s])
    print()
    print(
        "pre-submission (not timed into the drain), submits/s median: "
        f"TaskFlow {med([n / r['submit_s'] for r in tf_e]):,.0f}, "
        f"taskiq {med([n / r['submit_s'] for r in tq_a]):,.0f}"
    )
    if rest is not None:
        print()
        p, g = rest["post_ms"], rest["get_ms"]
        print(f"REST gateway alone, {rest['requests']:,} sequential requests each (after {cfg.rest_warmup} warm-up):")
        print(
            f"  POST /api/v1/tasks        p50 {p['p50']:6.2f} ms   p99 {p['p99']:6.2f} ms   "
            f"mean {p['mean']:6.2f} ms   max {p['max']:6.2f} ms"
        )
        print(
            f"  GET  /api/v1/tasks/{{id}}   p50 {g['p50']:6.2f} ms   p99 {g['p99']:6.2f} ms   "
            f"mean {g['mean']:6.2f} ms   max {g['max']:6.2f} ms   (right after the POST)"
        )
    print("=" * 100)
    return {"ratios": ratios}


# --------------------------------------------------------------------------- main


PHASES: list[tuple[str, Callable[[Bench], Awaitable[dict[str, Any]]]]] = [
    ("tf-echo", lambda b: taskflow_end_to_end(b, "echo")),
    ("tq-async", lambda b: taskiq_run(b, NOOP_ASYNC)),
    ("tf-noop", lambda b: taskflow_end_to_end(b, "noop")),
    ("tq-sync", lambda b: taskiq_run(b, NOOP_SYNC)),
    ("tf-split", taskflow_split),
]


def _describe(name: str, r: dict[str, Any]) -> str:
    if name == "tf-split":
        return (
            f"worker-only {r['worker_jobs_per_s']:,.0f} jobs/s ({r['worker_s']:.2f}s), "
            f"projector alone {r['events_per_s']:,.0f} events/s ({r['projector_s']:.2f}s)"
        )
    extra = f", executed at {r['executed_s']:.2f}s" if "executed_s" in r else ""
    return (
        f"{r['jobs_per_s']:,.0f} jobs/s ({r['drain_s']:.2f}s incl. {r['startup_s']:.2f}s start-up{extra}); "
        f"warm {r['warm_jobs_per_s']:,.0f} jobs/s"
    )


async def run_phase(
    bench: Bench,
    run: int,
    name: str,
    phase: Callable[[Bench], Awaitable[dict[str, Any]]],
    describe: Callable[[str, dict[str, Any]], str] = _describe,
) -> tuple[dict[str, Any], bool]:
    """Run one phase after the machine went quiet; repeat it while other people's processes
    used more than --max-other-load cores during its window. Returns (result, still noisy).
    ``describe`` turns a result into its progress line."""
    cfg = bench.cfg
    attempt = 0
    while True:
        attempt += 1
        load = await wait_until_quiet(cfg.quiet_wait)
        t0 = time.perf_counter()
        result = await phase(bench)
        result["load_before"] = load
        result["attempt"] = attempt
        other = other_load(result)
        noisy = other > cfg.max_other_load
        print(
            f"run {run}/{cfg.runs} {name:<9} {describe(name, result)}   "
            f"[phase {time.perf_counter() - t0:.1f}s; load before {load:.2f} cores; other load in window {other:.2f} "
            f"cores{f'; NOISY, attempt {attempt}' if noisy else ''}]",
            flush=True,
        )
        if not noisy or attempt > cfg.noisy_retries:
            return result, noisy


def finish(cfg: Config, command: str, machine: dict[str, str], noisy_kept: int, body: dict[str, Any]) -> None:
    """After the report: say how many noisy phases were kept; with --json, write the raw
    results there (the command, the date, the machine, then ``body``)."""
    if noisy_kept:
        print(f"NOTE: {noisy_kept} phase(s) kept despite > {cfg.max_other_load} cores of other load (see above)")
    if cfg.json_out is None:
        return
    cfg.json_out.parent.mkdir(parents=True, exist_ok=True)
    cfg.json_out.write_text(
        json.dumps(
            {"command": command, "date": datetime.now(UTC).isoformat(), "machine": machine, **body},
            indent=2,
            default=str,
        )
    )
    print(f"json: {cfg.json_out}")


async def with_bench(cfg: Config, body: Callable[[Bench], Awaitable[None]]) -> int:
    """Set up a Bench (servers, template database), run ``body`` with it and clean up all it
    created; 0, or 1 with the reason on stderr when a phase failed."""
    bench = Bench(cfg)
    try:
        await bench.setup()
        await body(bench)
        return 0
    except PhaseError as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        return 1
    finally:
        await bench.cleanup()


async def amain(cfg: Config, command: str) -> int:
    return await with_bench(cfg, lambda bench: measure(bench, command))


async def measure(bench: Bench, command: str) -> None:
    """All the phases, the REST latency, the report and the JSON file."""
    cfg = bench.cfg
    assert bench.redis is not None
    machine = machine_info(*await server_versions(cfg, bench.redis))
    print(f"logs: {cfg.logdir}", flush=True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in PHASES}
    noisy_kept = 0
    for run in range(1, cfg.runs + 1):
        for name, phase in PHASES:
            if name not in cfg.phases:
                continue
            result, noisy = await run_phase(bench, run, name, phase)
            results[name].append(result)
            noisy_kept += noisy
    rest = None
    if not cfg.skip_rest:
        rest = await rest_latency(bench)
        p, g = rest["post_ms"], rest["get_ms"]
        print(
            f"rest      POST p50 {p['p50']:.2f} ms p99 {p['p99']:.2f} ms; "
            f"GET p50 {g['p50']:.2f} ms p99 {g['p99']:.2f} ms",
            flush=True,
        )
    summary: dict[str, Any] = {}
    if len(cfg.phases) < len(PHASES):
        print("(a subset of the phases ran: no summary table)")
    else:
        summary = print_report(cfg, machine, results, rest, command)
    finish(
        cfg,
        command,
        machine,
        noisy_kept,
        {
            "config": {"tasks": cfg.tasks, "runs": cfg.runs, "concurrency": cfg.concurrency},
            "results": results,
            "rest": rest,
            **summary,
        },
    )


def parse_args(argv: list[str] | None = None) -> Config:
    parser = new_parser(__doc__, "tasks per run (default 20000)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=100,
        help="TaskFlow --concurrency and taskiq --max-async-tasks (default 100, taskiq's default)",
    )
    add_server_arguments(parser)
    parser.add_argument("--rest-requests", type=int, default=2000)
    parser.add_argument("--rest-warmup", type=int, default=100)
    parser.add_argument("--skip-rest", action="store_true")
    add_phase_arguments(parser)
    parser.add_argument(
        "--phases",
        default=",".join(name for name, _ in PHASES),
        help="comma list of phases to run (default: all; a subset prints no summary)",
    )
    add_output_arguments(parser)
    a = parser.parse_args(argv)
    if a.tasks < 1 or a.runs < 1 or a.concurrency < 1:
        parser.error("--tasks, --runs and --concurrency must be positive")
    return config_from(
        a,
        concurrency=a.concurrency,
        phases=parse_phases(parser, a.phases, [name for name, _ in PHASES]),
        rest_requests=a.rest_requests,
        rest_warmup=a.rest_warmup,
        skip_rest=a.skip_rest,
    )


# The options the benchmark scripts that share this module's phases share, in the order
# pipeline.py's --help lists them.


def new_parser(doc: str, tasks_help: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with --tasks and --runs."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20_000, help=tasks_help)
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported (default 3)")
    return parser


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--redis-url, --pg-admin-url."""
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a database on a server where databases may be created and dropped",
    )


def add_phase_arguments(parser: argparse.ArgumentParser) -> None:
    """How a phase runs: its timeout, submission, logs, partitions, and the quiet-machine /
    noisy-retry settings."""
    parser.add_argument("--phase-timeout", type=float, default=None, help="seconds per phase (default: 120 + N/100)")
    parser.add_argument("--submit-connections", type=int, default=50)
    parser.add_argument("--logdir", type=Path, default=None, help="subprocess logs (default: a temp dir)")
    parser.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="TASKFLOW_PARTITIONS for the TaskFlow phases (default 1, TaskFlow's default)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each phase wait up to this many seconds for the machine to be idle (default 60)",
    )
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=0.3,
        help="a phase during which other processes used more cores than this is repeated (default 0.3)",
    )
    parser.add_argument("--noisy-retries", type=int, default=3, help="repeats of a noisy phase (default 3)")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--profile, --json."""
    parser.add_argument(
        "--profile",
        dest="profile_dir",
        type=Path,
        default=None,
        help="attach `py-spy record` (raw format) to every worker/projector, profiles in this dir",
    )
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="also write the raw results here")


def parse_phases(parser: argparse.ArgumentParser, value: str, known: list[str]) -> list[str]:
    """A --phases comma list, checked against the known phase names."""
    phases = [p.strip() for p in value.split(",") if p.strip()]
    unknown = set(phases) - set(known)
    if unknown or not phases:
        parser.error(f"unknown phase(s) {sorted(unknown)}; known: {', '.join(known)}")
    return phases


def config_from(
    a: argparse.Namespace,
    *,
    concurrency: int,
    phases: list[str],
    rest_requests: int = 0,
    rest_warmup: int = 0,
    skip_rest: bool = True,
) -> Config:
    """The Config of parsed options added by the add_*_arguments functions (plus --tasks
    and --runs); the log directory is created."""
    logdir = a.logdir or Path(tempfile.mkdtemp(prefix="taskflow-bench-"))
    logdir.mkdir(parents=True, exist_ok=True)
    return Config(
        tasks=a.tasks,
        runs=a.runs,
        concurrency=concurrency,
        redis_url=a.redis_url,
        pg_admin_url=a.pg_admin_url,
        rest_requests=rest_requests,
        rest_warmup=rest_warmup,
        phase_timeout=a.phase_timeout if a.phase_timeout is not None else 120 + a.tasks / 100,
        submit_connections=a.submit_connections,
        logdir=logdir,
        skip_rest=skip_rest,
        json_out=a.json_out,
        phases=phases,
        profile_dir=a.profile_dir,
        partitions=a.partitions,
        quiet_wait=a.quiet_wait,
        max_other_load=a.max_other_load,
        noisy_retries=a.noisy_retries,
    )


def run_script(script: str, amain: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    """Run ``amain(command)`` (command: how the script was invoked, for the report) with
    SIGTERM turned into KeyboardInterrupt; every subprocess is stopped at the end."""
    command = " ".join([".venv/bin/python", script, *sys.argv[1:]])

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    try:
        return asyncio.run(amain(command))
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        Proc.stop_all()  # last resort, should amain's own clean-up have been cut short


def main() -> int:
    cfg = parse_args()
    return run_script("bench/pipeline.py", lambda command: amain(cfg, command))


if __name__ == "__main__":
    sys.exit(main())
