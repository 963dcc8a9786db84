"""``taskflow streams quarantine [--retry]``: listing the quarantine, and retrying its
entries after a fix, with a projector running on real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
from redis.asyncio import Redis

from taskflow.events import DispatchRejected, encode
from taskflow.ops.quarantine import NotRetryable, Reappend, StillBroken, decide_retry
from taskflow.ops.scripts import OpsScripts
from taskflow.settings import Settings
from taskflow.streams.groups import append_event, ensure_groups
from taskflow.streams.keyspace import Keyspace
from tests.support.processes import env_for, taskflow
from tests.support.stack import running_projector, submit, submitted
from tests.support.waiting import eventually

LONG_NAME = "echo"  # longer than the column the test narrows it to


@pytest.mark.parametrize(
    ("source", "raw", "expected"),
    [
        ("projector", encode(submitted("echo")), Reappend(event_type="task.submitted")),
        ("projector", b"{not json at all", StillBroken),
        ("projector", b'{"type":"task.renamed"}', StillBroken),
        ("worker", b'{"task_id":"x"}', NotRetryable),
    ],
)
def test_a_retry_reappends_what_decodes_now_and_nothing_else(source: str, raw: bytes, expected: object) -> None:
    decision = decide_retry(source, "1-0", raw)
    assert decision == expected if isinstance(expected, Reappend) else type(decision) is expected


async def _quarantine_three(redis: Redis, settings: Settings, pool: asyncpg.Pool) -> tuple[str, str]:
    """A task PostgreSQL refuses while tasks.task_name is too narrow for it, an entry that
    is no JSON, and a dispatch entry a worker rejected: each quarantined by the projector.
    Returns the refused task's id and its entry id."""
    await pool.execute("ALTER TABLE tasks ALTER COLUMN task_name TYPE varchar(3)")
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    refused = submitted(LONG_NAME)
    refused_id = await submit(redis, settings, refused)
    await redis.xadd(ks.events(0), {"type": "task.submitted", "data": b"{not json at all"})
    rejected = DispatchRejected(
        aggregate_id="dispatch-1-0",
        occurred_at=datetime.now(UTC),
        correlation_id=uuid4().hex,
        stream=ks.dispatch(0, "medium"),
        entry_id="1-0",
        partition=0,
        fields={"nonsense": "1"},
        error="no task_id",
    )
    await append_event(redis, ks, rejected)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _count(pool, "SELECT count(*) FROM quarantined_entries", 3))
    return refused.aggregate_id, refused_id


async def _count(pool: asyncpg.Pool, sql: str, n: int, *args: object) -> bool:
    return int(await pool.fetchval(sql, *args)) == n


async def _cli(settings: Settings, *args: str) -> object:
    result = await asyncio.to_thread(taskflow, "streams", "quarantine", *args, "--json", env=env_for(settings))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_the_quarantine_lists_each_entry_with_its_source_and_error(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    task_id, entry_id = await _quarantine_three(redis, settings, pool)
    listed = await _cli(settings)
    by_id = {e["entry_id"]: e for e in listed}  # type: ignore[attr-defined]
    assert len(by_id) == 3
    refused = by_id[entry_id]
    assert (refused["source"], refused["event_type"], refused["aggregate_id"]) == (
        "projector",
        "task.submitted",
        task_id,
    )
    assert "refused by PostgreSQL" in refused["error"] and refused["quarantined_at"]
    assert {e["source"] for e in listed} == {"projector", "worker"}  # type: ignore[attr-defined]
    assert len(await _cli(settings, "--limit", "1")) == 1  # type: ignore[arg-type]
    table = await asyncio.to_thread(taskflow, "streams", "quarantine", env=env_for(settings))
    assert table.returncode == 0 and entry_id in table.stdout


async def test_after_a_fix_a_retry_projects_the_entry_and_leaves_the_rest_with_their_error(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    task_id, entry_id = await _quarantine_three(redis, settings, pool)
    await pool.execute("ALTER TABLE tasks ALTER COLUMN task_name TYPE varchar(255)")  # the fix
    async with running_projector(settings, redis, pool):
        answer = await _cli(settings, "--retry", "--all")
        outcomes = {o["entry_id"]: o for o in answer["outcomes"]}  # type: ignore[index]
        assert outcomes[entry_id]["outcome"] == "reappended"
        assert sorted(o["outcome"] for o in outcomes.values()) == ["not_retryable", "reappended", "still_failing"]
        new_id = outcomes[entry_id]["new_entry_id"]
        # Projected like any event: the task row, and archived under its new id.
        await eventually(lambda: _count(pool, "SELECT count(*) FROM tasks WHERE task_id = $1::uuid", 1, task_id))
        await eventually(lambda: _count(pool, "SELECT count(*) FROM event_archive WHERE event_id = $1", 1, new_id))
    remaining = await pool.fetch("SELECT source, error FROM quarantined_entries ORDER BY source")
    assert [r["source"] for r in remaining] == ["projector", "worker"]
    assert remaining[0]["error"].startswith("undecodable")
    still = next(o for o in outcomes.values() if o["outcome"] == "still_failing")
    assert still["error"]  # reported with why it still fails


async def test_a_retry_cut_off_after_its_append_never_appends_twice(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """A crash between the append and the row's delete: the next retry finds the entry
    appended already, appends nothing, and only deletes the row."""
    task_id, entry_id = await _quarantine_three(redis, settings, pool)
    await pool.execute("ALTER TABLE tasks ALTER COLUMN task_name TYPE varchar(255)")
    ks = Keyspace.of(settings)
    raw = bytes(await pool.fetchval("SELECT raw FROM quarantined_entries WHERE entry_id = $1", entry_id))
    first_id = await OpsScripts(redis, ks).reappend_quarantined(
        partition=0, entry_id=entry_id, event_type="task.submitted", payload=raw
    )  # ... and the process died here
    length = await redis.xlen(ks.events(0))
    answer = await _cli(settings, "--retry", "--entry", f"events:0:{entry_id}")
    (outcome,) = answer["outcomes"]  # type: ignore[index]
    assert (outcome["outcome"], outcome["new_entry_id"]) == ("reappended", first_id)
    assert await redis.xlen(ks.events(0)) == length
    assert await pool.fetchval("SELECT count(*) FROM quarantined_entries WHERE entry_id = $1", entry_id) == 0
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _count(pool, "SELECT count(*) FROM tasks WHERE task_id = $1::uuid", 1, task_id))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--retry",), "--retry needs --entry STREAM:ID or --all"),
        (("--all",), "--entry and --all go with --retry"),
        (("--retry", "--all", "--entry", "events:0:1-0"), "exclude each other"),
        (("--retry", "--entry", "events:0:nope"), "expected STREAM:ID"),
        (("--retry", "--entry", "events:0:1-0"), "not in the quarantine: "),
        (("--limit", "0"), "--limit"),
    ],
)
def test_bad_input_to_quarantine_is_one_clear_line(settings: Settings, args: tuple[str, ...], message: str) -> None:
    result = taskflow("streams", "quarantine", *args, env=env_for(settings))
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
