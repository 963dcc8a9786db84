"""``taskflow streams claim|ack|requeue --task ID --reason T`` against real Redis and
PostgreSQL, as ops run them: by task id, each an event naming the operator and the
reason, refused for a live owner, bad input one line."""

from __future__ import annotations

import json

import asyncpg
from redis.asyncio import Redis

from taskflow.events import OperatorActed, TaskCancelled, TaskQueued, TaskSucceeded
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from tests.support.processes import env_for, taskflow
from tests.support.stack import events_of, running_projector, running_worker, submit, submitted
from tests.support.waiting import eventually


def _act(settings: Settings, *args: str) -> dict[str, str]:
    result = taskflow("streams", *args, "--operator", "olga", "--json", env=env_for(settings))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


async def _held_by_a_dead_worker(redis: Redis, settings: Settings, n: int) -> list[str]:
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    ids = []
    for i in range(n):
        event = submitted("echo", i=i)
        await submit(redis, settings, event)
        ids.append(event.aggregate_id)
    await redis.xreadgroup(WORKERS_GROUP, "w-dead", {ks.dispatch(0, "medium"): ">"}, count=n)
    return ids


async def test_ack_requeue_and_claim_act_by_task_id_and_are_audited(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    ks = Keyspace.of(settings)
    stream = ks.dispatch(0, "medium")
    acked, requeued, claimed = await _held_by_a_dead_worker(redis, settings, 3)

    done = _act(settings, "ack", "--task", acked, "--reason", "poison input")
    assert done["previous_owner"] == "w-dead" and done["task_event_id"]
    assert await redis.hget(ks.task_marker(acked), "state") == "cancelled"
    history = await events_of(redis, settings, acked)
    assert isinstance(history[-2], TaskCancelled) and "poison input" in history[-2].reason
    audit = history[-1]
    assert isinstance(audit, OperatorActed)
    assert (audit.action, audit.actor, audit.reason, audit.via) == ("ack", "olga", "poison input", "cli")
    assert audit.detail == {"stream": "dispatch:0:medium", "entry_id": done["entry_id"], "owner": "w-dead"}

    again = _act(settings, "requeue", "--task", requeued, "--reason", "bug fixed")
    assert again["new_entry_id"] and again["new_entry_id"] != again["entry_id"]
    assert [e for e, _ in await redis.xrange(stream)][-1] == again["new_entry_id"]
    assert isinstance((await events_of(redis, settings, requeued))[-2], TaskQueued)

    handed = _act(settings, "claim", "--task", claimed, "--reason", "host lost")
    (entry,) = await redis.xpending_range(
        stream, WORKERS_GROUP, min=handed["entry_id"], max=handed["entry_id"], count=1
    )
    assert entry["consumer"] == "w-dead" and entry["time_since_delivered"] >= settings.lease_seconds * 1000
    # Nothing is pending for the acked and the requeued task any more; a worker runs the
    # requeued one and takes the claimed one over at once (not after a lease).
    pending = {e["message_id"] for e in await redis.xpending_range(stream, WORKERS_GROUP, min="-", max="+", count=10)}
    assert pending == {handed["entry_id"]}
    async with running_projector(settings, redis, pool), running_worker(settings, redis):

        async def both_ran() -> bool:
            ran = [await events_of(redis, settings, t) for t in (requeued, claimed)]
            return all(any(isinstance(e, TaskSucceeded) for e in h) for h in ran)

        await eventually(both_ran, timeout_s=20)

        async def audited() -> bool:
            return int(await pool.fetchval("SELECT count(*) FROM audit_log WHERE via = 'cli'")) == 3

        await eventually(audited)
    assert not any(isinstance(e, TaskSucceeded) for e in await events_of(redis, settings, acked))
    rows = await pool.fetch("SELECT action, actor, reason, target FROM audit_log ORDER BY occurred_at")
    assert [tuple(r) for r in rows] == [
        ("ack", "olga", "poison input", acked),
        ("requeue", "olga", "bug fixed", requeued),
        ("claim", "olga", "host lost", claimed),
    ]


async def test_a_live_owner_is_not_robbed_without_force(redis: Redis, settings: Settings) -> None:
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    event = submitted("echo")
    await submit(redis, settings, event)
    await redis.xreadgroup(WORKERS_GROUP, "w-live", {ks.dispatch(0, "medium"): ">"}, count=1)
    await redis.hset(ks.worker_heartbeat("w-live"), "load", 1)  # type: ignore[misc]
    refused = taskflow("streams", "ack", "--task", event.aggregate_id, "--reason", "x", env=env_for(settings))
    assert refused.returncode == 1
    assert "worker w-live is alive and holds task" in refused.stderr and "Traceback" not in refused.stderr
    forced = _act(settings, "ack", "--task", event.aggregate_id, "--reason", "x", "--force")
    assert forced["previous_owner"] == "w-live"


async def test_bad_input_is_one_line_and_a_non_zero_exit(redis: Redis, settings: Settings) -> None:
    await ensure_groups(redis, Keyspace.of(settings))
    env = env_for(settings)
    unknown = "0b6f6c1e-8c1d-4a4e-9f57-1d2f3a4b5c6d"
    for args, message in [
        (("claim", "--task", unknown, "--reason", "r"), f"task {unknown} holds no pending dispatch entry"),
        (("ack", "--task", "nope", "--reason", "r"), "'nope' is not a task id"),
        (("requeue", "--task", unknown), "Missing option '--reason'"),
        (("requeue", "--task", unknown, "--reason", " "), "--reason must say why"),
    ]:
        result = taskflow("streams", *args, env=env)
        assert result.returncode != 0, args
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
