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
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import BlockingConnectionPool, Redis

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent


def _snapshot_taskflow() -> Path:
    """Copy the package (plus migrations) aside, so every phase of one benchmark runs the
    same code while others keep editing the tree; subprocesses get it via PYTHONPATH,
    which wins over the editable install's finder (appended to sys.meta_path)."""
    snapshot = Path(tempfile.mkdtemp(prefix="taskflow-bench-src-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "taskflow", snapshot / "taskflow", ignore=ignore)
    shutil.copytree(ROOT / "migrations", snapshot / "migrations", ignore=ignore)
    shutil.copy2(ROOT / "alembic.ini", snapshot / "alembic.ini")
    return snapshot


SNAPSHOT = _snapshot_taskflow()
atexit.register(shutil.rmtree, SNAPSHOT, True)
sys.path.insert(0, str(SNAPSHOT))
sys.path.insert(0, str(BENCH_DIR))

from taskiq_app import NOOP_ASYNC, NOOP_SYNC, make_broker  # noqa: E402

from taskflow.events import TaskSubmitted  # noqa: E402
from taskflow.settings import load_settings  # noqa: E402
from taskflow.streams.groups import ensure_groups  # noqa: E402
from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP, Keyspace  # noqa: E402
from taskflow.streams.submit import Submitter  # noqa: E402

if Path(sys.modules["taskflow"].__file__ or "").resolve().parent != SNAPSHOT / "taskflow":
    raise SystemExit("error: taskflow was not imported from the benchmark's snapshot")

BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
SUBMIT_IN_FLIGHT = 1000
FIRST_READ_POLL_S = 0.005
DONE_POLL_S = 0.02
STOP_TIMEOUT_S = 20.0


class PhaseError(RuntimeError):
    """A phase failed: a process died, a timeout passed, or a check did not hold."""


def _exe(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"error: cannot find the `{name}` executable next to {sys.executable}")
    return found


# --------------------------------------------------------------------------- processes


class Proc:
    """A subprocess in its own session, so it and its children can be stopped together."""

    alive_procs: list[Proc] = []

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], logdir: Path, *, profiler: bool = False
    ) -> None:
        self.name = name
        self.profiler = profiler
        self.log_path = logdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            # The snapshot, not ROOT: the worker starts its sync-task children with
            # `python -m taskflow.worker.child_process`, which puts the working directory first on
            # sys.path; from ROOT they would import the live tree, not the snapshot.
            cwd=SNAPSHOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.spawned_at = time.perf_counter()
        Proc.alive_procs.append(self)

    def check(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise PhaseError(f"{self.name} exited early with code {code}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:])

    def cpu_seconds(self) -> float:
        """user + system CPU of every live process in this process's group."""
        return _group_cpu_seconds(self.popen.pid)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the group, wait, then SIGKILL it; returns the exit code."""
        if self.profiler:
            # py-spy writes its profile when its target exits; give it the time to.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        # Children of the group (taskiq's worker process) may outlive the leader.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()
        if self in Proc.alive_procs:
            Proc.alive_procs.remove(self)
        return self.popen.returncode

    @classmethod
    def stop_all(cls) -> None:
        for proc in list(cls.alive_procs):
            proc.stop(timeout=5)


def _proc_stats() -> Iterator[tuple[int, str, int, float]]:
    """(pid, comm, pgrp, cpu seconds) of every process we can read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        yield int(entry), comm, int(rest[2]), (int(rest[11]) + int(rest[12])) / CLK_TCK


def _group_cpu_seconds(pgid: int) -> float:
    return sum(cpu for _, _, pgrp, cpu in _proc_stats() if pgrp == pgid)


def _postgres_cpu_seconds() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process, by pid (backends come and go)."""
    return {pid: cpu for pid, comm, _, cpu in _proc_stats() if comm.startswith("postgres")}


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all but idle and iowait) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


async def _redis_cpu_seconds(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class ServerCpu:
    """CPU seconds used so far by Redis, PostgreSQL, this script and the whole machine."""

    redis: float
    postgres: dict[int, float]
    bench: float
    machine: float

    @classmethod
    async def sample(cls, redis: Redis) -> ServerCpu:
        return cls(
            await _redis_cpu_seconds(redis), _postgres_cpu_seconds(), time.process_time(), _machine_busy_seconds()
        )

    def until(self, later: ServerCpu, procs: dict[str, float]) -> dict[str, float]:
        """CPU seconds per consumer between two samples; ``other`` is everything else on the
        machine (e.g. someone else's test suite), so a noisy run shows as such."""
        used = {
            **procs,
            "redis": later.redis - self.redis,
            # A backend that exits inside the window takes its CPU with it: a slight undercount.
            "postgres": sum(cpu - self.postgres.get(pid, 0.0) for pid, cpu in later.postgres.items()),
            "bench": later.bench - self.bench,
        }
        used["other"] = max(0.0, later.machine - self.machine - sum(used.values()))
        return used


async def wait_until_quiet(max_wait_s: float, threshold_cores: float = 0.25) -> float:
    """Wait (at most ``max_wait_s``) for a second in which the machine is nearly idle, since
    other people's jobs share the box; returns the busy cores seen in the last second."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        before = _machine_busy_seconds()
        await asyncio.sleep(1.0)
        busy = _machine_busy_seconds() - before
        if busy <= threshold_cores or time.perf_counter() >= deadline:
            return busy


# --------------------------------------------------------------------------- helpers


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, what: str, interval: float, deadline: float, procs: list[Proc]
) -> float:
    """Poll ``condition`` until true; the perf_counter time it was first seen true."""
    while True:
        if await condition():
            return time.perf_counter()
        for proc in procs:
            proc.check()
        if time.perf_counter() > deadline:
            raise PhaseError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def group_info(redis: Redis, stream: str, group: str) -> dict[str, Any]:
    for info in await redis.xinfo_groups(stream):
        if info["name"] == group:
            return dict(info)
    raise PhaseError(f"stream {stream} has no group {group}")


async def group_started(redis: Redis, stream: str, group: str) -> bool:
    """The group has read at least one entry."""
    return bool((await group_info(redis, stream, group))["last-delivered-id"] != "0-0")


async def group_done(redis: Redis, stream: str, group: str) -> bool:
    """The group has read up to the stream's last id and acknowledged all of it."""
    info = await group_info(redis, stream, group)
    last = (await redis.xinfo_stream(stream))["last-generated-id"]
    return info["last-delivered-id"] == last and int(info["pending"]) == 0


async def any_started(redis: Redis, streams: list[str], group: str) -> bool:
    for stream in streams:
        if await group_started(redis, stream, group):
            return True
    return False


async def all_done(redis: Redis, streams: list[str], group: str) -> bool:
    for stream in streams:
        if not await group_done(redis, stream, group):
            return False
    return True


async def unlink_matching(redis: Redis, fragment: str) -> int:
    """SCAN + UNLINK every key containing ``fragment`` (a unique run id)."""
    removed = 0
    batch: list[str] = []
    async for key in redis.scan_iter(match=f"*{fragment}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            removed += await redis.unlink(*batch)
            batch.clear()
    if batch:
        removed += await redis.unlink(*batch)
    return removed


def with_database(url: str, name: str) -> str:
    base, _, rest = url.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --------------------------------------------------------------------------- the bench


@dataclass
class Config:
    tasks: int
    runs: int
    concurrency: int
    redis_url: str
    pg_admin_url: str
    rest_requests: int
    rest_warmup: int
    phase_timeout: float
    submit_connections: int
    logdir: Path
    skip_rest: bool
    json_out: Path | None
    phases: list[str]
    profile_dir: Path | None
    partitions: int
    quiet_wait: float
    max_other_load: float
    noisy_retries: int


@dataclass
class Bench:
    cfg: Config
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    databases: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    template: str = ""
    redis: Redis | None = None

    def profile(self, proc: Proc) -> Proc | None:
        """With --profile, a py-spy sampling ``proc`` (and its children) until it exits."""
        if self.cfg.profile_dir is None:
            return None
        self.cfg.profile_dir.mkdir(parents=True, exist_ok=True)
        out = self.cfg.profile_dir / f"{proc.log_path.stem}.txt"
        argv = [
            _exe("py-spy"),
            "record",
            "--pid",
            str(proc.popen.pid),
            "--subprocesses",
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
        ]
        return Proc(f"py-spy-{proc.name}", argv, dict(os.environ), self.cfg.logdir, profiler=True)

    def new_name(self, kind: str) -> str:
        """A unique, prefix-safe name: the key namespace / stream name of one phase."""
        name = f"bench{self.run_id}{kind}{uuid.uuid4().hex[:6]}"
        self.fragments.append(name)
        return name

    async def admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.cfg.pg_admin_url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def taskflow_env(self, namespace: str, database: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
        env.update(
            TASKFLOW_REDIS_URL=self.cfg.redis_url,
            TASKFLOW_DATABASE_URL=with_database(self.cfg.pg_admin_url, database),
            TASKFLOW_NAMESPACE=namespace,
            TASKFLOW_JWT_SECRET=secrets.token_hex(32),
            TASKFLOW_LOG_LEVEL="WARNING",
            TASKFLOW_PARTITIONS=str(self.cfg.partitions),
            PYTHONPATH=os.pathsep.join([str(SNAPSHOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        return env

    async def setup(self) -> None:
        self.redis = Redis.from_url(self.cfg.redis_url, decode_responses=True)
        self.template = f"bench_tpl_{self.run_id}"
        self.databases.append(self.template)
        await self.admin(f'CREATE DATABASE "{self.template}"')
        env = self.taskflow_env(self.new_name("tpl"), self.template)
        done = await asyncio.to_thread(
            subprocess.run,
            [_exe("taskflow"), "migrate"],
            env=env,
            cwd=SNAPSHOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise PhaseError(f"taskflow migrate failed:\n{done.stdout}\n{done.stderr}")

    async def cleanup(self) -> None:
        Proc.stop_all()
        if self.redis is not None:
            for fragment in self.fragments:
                with contextlib.suppress(Exception):
                    await unlink_matching(self.redis, fragment)
            await self.redis.aclose()
            self.redis = None
        for name in reversed(self.databases):
            with contextlib.suppress(Exception):
                await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.clear()


class TaskFlowStack:
    """One namespace + one database cloned from the migrated template, for one phase."""

    def __init__(self, bench: Bench, label: str) -> None:
        self.bench = bench
        self.label = label
        self.ns = bench.new_name("tf")
        self.db = f"bench_{self.ns}"
        self.env = bench.taskflow_env(self.ns, self.db)
        self.settings = load_settings(self.env)
        self.procs: list[Proc] = []
        self.keyspace = Keyspace.of(self.settings)
        self.events_streams = [self.keyspace.events(p) for p in self.keyspace.all_partitions]
        self.dispatch_streams = [self.keyspace.dispatch(p, "medium") for p in self.keyspace.all_partitions]

    @property
    def redis(self) -> Redis:
        assert self.bench.redis is not None
        return self.bench.redis

    async def __aenter__(self) -> TaskFlowStack:
        self.bench.databases.append(self.db)
        await self.bench.admin(f'CREATE DATABASE "{self.db}" TEMPLATE "{self.bench.template}"')
        # The gateway does this at start-up; creating the groups before the first submit
        # makes them start at the first entry.
        await ensure_groups(self.redis, self.keyspace)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.stop()
        with contextlib.suppress(Exception):
            await unlink_matching(self.redis, self.ns)
        with contextlib.suppress(Exception):
            await self.bench.admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            self.bench.databases.remove(self.db)

    def spawn(self, name: str, *args: str) -> Proc:
        proc = Proc(f"{self.label}-{name}", [_exe("taskflow"), name, *args], self.env, self.bench.cfg.logdir)
        self.procs.append(proc)
        profiler = self.bench.profile(proc)
        if profiler is not None:
            self.procs.append(profiler)
        return proc

    def worker(self) -> Proc:
        return self.spawn("worker", "--concurrency", str(self.bench.cfg.concurrency))

    async def submit(self, n: int, task_name: str) -> float:
        """N ``task_name`` submits through the atomic submit script; the seconds it took."""
        events = [
            TaskSubmitted(
                aggregate_id=str(uuid.uuid4()),
                occurred_at=datetime.now(UTC),
                correlation_id=uuid.uuid4().hex,
                actor="bench",
                task_name=task_name,
            )
            for _ in range(n)
        ]
        return await self.submit_events(events)

    async def submit_events(self, events: list[TaskSubmitted]) -> float:
        """Submit through the atomic submit script the gateway uses (scheduled ones held
        until due), SUBMIT_IN_FLIGHT at a time; returns the seconds it took."""
        pool = BlockingConnectionPool.from_url(
            self.bench.cfg.redis_url, max_connections=self.bench.cfg.submit_connections, decode_responses=True
        )
        client = Redis(connection_pool=pool)
        submitter = Submitter(client, self.keyspace)
        ttl = self.settings.idempotency_ttl_seconds

        async def one(event: TaskSubmitted) -> None:
            outcome = await submitter.submit(event, fingerprint="bench", marker_ttl_seconds=ttl)
            if not outcome.created:
                raise PhaseError("a submit was not created")

        started = time.perf_counter()
        try:
            for i in range(0, len(events), SUBMIT_IN_FLIGHT):
                await asyncio.gather(*(one(e) for e in events[i : i + SUBMIT_IN_FLIGHT]))
        finally:
            await client.aclose()
            await pool.disconnect()
        return time.perf_counter() - started

    async def verify(self, n: int, events_expected: int) -> dict[str, int]:
        conn = await asyncpg.connect(with_database(self.bench.cfg.pg_admin_url, self.db), timeout=10)
        try:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'COMPLETED') AS completed, count(*) AS tasks FROM tasks"
            )
            assert row is not None
            archived = await conn.fetchval("SELECT count(*) FROM event_archive")
            results = await conn.fetchval("SELECT count(*) FROM task_results")
            executions = await conn.fetchval("SELECT count(*) FILTER (WHERE status = 'COMPLETED') FROM task_executions")
            checkpoints = {
                int(r["partition"]): f"{r['last_ms']}-{r['last_seq']}"
                for r in await conn.fetch("SELECT partition, last_ms, last_seq FROM projection_checkpoints")
            }
        finally:
            await conn.close()
        last = {p: (await self.redis.xinfo_stream(s))["last-generated-id"] for p, s in enumerate(self.events_streams)}
        found = {
            "tasks_completed": int(row["completed"]),
            "tasks": int(row["tasks"]),
            "event_archive": int(archived),
            "task_results": int(results),
            "executions_completed": int(executions),
        }
        expected = {
            "tasks_completed": n,
            "tasks": n,
            "event_archive": events_expected,
            "task_results": n,
            "executions_completed": n,
        }
        if found != expected:
            raise PhaseError(f"{self.label}: PostgreSQL holds {found}, expected {expected}")
        if checkpoints != last:
            raise PhaseError(f"{self.label}: checkpoints {checkpoints} are not the streams' last ids {last}")
        return found


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


async def taskiq_run(bench: Bench, task_name: str) -> dict[str, Any]:
    """Pre-enqueue N (kiq), then ONE taskiq worker process; until every entry is acked."""
    cfg = bench.cfg
    n = cfg.tasks
    assert bench.redis is not None
    redis = bench.redis
    queue = bench.new_name("tq")
    group = f"{queue}-workers"
    label = "tq-async" if task_name == NOOP_ASYNC else "tq-sync"
    worker: Proc | None = None
    profiler: Proc | None = None
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
            _exe("taskiq"),
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
        cpu0 = await ServerCpu.sample(redis)
        started = time.perf_counter()
        worker = Proc(label, argv, env, cfg.logdir)
        profiler = bench.profile(worker)
        deadline = started + _phase_timeout(cfg)
        first = await wait_for(
            lambda: group_started(redis, queue, group),
            what="the taskiq worker's first read",
            interval=FIRST_READ_POLL_S,
            deadline=deadline,
            procs=[worker],
        )
        ended = await wait_for(
            lambda: group_done(redis, queue, group),
            what="every taskiq entry acknowledged",
            interval=DONE_POLL_S,
            deadline=deadline,
            procs=[worker],
        )
        cpu1 = await ServerCpu.sample(redis)
        cpu = cpu0.until(cpu1, {"worker": worker.cpu_seconds()})
        info = await group_info(redis, queue, group)
        entries_read = info.get("entries-read")
        if entries_read is not None and int(entries_read) != n:
            raise PhaseError(f"{label}: the group read {entries_read} entries, expected {n}")
        return {
            "submit_s": submit_s,
            "startup_s": first - started,
            "drain_s": ended - started,
            "warm_s": ended - first,
            "jobs_per_s": n / (ended - started),
            "warm_jobs_per_s": n / (ended - first),
            "cpu_s": cpu,
        }
    finally:
        if worker is not None:
            worker.stop()
            if profiler is not None:
                profiler.stop()
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
            [_exe("taskflow"), "token", "--sub", "bench"],
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


def source_fingerprint(root: Path) -> str:
    """sha256 over taskflow/**/*.py and *.lua under ``root``: which code was measured."""
    digest = hashlib.sha256()
    package = root / "taskflow"
    for path in sorted([*package.rglob("*.py"), *package.rglob("*.lua")]):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def machine_info(redis_version: str, pg_version: str) -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis_version,
        "postgresql": pg_version,
        "taskflow src": f"sha256 {source_fingerprint(SNAPSHOT)} over taskflow/**/*.py+*.lua, snapshot at start"
        + ("" if source_fingerprint(SNAPSHOT) == source_fingerprint(ROOT) else "; the tree changed since"),
        "packages": ", ".join(
            f"{d} {version(d)}" for d in ("taskflow", "taskiq", "taskiq-redis", "redis", "asyncpg", "uvloop")
        ),
    }


async def server_versions(cfg: Config, redis: Redis) -> tuple[str, str]:
    redis_version = str((await redis.info("server"))["redis_version"])
    conn = await asyncpg.connect(cfg.pg_admin_url, timeout=10)
    try:
        pg_version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    return redis_version, pg_version


def med(values: list[float]) -> float:
    return statistics.median(values)


def fmt_runs(values: list[float], spec: str = ",.0f") -> str:
    return " / ".join(format(v, spec) for v in values)


def print_report(
    cfg: Config,
    machine: dict[str, str],
    results: dict[str, list[dict[str, Any]]],
    rest: dict[str, Any] | None,
    command: str,
) -> dict[str, Any]:
    n, c = cfg.tasks, cfg.concurrency
    print()
    print("=" * 100)
    print(f"Issue 3 - core pipeline benchmark   ({datetime.now(UTC):%Y-%m-%d %H:%M UTC})")
    print(f"command: {command}")
    print("-" * 100)
    for k, v in machine.items():
        print(f"{k:>11}: {v}")
    print("-" * 100)
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


def _other_load(r: dict[str, Any]) -> float:
    """Cores used by processes outside the benchmark during the timed window(s)."""
    if "cpu_s" in r:
        return float(r["cpu_s"]["other"] / r["drain_s"])
    return float((r["worker_cpu_s"]["other"] + r["projector_cpu_s"]["other"]) / (r["worker_s"] + r["projector_s"]))


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
    bench: Bench, run: int, name: str, phase: Callable[[Bench], Awaitable[dict[str, Any]]]
) -> tuple[dict[str, Any], bool]:
    """Run one phase after the machine went quiet; repeat it while other people's processes
    used more than --max-other-load cores during its window. Returns (result, still noisy)."""
    cfg = bench.cfg
    attempt = 0
    while True:
        attempt += 1
        load = await wait_until_quiet(cfg.quiet_wait)
        t0 = time.perf_counter()
        result = await phase(bench)
        result["load_before"] = load
        result["attempt"] = attempt
        other = _other_load(result)
        noisy = other > cfg.max_other_load
        print(
            f"run {run}/{cfg.runs} {name:<9} {_describe(name, result)}   "
            f"[phase {time.perf_counter() - t0:.1f}s; load before {load:.2f} cores; other load in window {other:.2f} "
            f"cores{f'; NOISY, attempt {attempt}' if noisy else ''}]",
            flush=True,
        )
        if not noisy or attempt > cfg.noisy_retries:
            return result, noisy


async def amain(cfg: Config, command: str) -> int:
    bench = Bench(cfg)
    try:
        await bench.setup()
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
        if noisy_kept:
            print(f"NOTE: {noisy_kept} phase(s) kept despite > {cfg.max_other_load} cores of other load (see above)")
        if cfg.json_out is not None:
            cfg.json_out.parent.mkdir(parents=True, exist_ok=True)
            cfg.json_out.write_text(
                json.dumps(
                    {
                        "command": command,
                        "date": datetime.now(UTC).isoformat(),
                        "machine": machine,
                        "config": {"tasks": cfg.tasks, "runs": cfg.runs, "concurrency": cfg.concurrency},
                        "results": results,
                        "rest": rest,
                        **summary,
                    },
                    indent=2,
                    default=str,
                )
            )
            print(f"json: {cfg.json_out}")
        return 0
    except PhaseError as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        return 1
    finally:
        await bench.cleanup()


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks per run (default 20000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported (default 3)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=100,
        help="TaskFlow --concurrency and taskiq --max-async-tasks (default 100, taskiq's default)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a database on a server where databases may be created and dropped",
    )
    parser.add_argument("--rest-requests", type=int, default=2000)
    parser.add_argument("--rest-warmup", type=int, default=100)
    parser.add_argument("--skip-rest", action="store_true")
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
    parser.add_argument(
        "--phases",
        default=",".join(name for name, _ in PHASES),
        help="comma list of phases to run (default: all; a subset prints no summary)",
    )
    parser.add_argument(
        "--profile",
        dest="profile_dir",
        type=Path,
        default=None,
        help="attach `py-spy record` (raw format) to every worker/projector, profiles in this dir",
    )
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="also write the raw results here")
    a = parser.parse_args(argv)
    if a.tasks < 1 or a.runs < 1 or a.concurrency < 1:
        parser.error("--tasks, --runs and --concurrency must be positive")
    phases = [p.strip() for p in a.phases.split(",") if p.strip()]
    unknown = set(phases) - {name for name, _ in PHASES}
    if unknown or not phases:
        parser.error(f"unknown phase(s) {sorted(unknown)}; known: {', '.join(name for name, _ in PHASES)}")
    logdir = a.logdir or Path(tempfile.mkdtemp(prefix="taskflow-bench-"))
    logdir.mkdir(parents=True, exist_ok=True)
    return Config(
        tasks=a.tasks,
        runs=a.runs,
        concurrency=a.concurrency,
        redis_url=a.redis_url,
        pg_admin_url=a.pg_admin_url,
        rest_requests=a.rest_requests,
        rest_warmup=a.rest_warmup,
        phase_timeout=a.phase_timeout if a.phase_timeout is not None else 120 + a.tasks / 100,
        submit_connections=a.submit_connections,
        logdir=logdir,
        skip_rest=a.skip_rest,
        json_out=a.json_out,
        phases=phases,
        profile_dir=a.profile_dir,
        partitions=a.partitions,
        quiet_wait=a.quiet_wait,
        max_other_load=a.max_other_load,
        noisy_retries=a.noisy_retries,
    )


def main() -> int:
    cfg = parse_args()
    command = " ".join([".venv/bin/python", "bench/pipeline.py", *sys.argv[1:]])

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    try:
        return asyncio.run(amain(cfg, command))
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        Proc.stop_all()  # last resort, should amain's own clean-up have been cut short


if __name__ == "__main__":
    sys.exit(main())
