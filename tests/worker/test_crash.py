"""Real crashes: SIGKILL a worker process mid-task; the work survives (invariant 5)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from redis.asyncio import Redis

from taskflow.events import TaskDeadLettered, TaskFailed, TaskReclaimed, TaskStarted, TaskSucceeded
from taskflow.settings import Settings
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from tests.support.processes import env_for, services, start
from tests.support.stack import all_events, submit, submitted
from tests.support.waiting import eventually

TERMINAL = (TaskSucceeded, TaskFailed, TaskDeadLettered)


async def _count(redis: Redis, settings: Settings, kind: type | tuple[type, ...]) -> int:
    return sum(isinstance(e, kind) for e in await all_events(redis, settings))


async def test_tasks_in_flight_on_a_killed_worker_complete_exactly_once_elsewhere(
    redis: Redis, settings: Settings
) -> None:
    tasks = [submitted("sleep", seconds=1.5) for _ in range(12)]
    for event in tasks:
        await submit(redis, settings, event)
    env = env_for(settings)
    with services() as running:
        victim = start(running, "worker", "--concurrency", "6", env=env)
        # Kill it while it holds six tasks mid-run.
        await eventually(lambda: _count(redis, settings, TaskStarted), timeout_s=30)
        await eventually(lambda: _at_least(redis, settings, TaskStarted, 6), timeout_s=30)
        victim.kill()
        in_flight_at_kill = await _count(redis, settings, TaskStarted) - await _count(redis, settings, TERMINAL)
        assert in_flight_at_kill > 0
        start(running, "worker", "--concurrency", "6", env=env)
        await eventually(lambda: _at_least(redis, settings, TERMINAL, len(tasks)), timeout_s=60)
        await asyncio.sleep(settings.lease_seconds)  # time for any duplicate to show up
    events = await all_events(redis, settings)
    terminal = Counter(e.aggregate_id for e in events if isinstance(e, TERMINAL))
    assert terminal == Counter({e.aggregate_id: 1 for e in tasks})
    assert all(isinstance(e, TaskSucceeded) for e in events if isinstance(e, TERMINAL))
    assert sum(isinstance(e, TaskReclaimed) for e in events) >= in_flight_at_kill
    for p in range(settings.partitions):
        for stream in Keyspace.of(settings).dispatch_streams(p):
            assert (await redis.xpending(stream, WORKERS_GROUP))["pending"] == 0


async def _at_least(redis: Redis, settings: Settings, kind: type | tuple[type, ...], n: int) -> bool:
    return await _count(redis, settings, kind) >= n


async def test_a_task_that_kills_every_worker_is_dead_lettered_while_others_succeed(
    redis: Redis, settings: Settings
) -> None:
    """The poison entry: each delivery SIGKILLs its worker; after max deliveries it is
    dead-lettered instead of looping, and the rest of the queue is served."""
    poison = submitted("die_hard")
    others = [submitted("echo", i=i) for i in range(1000)]
    await submit(redis, settings, poison)
    for event in others:
        await submit(redis, settings, event)
    env = env_for(settings)
    with services() as running:
        deadline = asyncio.get_running_loop().time() + 90
        while not await _dead_lettered(redis, settings, poison.aggregate_id):
            assert asyncio.get_running_loop().time() < deadline, "poison task never dead-lettered"
            if all(s.process.poll() is not None for s in running):
                start(running, "worker", "--concurrency", "4", env=env)  # a supervisor's restart
            await asyncio.sleep(0.1)
        await eventually(lambda: _at_least(redis, settings, TaskSucceeded, len(others)), timeout_s=120, interval_s=0.5)
    events = await all_events(redis, settings)
    (dead,) = [e for e in events if isinstance(e, TaskDeadLettered)]
    assert dead.aggregate_id == poison.aggregate_id and dead.attempts == settings.max_deliveries
    assert sum(isinstance(e, TaskSucceeded) for e in events) == len(others)


async def _dead_lettered(redis: Redis, settings: Settings, task_id: str) -> bool:
    return any(isinstance(e, TaskDeadLettered) and e.aggregate_id == task_id for e in await all_events(redis, settings))


def _task_processes(namespace: str) -> list[int]:
    """The fork server and its children serving workers of this namespace."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"taskflow.worker.child_process" in cmdline and f"TASKFLOW_NAMESPACE={namespace}\0".encode() in environ:
            found.append(int(entry.name))
    return found


async def test_the_children_of_a_sigkilled_worker_die_with_it(redis: Redis, settings: Settings) -> None:
    """Else a child runs its task on while the entry is reclaimed and run again elsewhere."""
    tasks = [submitted("blocking_sleep", seconds=60.0) for _ in range(3)]
    for event in tasks:
        await submit(redis, settings, event)
    with services() as running:
        victim = start(running, "worker", "--concurrency", "3", env=env_for(settings))
        await eventually(lambda: _at_least(redis, settings, TaskStarted, 3), timeout_s=30)
        # One child per running task (and the fork server).
        await eventually(lambda: asyncio.sleep(0, len(_task_processes(settings.namespace)) >= 3), timeout_s=10)
        victim.kill()
        await eventually(lambda: asyncio.sleep(0, _task_processes(settings.namespace) == []), timeout_s=5)
    assert await _count(redis, settings, TaskSucceeded) == 0
