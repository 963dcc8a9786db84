#!/usr/bin/env python3
"""Issue 11 benchmark: sync no-op tasks, TaskFlow's two modes against taskiq's thread pool
and dramatiq's threads, at several concurrency levels, in one run.

    .venv/bin/python bench/sync_tasks.py [--tasks 20000] [--runs 3] [--concurrency-levels 10,100]

For each concurrency C of --concurrency-levels, each run measures, with ONE worker process
per system and a fresh namespace (and, for TaskFlow, a fresh database cloned from the
template migrated by ``taskflow migrate``):

* ``tf-noop``     TaskFlow's default sync mode: the built-in ``noop`` (each run in a child
                  process forked by the worker's fork server and reused). N pre-submitted,
                  then ONE ``taskflow worker --concurrency C`` + ONE ``taskflow projector``,
                  timed until every dispatch entry is acknowledged AND every event is
                  projected, then verified in PostgreSQL: ``taskflow_end_to_end`` of
                  ``bench/pipeline.py``, its ``tf-noop``.
* ``tf-thread``   the same with ``noop_thread`` (``@task(isolation="thread")``: a thread of
                  the worker runs it).
* ``tq-sync``     taskiq 0.13 + taskiq-redis, the sync no-op task (taskiq runs it in its
                  thread pool): N pre-enqueued (kiq), then ONE ``taskiq worker --workers 1
                  --max-async-tasks C``, timed until every stream entry is acknowledged
                  (``taskiq_run`` of pipeline.py). The thread pool keeps taskiq's default size,
                  ``ThreadPoolExecutor()``'s min(32, cores + 4). uvloop: taskiq's worker has no
                  flag for it; ``taskiq/cli/worker/run.py`` runs the worker on
                  ``uvloop.new_event_loop()`` whenever ``import uvloop`` succeeds, which this
                  script checks before it starts (that same import, in taskiq's module) and
                  states in the report. uvloop is one of TaskFlow's own dependencies.
* ``dq-threads``  dramatiq 2.2 with Redis (``bench/dramatiq_app.py``: a RedisBroker, a key
                  namespace unique per run, dramatiq's default middleware, one no-op actor):
                  N pre-enqueued (``actor.send()``, not timed), then ONE ``dramatiq
                  dramatiq_app:broker --processes 1 --threads C``, timed until the queue's
                  message hash is empty: dramatiq's ``dispatch.lua`` removes a message from
                  that hash only when it is acked (after the actor ran) or nacked (then it
                  moves to the dead-letter set). Afterwards the dead-letter set and the delay
                  queue (where the Retries middleware puts failed messages) must be empty.
                  Its first read: the id list shorter than N (a fetch LPOPs ids).

Once per run, ``tf-first``: a fresh ``taskflow worker --concurrency C`` (C the first level)
with ONE ``noop`` pre-submitted, timed from the spawn until its dispatch entry is
acknowledged (target < 0.5 s; polled every 5 ms; the worker alone, nothing projected).

The report gives, per level, jobs/s (medians of --runs, from the spawn, so including
start-up; "warm" from the first read), CPU per task in µs (TaskFlow: the worker's process
group, i.e. worker + fork server + sync-task children, and the projector; peers: their
worker's process group; Redis's and PostgreSQL's share besides), and the ratios TaskFlow
default / taskiq, TaskFlow thread / taskiq (targets 1.5 and 2), TaskFlow default /
dramatiq, TaskFlow thread / dramatiq, from medians of this same run.

The phases of a run alternate between the systems; before each, the script waits for an
idle second and repeats a phase whose window saw more than --max-other-load cores of other
load (``run_phase`` of pipeline.py). The tree is snapshotted first, every key of every
namespace is removed afterwards (SCAN + UNLINK, never FLUSHALL), every database dropped,
every subprocess stopped: all as in pipeline.py, whose phases and options this reuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from dramatiq_app import QueueKeys, make_broker
from pipeline import (
    add_output_arguments,
    add_phase_arguments,
    add_server_arguments,
    config_from,
    finish,
    new_parser,
    parse_phases,
    print_header,
    run_phase,
    run_script,
    taskflow_end_to_end,
    taskiq_run,
    time_worker,
    with_bench,
)
from redis.asyncio import Redis
from support.bench import Bench, Config, unlink_matching
from support.cpu import ServerCpu
from support.errors import PhaseError
from support.processes import exe
from support.report import fmt_runs, machine_info, med, server_versions
from support.snapshot import BENCH_DIR
from support.stack import TaskFlowStack
from support.waiting import FIRST_READ_POLL_S, all_done, any_started, wait_for
from taskiq_app import NOOP_SYNC

from taskflow.streams.keyspace import WORKERS_GROUP

Phase = Callable[[Bench], Awaitable[dict[str, Any]]]

FIRST_TASK_TARGET_S = 0.5

# --------------------------------------------------------------------------- the phases


async def dramatiq_run(bench: Bench) -> dict[str, Any]:
    """Pre-enqueue N (actor.send), then ONE dramatiq worker process with C threads; until
    every message is acked."""
    cfg = bench.cfg
    n = cfg.tasks
    assert bench.redis is not None
    redis = bench.redis
    keys = QueueKeys(bench.new_name("dq"))
    try:
        broker, actor = make_broker(cfg.redis_url, keys.namespace)

        def send_all() -> float:
            started = time.perf_counter()
            for _ in range(n):
                actor.send()
            return time.perf_counter() - started

        try:
            submit_s = await asyncio.to_thread(send_all)
        finally:
            broker.client.connection_pool.disconnect()
        queued = (int(await redis.llen(keys.ids)), int(await redis.hlen(keys.messages)))
        if queued != (n, n):
            raise PhaseError(f"dq-threads: (ids, messages) in Redis are {queued}, expected {(n, n)}")

        async def fetched() -> bool:
            return int(await redis.llen(keys.ids)) < n

        async def acked() -> bool:
            return int(await redis.hlen(keys.messages)) == 0

        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
        env.update(BENCH_DRAMATIQ_NAMESPACE=keys.namespace, BENCH_REDIS_URL=cfg.redis_url)
        argv = [
            exe("dramatiq"),
            "dramatiq_app:broker",
            "--path",
            str(BENCH_DIR),
            "--processes",
            "1",
            "--threads",
            str(cfg.concurrency),
        ]
        timed = await time_worker(bench, "dq-threads", argv, env, started=fetched, done=acked)
        await _check_dramatiq_drained(redis, keys)
        return {"submit_s": submit_s, **timed}
    finally:
        with contextlib.suppress(Exception):
            await unlink_matching(redis, keys.namespace)


async def _check_dramatiq_drained(redis: Redis, keys: QueueKeys) -> None:
    """No id left to fetch, nothing retried (delay queue) or dead-lettered: every message ran."""
    left = {
        "ids": int(await redis.llen(keys.ids)),
        "delayed": int(await redis.hlen(keys.delayed_messages)),
        "dead": int(await redis.zcard(keys.dead)),
    }
    if any(left.values()):
        raise PhaseError(f"dq-threads: messages not run successfully: {left}")


async def taskflow_first_task(bench: Bench) -> dict[str, Any]:
    """One ``noop`` pre-submitted, then a fresh worker; until its dispatch entry is acked."""
    async with TaskFlowStack(bench, "tf-first") as st:
        await st.submit(1, "noop")
        cpu0 = await ServerCpu.sample(st.redis)
        started = time.perf_counter()
        worker = st.worker()
        deadline = started + bench.cfg.phase_timeout
        marks: list[float] = []
        for check, what in ((any_started, "the worker's first read"), (all_done, "the noop's entry acknowledged")):
            done = partial(check, st.redis, st.dispatch_streams, WORKERS_GROUP)
            marks.append(await wait_for(done, what=what, interval=FIRST_READ_POLL_S, deadline=deadline, procs=[worker]))
        first, acked = marks
        cpu1 = await ServerCpu.sample(st.redis)
        return {
            "startup_s": first - started,
            "first_task_s": acked - started,
            # run_phase's noise check divides the window's other load by drain_s.
            "drain_s": acked - started,
            "cpu_s": cpu0.until(cpu1, {"worker": worker.cpu_seconds()}),
        }


PHASES: list[tuple[str, Phase]] = [
    ("tf-noop", lambda b: taskflow_end_to_end(b, "noop")),
    ("tq-sync", lambda b: taskiq_run(b, NOOP_SYNC)),
    ("tf-thread", lambda b: taskflow_end_to_end(b, "noop_thread")),
    ("dq-threads", dramatiq_run),
]
FIRST = "tf-first"

LABELS = {
    "tf-noop": "TaskFlow noop (default: fork-server child), all projected",
    "tf-thread": "TaskFlow noop_thread (thread mode), all projected",
    "tq-sync": "taskiq no-op (sync, thread pool, uvloop)",
    "dq-threads": "dramatiq no-op actor (worker threads)",
}

# (numerator, denominator, what it is, target or None)
RATIOS: list[tuple[str, str, str, float | None]] = [
    ("tf-noop", "tq-sync", "TaskFlow default / taskiq thread pool", 1.5),
    ("tf-thread", "tq-sync", "TaskFlow thread  / taskiq thread pool", 2.0),
    ("tf-noop", "dq-threads", "TaskFlow default / dramatiq threads  ", None),
    ("tf-thread", "dq-threads", "TaskFlow thread  / dramatiq threads  ", None),
]


def _describe_first(_name: str, r: dict[str, Any]) -> str:
    return f"first sync task acked {r['first_task_s']:.3f}s after the spawn (first read {r['startup_s']:.3f}s)"


def taskiq_uses_uvloop() -> bool:
    """Whether taskiq's worker will run on uvloop: it does when its own ``import uvloop``
    (at the top of taskiq/cli/worker/run.py, the same interpreter) succeeded."""
    from taskiq.cli.worker import run

    return getattr(run, "uvloop", None) is not None


# --------------------------------------------------------------------------- reporting


def _per_task_us(runs: list[dict[str, Any]], n: int) -> dict[str, float]:
    """Median over the runs of each consumer's CPU per task, in µs: ``own`` (the system's
    processes), ``worker``, ``projector`` (TaskFlow), ``redis``, ``postgres`` (TaskFlow: a
    peer's window sees only other people's PostgreSQL use)."""
    taskflow = "projector" in runs[0]["cpu_s"]
    consumers = ["worker", "projector", "redis", "postgres"] if taskflow else ["worker", "redis"]
    found = {k: med([r["cpu_s"][k] / n * 1e6 for r in runs]) for k in consumers}
    found["own"] = med([(r["cpu_s"]["worker"] + r["cpu_s"].get("projector", 0.0)) / n * 1e6 for r in runs])
    return found


def _ratios(level: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """RATIOS of one level, of the medians (jobs/s and warm jobs/s), with their targets."""
    found: dict[str, dict[str, Any]] = {}
    for top, bottom, _what, target in RATIOS:
        if level.get(top) and level.get(bottom):
            ratio = med([r["jobs_per_s"] for r in level[top]]) / med([r["jobs_per_s"] for r in level[bottom]])
            found[f"{top}/{bottom}"] = {
                "median": ratio,
                "warm": med([r["warm_jobs_per_s"] for r in level[top]])
                / med([r["warm_jobs_per_s"] for r in level[bottom]]),
                "target": target,
                "met": None if target is None else ratio >= target,
            }
    return found


def _print_level(cfg: Config, c: int, level: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    n = cfg.tasks
    print(
        f"concurrency C = {c}: TaskFlow worker --concurrency {c}; taskiq --workers 1 --max-async-tasks {c} "
        f"(thread pool {min(32, (os.cpu_count() or 1) + 4)} threads); dramatiq --processes 1 --threads {c}"
    )
    print(f"  {'throughput (jobs/s)':<58} {'median':>9} {'warm med':>9} {'start-up':>9}   per run")
    for name, label in LABELS.items():
        if runs := level.get(name):
            cold = [r["jobs_per_s"] for r in runs]
            warm = [r["warm_jobs_per_s"] for r in runs]
            startup = med([r["startup_s"] for r in runs])
            print(f"  {label:<58} {med(cold):>9,.0f} {med(warm):>9,.0f} {startup:>8.2f}s   {fmt_runs(cold)}")
    columns = ("own", "worker", "projector", "redis", "postgres")
    print(f"  {'CPU per task (µs, median of runs)':<58} " + " ".join(f"{k:>9}" for k in columns))
    for name, label in LABELS.items():
        if runs := level.get(name):
            us = _per_task_us(runs, n)
            cells = " ".join(f"{us[k]:>9,.0f}" if k in us else f"{'-':>9}" for k in columns)
            print(f"  {label:<58} {cells}")
    print("  own: the system's processes (TaskFlow: worker group + projector; peers: their worker's group)")
    ratios = _ratios(level)
    print("  ratios of this run's medians (warm in parentheses):")
    for top, bottom, what, target in RATIOS:
        if (r := ratios.get(f"{top}/{bottom}")) is None:
            continue
        verdict = "" if target is None else f"   target >= {target:g}: {'met' if r['met'] else 'NOT met'}"
        print(f"    {what}: {r['median']:5.2f}  ({r['warm']:.2f}){verdict}")
    return ratios


def print_report(
    cfg: Config,
    levels: list[int],
    machine: dict[str, str],
    results: dict[str, dict[str, list[dict[str, Any]]]],
    first: list[dict[str, Any]],
    command: str,
) -> dict[str, Any]:
    print_header("Issue 11 - sync tasks benchmark", command, machine)
    print(
        f"N = {cfg.tasks:,} sync no-op tasks per run, {cfg.runs} run(s), medians shown; ONE worker process per "
        f"system; TASKFLOW_PARTITIONS={cfg.partitions}; taskiq's worker on uvloop"
    )
    print("  jobs/s: N / (spawn -> done), incl. process start-up; warm: N / (first read -> done)")
    print()
    ratios: dict[str, Any] = {}
    for c in levels:
        ratios[f"c{c}"] = _print_level(cfg, c, results[f"c{c}"])
        print()
    first_task: dict[str, Any] = {}
    if first:
        acked = [r["first_task_s"] for r in first]
        first_task = {"median_s": med(acked), "target_s": FIRST_TASK_TARGET_S, "met": med(acked) < FIRST_TASK_TARGET_S}
        print(
            f"first completed sync task (noop, default mode; fresh worker --concurrency {levels[0]}, one task "
            f"pre-submitted; spawn -> its dispatch entry acked):"
        )
        print(
            f"  median {med(acked):.3f}s   per run {fmt_runs(acked, '.3f')}   first read "
            f"{med([r['startup_s'] for r in first]):.3f}s   target < {FIRST_TASK_TARGET_S:g}s: "
            f"{'met' if first_task['met'] else 'NOT met'}"
        )
    print("=" * 100)
    return {"ratios": ratios, "first_task": first_task}


# --------------------------------------------------------------------------- main


async def measure(bench: Bench, levels: list[int], command: str) -> None:
    """Every run of every phase at every level, the report and the JSON file."""
    cfg = bench.cfg
    assert bench.redis is not None
    machine = machine_info(*await server_versions(cfg, bench.redis), extra_packages=("dramatiq",))
    print(f"logs: {cfg.logdir}", flush=True)
    # One view of the benchmark per level: the same servers, template and clean-up lists,
    # the level as the phases' concurrency.
    views = {c: dataclasses.replace(bench, cfg=dataclasses.replace(cfg, concurrency=c)) for c in levels}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {f"c{c}": {name: [] for name, _ in PHASES} for c in levels}
    first: list[dict[str, Any]] = []
    noisy_kept = 0
    for run in range(1, cfg.runs + 1):
        if FIRST in cfg.phases:
            result, noisy = await run_phase(views[levels[0]], run, FIRST, taskflow_first_task, _describe_first)
            first.append(result)
            noisy_kept += noisy
        for c in levels:
            for name, phase in PHASES:
                if name in cfg.phases:
                    result, noisy = await run_phase(views[c], run, f"{name} C={c}", phase)
                    results[f"c{c}"][name].append(result)
                    noisy_kept += noisy
    summary = print_report(cfg, levels, machine, results, first, command)
    finish(
        cfg,
        command,
        machine,
        noisy_kept,
        {
            "config": {"tasks": cfg.tasks, "runs": cfg.runs, "concurrency_levels": levels},
            "results": results,
            "first_task_runs": first,
            **summary,
        },
    )


def parse_args(argv: list[str] | None = None) -> tuple[Config, list[int]]:
    parser = new_parser(__doc__, "tasks per run and system (default 20000)")
    parser.add_argument(
        "--concurrency-levels",
        default="10,100",
        help="comma list of C: TaskFlow --concurrency, taskiq --max-async-tasks, dramatiq --threads (default 10,100)",
    )
    add_server_arguments(parser)
    add_phase_arguments(parser)
    known = [*(name for name, _ in PHASES), FIRST]
    parser.add_argument("--phases", default=",".join(known), help="comma list of phases to run (default: all)")
    add_output_arguments(parser)
    a = parser.parse_args(argv)
    try:
        levels = [int(v) for v in a.concurrency_levels.split(",") if v.strip()]
    except ValueError:
        parser.error("--concurrency-levels takes a comma list of integers")
    if a.tasks < 1 or a.runs < 1 or not levels or min(levels) < 1:
        parser.error("--tasks, --runs and every concurrency level must be positive")
    cfg = config_from(a, concurrency=levels[0], phases=parse_phases(parser, a.phases, known))
    return cfg, levels


def main() -> int:
    cfg, levels = parse_args()
    if not taskiq_uses_uvloop():
        print("error: uvloop cannot be imported, so taskiq's worker would not run on it", file=sys.stderr)
        return 2
    return run_script(
        "bench/sync_tasks.py", lambda command: with_bench(cfg, lambda bench: measure(bench, levels, command))
    )


if __name__ == "__main__":
    sys.exit(main())
