"""``taskflow streams consumers [--prune]``: which consumers may go (pure, by table), and
against real Redis that a consumer holding pending entries always stays."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from taskflow.ops.consumers import ConsumerInfo, list_consumers, prunable, prune
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from tests.support.processes import env_for, taskflow
from tests.support.stack import submit, submitted


def _consumer(name: str, pending: int, idle_ms: int) -> ConsumerInfo:
    return ConsumerInfo(
        stream="dispatch:0:medium",
        key="k",
        group="workers",
        name=name,
        pending=pending,
        idle_ms=idle_ms,
        inactive_ms=None,
    )


@pytest.mark.parametrize(
    ("pending", "idle_ms", "goes"),
    [
        (0, 60_001, True),  # empty and idle past the limit
        (0, 60_000, False),  # exactly at the limit: not longer than it
        (0, 5, False),  # empty but seen just now: a live worker waiting for work
        (3, 3_600_000, False),  # holds entries: never, however long idle
        (1, 60_001, False),
    ],
)
def test_only_empty_consumers_idle_past_the_limit_are_prunable(pending: int, idle_ms: int, goes: bool) -> None:
    consumer = _consumer("c", pending, idle_ms)
    assert prunable([consumer], min_idle_ms=60_000) == ([consumer] if goes else [])


async def _busy_and_empty(redis: Redis, settings: Settings) -> str:
    """Two consumers of dispatch:0:medium: ``busy`` holds an entry, ``empty`` holds none."""
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    await submit(redis, settings, submitted("echo"))
    stream = ks.dispatch(0, "medium")
    await redis.xreadgroup(WORKERS_GROUP, "busy", {stream: ">"}, count=1)
    await redis.xgroup_createconsumer(stream, WORKERS_GROUP, "empty")  # as a worker that never got work
    await asyncio.sleep(0.3)  # both idle past --min-idle 100
    return stream


async def _names(redis: Redis, stream: str) -> set[str]:
    return {c["name"] for c in await redis.xinfo_consumers(stream, WORKERS_GROUP)}


async def test_prune_removes_an_idle_empty_consumer_and_keeps_one_holding_entries(
    redis: Redis, settings: Settings
) -> None:
    stream = await _busy_and_empty(redis, settings)
    listed = await asyncio.to_thread(taskflow, "streams", "consumers", "--json", env=env_for(settings))
    found = {c["name"]: c for c in json.loads(listed.stdout)["consumers"]}
    assert (found["busy"]["pending"], found["empty"]["pending"]) == (1, 0) and found["empty"]["idle_ms"] >= 300
    args = ("streams", "consumers", "--prune", "--min-idle", "100", "--json")
    result = await asyncio.to_thread(taskflow, *args, env=env_for(settings))
    assert result.returncode == 0, result.stderr
    pruned = json.loads(result.stdout)["pruned"]
    assert [(p["consumer"]["name"], p["deleted"]) for p in pruned] == [("empty", True)]
    assert await _names(redis, stream) == {"busy"}
    assert (await redis.xpending(stream, WORKERS_GROUP))["pending"] == 1  # its entry still pending, still its


async def test_a_prune_dry_run_names_what_would_go_and_deletes_nothing(redis: Redis, settings: Settings) -> None:
    stream = await _busy_and_empty(redis, settings)
    args = ("streams", "consumers", "--prune", "--min-idle", "100", "--dry-run")
    result = await asyncio.to_thread(taskflow, *args, env=env_for(settings))
    assert result.returncode == 0, result.stderr
    assert "would go" in result.stdout and "1 consumer(s) would go" in result.stdout
    assert await _names(redis, stream) == {"busy", "empty"}


async def test_the_default_idle_limit_is_the_worker_dead_after_setting(redis: Redis, settings: Settings) -> None:
    stream = await _busy_and_empty(redis, settings)
    env = env_for(settings, TASKFLOW_WORKER_DEAD_AFTER_SECONDS="3600")
    result = await asyncio.to_thread(taskflow, "streams", "consumers", "--prune", "--json", env=env)
    assert json.loads(result.stdout)["pruned"] == [] and await _names(redis, stream) == {"busy", "empty"}


async def test_a_consumer_that_read_an_entry_since_it_was_listed_is_kept(redis: Redis, settings: Settings) -> None:
    """The script checks again in the step that deletes: DELCONSUMER would drop the entry."""
    stream = await _busy_and_empty(redis, settings)
    ks = Keyspace.of(settings)
    chosen = prunable(await list_consumers(redis, ks), min_idle_ms=100)
    assert [c.name for c in chosen] == ["empty"]
    await submit(redis, settings, submitted("echo"))
    await redis.xreadgroup(WORKERS_GROUP, "empty", {stream: ">"}, count=1)  # busy again
    (outcome,) = await prune(redis, ks, chosen, min_idle_ms=100)
    assert not outcome.deleted
    assert await _names(redis, stream) == {"busy", "empty"}
    assert (await redis.xpending(stream, WORKERS_GROUP))["pending"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("consumers", "--dry-run"), "--dry-run goes with --prune"),
        (("consumers", "--prune", "--min-idle", "-5"), "--min-idle"),
    ],
)
def test_bad_input_to_consumers_is_one_clear_line(settings: Settings, args: tuple[str, ...], message: str) -> None:
    result = taskflow("streams", *args, env=env_for(settings))
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
