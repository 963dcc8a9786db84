"""The Lua scripts against a real Redis: invariants 2 (atomic append + dispatch, atomic
outcome + ack), 3 (idempotent intake), 5 (lease renewal and reclaim) and 7 (one hash slot)."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
from redis.asyncio import Redis
from redis.crc import key_slot

from taskflow.events import TaskSucceeded, encode, tag_of
from taskflow.settings import Settings
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.worker.scripts import WorkerScripts
from tests.support.stack import submit, submitted

LUA_SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "taskflow").rglob("lua/*.lua"))


def _scripts(redis: Redis, settings: Settings) -> WorkerScripts:
    return WorkerScripts(redis, Keyspace.of(settings))


async def _read_one(redis: Redis, settings: Settings, consumer: str) -> tuple[str, str]:
    stream = Keyspace.of(settings).dispatch(0, "medium")
    answer = await redis.xreadgroup(WORKERS_GROUP, consumer, {stream: ">"}, count=1)
    return stream, answer[0][1][0][0]


async def test_submit_appends_the_event_and_the_dispatch_entry_together(redis: Redis, settings: Settings) -> None:
    event = submitted("echo", a=1)
    event_id = await submit(redis, settings, event)
    ((stored_id, fields),) = await redis.xrange(Keyspace.of(settings).events(0))
    ((_, dispatch),) = await redis.xrange(Keyspace.of(settings).dispatch(0, "medium"))
    assert stored_id == event_id and fields["type"] == "task.submitted"
    assert dispatch["task_id"] == event.aggregate_id and dispatch["event_id"] == event_id


async def test_a_second_submit_of_the_same_task_returns_the_first_event_and_appends_nothing(
    redis: Redis, settings: Settings
) -> None:
    event = submitted("echo")
    first = await submit(redis, settings, event)
    again = await submit(redis, settings, event)
    assert again == first
    assert await redis.xlen(Keyspace.of(settings).events(0)) == 1
    assert await redis.xlen(Keyspace.of(settings).dispatch(0, "medium")) == 1


async def test_finish_by_the_owner_appends_the_outcome_and_acknowledges_in_one_step(
    redis: Redis, settings: Settings
) -> None:
    event = submitted("echo")
    await submit(redis, settings, event)
    stream, entry_id = await _read_one(redis, settings, "w1")
    outcome = TaskSucceeded(
        aggregate_id=event.aggregate_id,
        occurred_at=event.occurred_at,
        correlation_id="c",
        worker_id="w1",
        attempt=1,
        result=msgspec.Raw(b"null"),
        duration_ms=1,
    )
    new_id = await _scripts(redis, settings).owned_append(
        partition=0,
        dispatch_stream=stream,
        consumer="w1",
        entry_id=entry_id,
        event_type=tag_of(outcome),
        payload=encode(outcome),
        kind="finish",
        task_id=event.aggregate_id,
        final_state="succeeded",
    )
    assert new_id is not None
    assert (await redis.xpending(stream, WORKERS_GROUP))["pending"] == 0
    assert await redis.xlen(stream) == 0  # acknowledged entries are deleted
    assert await redis.xlen(Keyspace.of(settings).events(0)) == 2


async def test_a_worker_that_no_longer_owns_the_entry_writes_nothing(redis: Redis, settings: Settings) -> None:
    await submit(redis, settings, submitted("echo"))
    stream, entry_id = await _read_one(redis, settings, "zombie")
    # Another worker takes the entry over, as XAUTOCLAIM would after the lease.
    await redis.xclaim(stream, WORKERS_GROUP, "rescuer", 0, [entry_id])
    answer = await _scripts(redis, settings).owned_append(
        partition=0,
        dispatch_stream=stream,
        consumer="zombie",
        entry_id=entry_id,
        event_type="task.succeeded",
        payload=b"{}",
        kind="finish",
        task_id="t",
    )
    assert answer is None
    assert await redis.xlen(Keyspace.of(settings).events(0)) == 1
    pending = await redis.xpending_range(stream, WORKERS_GROUP, min="-", max="+", count=10)
    assert [p["consumer"] for p in pending] == ["rescuer"]


async def test_lease_renewal_resets_idle_time_only_for_entries_still_owned(redis: Redis, settings: Settings) -> None:
    await submit(redis, settings, submitted("echo"))
    await submit(redis, settings, submitted("echo"))
    stream = Keyspace.of(settings).dispatch(0, "medium")
    answer = await redis.xreadgroup(WORKERS_GROUP, "w1", {stream: ">"}, count=2)
    mine, stolen = (e[0] for e in answer[0][1])
    await redis.xclaim(stream, WORKERS_GROUP, "w2", 0, [stolen])
    await redis.xclaim(stream, WORKERS_GROUP, "w1", 0, [mine], idle=60_000, justid=True)
    kept = await _scripts(redis, settings).renew_lease(dispatch_stream=stream, consumer="w1", entry_ids=[mine, stolen])
    assert kept == {mine}
    pending = {
        p["message_id"]: p for p in await redis.xpending_range(stream, WORKERS_GROUP, min="-", max="+", count=10)
    }
    assert pending[mine]["time_since_delivered"] < 1_000
    assert pending[mine]["times_delivered"] == 1  # renewing is not a delivery
    assert pending[stolen]["consumer"] == "w2"


async def test_reclaim_takes_only_entries_idle_longer_than_the_lease(redis: Redis, settings: Settings) -> None:
    for _ in range(2):
        await submit(redis, settings, submitted("echo"))
    stream = Keyspace.of(settings).dispatch(0, "medium")
    answer = await redis.xreadgroup(WORKERS_GROUP, "dead", {stream: ">"}, count=2)
    stale, fresh = (e[0] for e in answer[0][1])
    await redis.xclaim(stream, WORKERS_GROUP, "dead", 0, [stale], idle=5_000, justid=True)
    await redis.hset(Keyspace.of(settings).starts(0), stale, 1)
    claimed = await _scripts(redis, settings).reclaim(
        dispatch_stream=stream,
        starts_hash=Keyspace.of(settings).starts(0),
        consumer="alive",
        min_idle_ms=2_000,
        count=10,
    )
    assert [c.entry_id for c in claimed] == [stale]
    assert claimed[0].previous_owner == "dead" and claimed[0].delivery_count == 2 and claimed[0].runs_begun == 1
    assert claimed[0].fields["task_id"]
    owners = {
        p["message_id"]: p["consumer"]
        for p in await redis.xpending_range(stream, WORKERS_GROUP, min="-", max="+", count=10)
    }
    assert owners == {stale: "alive", fresh: "dead"}


def test_keys_of_one_partition_share_one_cluster_slot() -> None:
    """Invariant 7: every key a script touches hashes to the partition's slot."""
    keyspace = Keyspace("tf", 8)
    for p in keyspace.all_partitions:
        slot = key_slot(keyspace.events(p).encode())
        same_slot = [
            *keyspace.dispatch_streams(p),
            keyspace.task_marker("t-1", p),
            keyspace.projector_lock(p),
            keyspace.starts(p),
            keyspace.held(p),
            keyspace.held_due(p),
            keyspace.waiting(p),
            keyspace.cron_due(p),
            keyspace.coordinator_leader(p),
        ]
        assert {key_slot(k.encode()) for k in same_slot} == {slot}


def test_lua_scripts_touch_only_keys_passed_in_keys() -> None:
    """Keys built inside Lua cannot be routed by a cluster; every redis.call names KEYS[n]."""
    assert LUA_SCRIPTS
    for script in LUA_SCRIPTS:
        text = script.read_text()
        for command, first in re.findall(r"redis\.call\('(\w+)',\s*([^,)]+)", text):
            if command == "XREADGROUP":  # the key follows STREAMS
                assert "'STREAMS', KEYS[" in text, script.name
            elif command in ("XINFO", "XGROUP"):  # the key follows the subcommand
                assert re.search(rf"redis\.call\('{command}', '\w+', KEYS\[", text), script.name
            else:
                assert first.startswith("KEYS["), f"{script.name}: {command} {first}"


def test_lua_scripts_write_only_the_task_states_python_knows() -> None:
    """The marker's state words are shared by Lua and Python (taskflow/streams/marker.py)."""
    from typing import get_args

    from taskflow.streams.marker import STATE_OF_STATUS, MarkerState

    known = set(get_args(MarkerState))
    written: set[str] = set()
    for script in LUA_SCRIPTS:
        text = script.read_text()
        written |= set(re.findall(r"'state', '(\w+)'", text)) | set(re.findall(r"set_state\('(\w+)'\)", text))
        written |= set(re.findall(r"state = '(\w+)'", text))
    assert written and written <= known, written - known
    assert set(STATE_OF_STATUS.values()) == known


def test_lua_scripts_take_every_event_type_from_python() -> None:
    """The wire tags live in taskflow.events alone: each XADD's 'type' is an ARGV the
    caller filled with tag_of(event), so renaming a tag cannot leave a Lua copy behind."""
    from taskflow.events import CURRENT_VERSION

    appends = 0
    for script in LUA_SCRIPTS:
        text = script.read_text()
        for value in re.findall(r"'type',\s*([^,)]+)", text):
            appends += 1
            assert value.startswith("ARGV["), f"{script.name}: 'type', {value}"
        assert not [tag for tag in CURRENT_VERSION if f"'{tag}'" in text], script.name
    assert appends >= 9  # every script that appends an event
