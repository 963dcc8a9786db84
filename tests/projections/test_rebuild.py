"""Rebuild, verify and swap (ARCHITECTURE invariant 10) against real Redis and PostgreSQL:
verify clean after real traffic, failing after a row is tampered with (listing it), clean
again after rebuild + swap, and the swap under concurrent reads and a running projector
with zero failed reads."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import asyncpg
from redis.asyncio import Redis

from taskflow.events import OperatorActed, TaskFailed, TaskSucceeded
from taskflow.projections.maintenance import NoShadow, rebuild_shadow, status, swap, verify
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.processes import env_for, taskflow
from tests.support.stack import all_events, running_projector, running_worker, submit, submitted
from tests.support.waiting import eventually

RETENTION = timedelta(days=30)


async def _traffic(redis: Redis, settings: Settings, pool: asyncpg.Pool, n: int) -> list[str]:
    """Tasks that succeed and tasks that fail for good (dead-lettered), all projected."""
    ids = []
    for i in range(n):
        event = submitted("echo", i=i) if i % 4 else submitted("fail", message=f"m{i}")
        await submit(redis, settings, event)
        ids.append(event.aggregate_id)
    async with running_worker(settings, redis):
        await eventually(lambda: _ended(redis, settings, n), timeout_s=30)
    await _projected(pool, redis, settings)
    return ids


async def _ended(redis: Redis, settings: Settings, n: int) -> bool:
    events = await all_events(redis, settings)
    done = sum(isinstance(e, TaskSucceeded) for e in events)
    failed_for_good = sum(isinstance(e, TaskFailed) and e.retry_at is None for e in events)
    return done + failed_for_good >= n


async def _projected(pool: asyncpg.Pool, redis: Redis, settings: Settings) -> None:
    total = len(await all_events(redis, settings))

    async def archived() -> bool:
        return int(await pool.fetchval("SELECT count(*) FROM event_archive")) == total

    await eventually(archived, timeout_s=30)


async def test_verify_is_clean_then_finds_a_tampered_row_then_clean_after_rebuild_and_swap(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    async with running_projector(settings, redis, pool):
        ids = await _traffic(redis, settings, pool, 12)
    assert int(await pool.fetchval("SELECT count(*) FROM dead_letter_queue")) > 0
    clean = await verify(pool, dead_letter_retention=RETENTION)
    assert clean.clean and clean.build.events == int(await pool.fetchval("SELECT count(*) FROM event_archive"))
    assert {t.table: t.live_rows for t in clean.tables}["tasks"] == 12
    # Verify leaves nothing behind.
    assert await pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'taskflow_verify'") == 0

    await pool.execute("UPDATE tasks SET status = 'CANCELLED' WHERE task_id = $1", ids[1])
    await pool.execute("DELETE FROM task_results WHERE task_id = $1", ids[2])
    tampered = await verify(pool, dead_letter_retention=RETENTION)
    assert not tampered.clean
    tables = {t.table: t for t in tampered.tables}
    (changed,) = tables["tasks"].shown
    assert changed.key == ids[1] and changed.kind == "changed"
    assert [(c.column, c.live, c.rebuilt) for c in changed.columns] == [("status", "'CANCELLED'", "'COMPLETED'")]
    assert [r.kind for r in tables["task_results"].shown] == ["missing"]
    # The CLI: exit 1 and the row named.
    cli = taskflow("projections", "verify", env=env_for(settings))
    assert (
        cli.returncode == 1 and ids[1] in cli.stdout and "status: live 'CANCELLED' != rebuilt 'COMPLETED'" in cli.stdout
    )

    built = await rebuild_shadow(pool, dead_letter_retention=RETENTION)
    assert built.rows["tasks"] == 12
    cli = taskflow("projections", "swap", "--reason", "tampered rows", "--operator", "olga", env=env_for(settings))
    assert cli.returncode == 0 and "swapped" in cli.stdout, cli.stderr
    (audit,) = [e for e in await all_events(redis, settings) if isinstance(e, OperatorActed)]
    assert (audit.action, audit.actor, audit.reason, audit.target_kind) == (
        "swap",
        "olga",
        "tampered rows",
        "projections",
    )
    assert audit.detail["checkpoint_0"]
    assert await pool.fetchval("SELECT status FROM tasks WHERE task_id = $1", ids[1]) == "COMPLETED"
    assert (await verify(pool, dead_letter_retention=RETENTION)).clean
    cli = taskflow("projections", "verify", "--json", env=env_for(settings))
    assert cli.returncode == 0 and json.loads(cli.stdout)["clean"] is True


async def test_swap_under_concurrent_reads_and_a_running_projector_fails_no_read(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    async with running_projector(settings, redis, pool):
        ids = await _traffic(redis, settings, pool, 8)
        await rebuild_shadow(pool, dead_letter_retention=RETENTION)
        # Events the shadow has not seen: the swap folds them in.
        late = [submitted("echo", late=i) for i in range(5)]
        for event in late:
            await submit(redis, settings, event)
        await _projected(pool, redis, settings)
        readers_pool = await asyncpg.create_pool(settings.database_url, min_size=4, max_size=4)
        reads = failures = 0
        stop = asyncio.Event()
        errors: list[BaseException] = []

        async def reader(i: int) -> None:
            nonlocal reads, failures
            while not stop.is_set():
                try:
                    # Prepared statements, as the gateway's: cached plans must survive the swap.
                    row = await readers_pool.fetchrow(
                        "SELECT t.status, r.result_data FROM tasks t LEFT JOIN task_results r USING (task_id) "
                        "WHERE t.task_id = $1",
                        ids[i % len(ids)],
                    )
                    assert row is not None
                    await readers_pool.fetchval("SELECT count(*) FROM task_executions")
                    reads += 1
                except Exception as e:  # noqa: BLE001 - counted: the test asserts there are none
                    failures += 1
                    errors.append(e)

        readers = [asyncio.create_task(reader(i)) for i in range(4)]
        await asyncio.sleep(0.3)
        before = reads
        report = await swap(pool, redis, Keyspace.of(settings))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*readers)
        await readers_pool.close()
        assert failures == 0, errors[:3]
        assert reads > before > 0
        assert report.caught_up_before + report.caught_up_locked >= 5
        # The projector goes on with the new tables: new work is projected.
        after = submitted("echo", after_swap=True)
        await submit(redis, settings, after)
        async with running_worker(settings, redis):

            async def completed() -> bool:
                found = await pool.fetchval("SELECT status FROM tasks WHERE task_id = $1", after.aggregate_id)
                return found == "COMPLETED"

            await eventually(completed, timeout_s=20)
        await _projected(pool, redis, settings)
    assert (await verify(pool, dead_letter_retention=RETENTION)).clean
    for event in late:
        assert await pool.fetchval("SELECT status FROM tasks WHERE task_id = $1", event.aggregate_id) is not None
    found = await status(pool, redis, Keyspace.of(settings))
    assert found.shadow is None and found.per_partition[0].fence >= max(report.fences.values())


async def test_swap_without_a_shadow_is_refused(redis: Redis, settings: Settings, pool: asyncpg.Pool) -> None:
    try:
        await swap(pool, redis, Keyspace.of(settings))
    except NoShadow as e:
        assert "projections rebuild" in str(e)
    else:
        raise AssertionError("swapped nothing in")
    cli = taskflow("projections", "swap", "--reason", "test", env=env_for(settings))
    assert (
        cli.returncode == 1
        and cli.stderr.strip() == "error: no shadow to swap in: run `taskflow projections rebuild` first"
    )


async def test_status_shows_checkpoints_lag_and_the_shadow(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    async with running_projector(settings, redis, pool):
        await _traffic(redis, settings, pool, 3)
    await submit(redis, settings, submitted("echo"))  # not projected: lag 1
    await rebuild_shadow(pool, dead_letter_retention=RETENTION)
    cli = taskflow("projections", "status", "--json", env=env_for(settings))
    assert cli.returncode == 0, cli.stderr
    found = json.loads(cli.stdout)
    (partition,) = found["per_partition"]
    assert partition["unprojected"] == 1 and partition["checkpoint"] != "0-0" and partition["fence"] >= 1
    assert found["shadow"]["events"] > 0 and found["shadow"]["behind_live"] == 0
    text = taskflow("projections", "status", env=env_for(settings))
    assert "partition 0: checkpoint" in text.stdout and "shadow: built" in text.stdout
