#!/usr/bin/env python3
"""Issue 13 benchmark: Redis memory with the coordinator trimming the streams, and without.

    .venv/bin/python bench/stream_memory.py [--tasks 66666] [--runs 1] [--concurrency 100]

Each run has two phases, each with a fresh namespace and a fresh database cloned from the
template migrated by ``taskflow migrate``, and the same real stack: ONE ``taskflow worker
--concurrency C``, ONE ``taskflow projector``, ONE ``taskflow coordinator``, while N echo
tasks are submitted through the atomic submit script (``TaskFlowStack.submit``, 1,000 in
flight), 3 events each: the default N = 66,666 makes 200,000 events (199,999 with the
worker's WorkerStarted). The phases differ in one setting:

* ``trim-on``   ``TASKFLOW_STREAM_RETENTION_SECONDS=0``: the coordinator trims every 5 s
                down to what the groups acknowledged and the archive holds.
* ``trim-off``  ``TASKFLOW_STREAM_RETENTION_SECONDS=-1``: nothing is trimmed (before
                issue 13, every deployment).

A phase lasts until every dispatch entry and every event is acknowledged, then one more
trim period (6 s) so the last pass has run, and is verified in PostgreSQL (every task
COMPLETED, the archive holding every event). It then reads the streams' lengths (XLEN),
their memory (MEMORY USAGE, every node sampled), and Redis's ``used_memory`` against the
figure read before the phase (the server is shared: the difference is what the phase
left behind, with allocator noise). The event stream's length is also polled every 0.5 s
during the run: its peak. The report prints both phases side by side; ``--json`` writes
them. Clean-up is pipeline.py's: keys by SCAN + UNLINK, databases dropped, processes
stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from functools import partial
from typing import Any

import pipeline
from support.bench import Bench, Config
from support.report import machine_info, server_versions
from support.stack import TaskFlowStack
from support.waiting import DONE_POLL_S, all_done, wait_for

from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP

PHASES = {"trim-on": "0", "trim-off": "-1"}  # TASKFLOW_STREAM_RETENTION_SECONDS
# One trim period of the coordinator (coordinator.trimmer.TRIM_EVERY_S) and a second more.
LAST_PASS_S = 6.0
PEAK_POLL_S = 0.5


async def stream_memory(bench: Bench, name: str) -> dict[str, Any]:
    """The stack with one retention setting; lengths and memory once everything is done."""
    cfg = bench.cfg
    n = cfg.tasks
    async with TaskFlowStack(bench, name) as st:
        st.env["TASKFLOW_STREAM_RETENTION_SECONDS"] = PHASES[name]
        used_before = int((await st.redis.info("memory"))["used_memory"])
        started = time.perf_counter()
        procs = [st.worker(), st.spawn("projector"), st.spawn("coordinator")]
        peak = 0

        async def watch_peak() -> None:
            nonlocal peak
            while True:
                peak = max(peak, sum([int(await st.redis.xlen(s)) for s in st.events_streams]))
                await asyncio.sleep(PEAK_POLL_S)

        watching = asyncio.create_task(watch_peak())
        try:
            submit_s = await st.submit(n, "echo")
            deadline = started + cfg.phase_timeout
            for streams, group, what in (
                (st.dispatch_streams, WORKERS_GROUP, "every dispatch entry acknowledged"),
                (st.events_streams, PROJECTOR_GROUP, "every event projected"),
            ):
                await wait_for(
                    partial(all_done, st.redis, streams, group),
                    what=what,
                    interval=DONE_POLL_S,
                    deadline=deadline,
                    procs=procs,
                )
            drained_s = time.perf_counter() - started
            await asyncio.sleep(LAST_PASS_S)
        finally:
            watching.cancel()
        for proc in procs:
            proc.check()
        rows = await st.verify(n, 3 * n + 1)
        return {
            "retention_seconds": int(PHASES[name]),
            "events": 3 * n + 1,
            "submit_s": round(submit_s, 2),
            "drained_s": round(drained_s, 2),
            "events_peak_len": peak,
            **await _redis_figures(st, used_before),
            "rows": rows,
        }


async def _redis_figures(st: TaskFlowStack, used_before: int) -> dict[str, int]:
    redis = st.redis
    streams = {"events": st.events_streams, "dispatch": st.dispatch_streams}
    figures: dict[str, int] = {}
    for kind, keys in streams.items():
        figures[f"{kind}_len"] = sum([int(await redis.xlen(k)) for k in keys])
        figures[f"{kind}_bytes"] = sum([int(await redis.memory_usage(k, samples=0) or 0) for k in keys])
    used = int((await redis.info("memory"))["used_memory"])
    figures["used_memory"] = used
    figures["used_memory_delta"] = used - used_before
    return figures


def _mib(value: int) -> str:
    return f"{value / 1024 / 1024:,.1f} MiB"


def print_report(results: dict[str, list[dict[str, Any]]]) -> None:
    rows = [
        ("events through the stack", lambda r: f"{r['events']:,}"),
        ("drained in", lambda r: f"{r['drained_s']:.1f} s"),
        ("event stream, peak length", lambda r: f"{r['events_peak_len']:,}"),
        ("event stream, length at the end", lambda r: f"{r['events_len']:,}"),
        ("event stream, MEMORY USAGE", lambda r: _mib(r["events_bytes"])),
        ("dispatch streams, length at the end", lambda r: f"{r['dispatch_len']:,}"),
        ("dispatch streams, MEMORY USAGE", lambda r: _mib(r["dispatch_bytes"])),
        ("Redis used_memory at the end", lambda r: _mib(r["used_memory"])),
        ("used_memory, difference over the phase", lambda r: _mib(r["used_memory_delta"])),
    ]
    print(f"{'figure (last run)':<42}" + "".join(f"{name:>16}" for name in results))
    for label, cell in rows:
        print(f"{label:<42}" + "".join(f"{cell(runs[-1]):>16}" for runs in results.values()))


async def measure(bench: Bench, command: str) -> None:
    cfg = bench.cfg
    assert bench.redis is not None
    machine = machine_info(*await server_versions(cfg, bench.redis))
    print(f"logs: {cfg.logdir}", flush=True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in PHASES}
    for run in range(1, cfg.runs + 1):
        for name in PHASES:
            result = await stream_memory(bench, name)
            results[name].append(result)
            print(
                f"run {run}/{cfg.runs} {name:<9} events peak {result['events_peak_len']:,}, "
                f"end {result['events_len']:,}; used_memory +{_mib(result['used_memory_delta'])}",
                flush=True,
            )
    pipeline.print_header("Issue 13: Redis memory with and without stream trimming", command, machine)
    print_report(results)
    pipeline.finish(cfg, command, machine, 0, {"config": {"tasks": cfg.tasks, "runs": cfg.runs}, "results": results})


def parse_args(argv: list[str] | None = None) -> Config:
    parser = pipeline.new_parser(__doc__, "tasks per phase, 3 events each (default 66666: 200,000 events)")
    parser.set_defaults(tasks=66_666, runs=1)
    parser.add_argument("--concurrency", type=int, default=100, help="the worker's --concurrency (default 100)")
    pipeline.add_server_arguments(parser)
    pipeline.add_phase_arguments(parser)
    pipeline.add_output_arguments(parser)
    a = parser.parse_args(argv)
    if a.tasks < 1 or a.runs < 1 or a.concurrency < 1:
        parser.error("--tasks, --runs and --concurrency must be positive")
    return pipeline.config_from(a, concurrency=a.concurrency, phases=list(PHASES))


def main() -> int:
    cfg = parse_args()
    return pipeline.run_script(
        "bench/stream_memory.py", lambda command: pipeline.with_bench(cfg, lambda bench: measure(bench, command))
    )


if __name__ == "__main__":
    sys.exit(main())
