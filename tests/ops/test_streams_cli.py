"""``taskflow streams`` against real Redis, as ops run it (a subprocess): the overview,
pending entries by task id, likely poison, the reclaim dry run, bad input."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from taskflow.ops.pending import Limits, PendingEntry, age_histogram, judge
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from tests.support.processes import env_for, taskflow
from tests.support.stack import submit, submitted, submitted_and_read


def _json(settings: Settings, *args: str, **env: str) -> object:
    result = taskflow("streams", *args, "--json", env=env_for(settings, **env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_the_overview_shows_every_stream_its_groups_pending_and_lag(redis: Redis, settings: Settings) -> None:
    await submitted_and_read(redis, settings, "w1", count=3, read=2)
    found = {s["name"]: s for s in _json(settings)}  # type: ignore[union-attr]
    assert set(found) == {"events:0", "dispatch:0:critical", "dispatch:0:high", "dispatch:0:medium", "dispatch:0:low"}
    medium = found["dispatch:0:medium"]
    assert medium["length"] == 3 and medium["memory_bytes"] > 0 and medium["first_id"] and medium["last_id"]
    (group,) = medium["groups"]
    assert (group["name"], group["consumers"], group["pending"], group["lag"]) == ("workers", 1, 2, 1)
    assert found["events:0"]["length"] == 3 and found["events:0"]["groups"][0]["name"] == "projector"
    table = taskflow("streams", env=env_for(settings))
    assert table.returncode == 0 and "dispatch:0:medium" in table.stdout and "workers" in table.stdout


async def test_pending_entries_come_by_task_id_with_poison_and_the_reclaim_dry_run(
    redis: Redis, settings: Settings
) -> None:
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    events = [submitted("echo") for _ in range(3)]
    for event in events:
        await submit(redis, settings, event)
    stream = ks.dispatch(0, "medium")
    answer = await redis.xreadgroup(WORKERS_GROUP, "w-dead", {stream: ">"}, count=3)
    entry_ids = [entry_id for entry_id, _ in answer[0][1]]
    await redis.hset(ks.starts(0), entry_ids[0], settings.max_deliveries - 1)  # one run short of poison
    env = {"TASKFLOW_LEASE_SECONDS": "0.5"}
    listed = _json(settings, "pending", **env)
    entries = {e["entry_id"]: e for e in listed["entries"]}  # type: ignore[index]
    assert {e["task_id"] for e in entries.values()} == {e.aggregate_id for e in events}
    assert {e["consumer"] for e in entries.values()} == {"w-dead"}
    assert entries[entry_ids[0]]["likely_poison"] and not entries[entry_ids[1]]["likely_poison"]
    assert entries[entry_ids[0]]["runs_begun"] == settings.max_deliveries - 1
    assert sum(listed["age_histogram"].values()) == 3  # type: ignore[index]
    await asyncio.sleep(0.6)
    dry = _json(settings, "pending", "--dry-run", **env)
    assert len(dry["entries"]) == 3 and all(e["reclaimable"] for e in dry["entries"])  # type: ignore[index]
    # A dry run changes nothing: the entries are still the dead worker's.
    assert (await redis.xpending(stream, WORKERS_GROUP))["consumers"] == [{"name": "w-dead", "pending": 3}]
    filtered = _json(settings, "pending", "--stream", "dispatch:0:high", **env)
    assert filtered["entries"] == []  # type: ignore[index]
    by_idle = _json(settings, "pending", "--min-idle", "3600", **env)
    assert by_idle["entries"] == []  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pending", "--stream", "dispatch:9:high"), "unknown stream 'dispatch:9:high'"),
        (("pending", "--min-idle", "-1"), "--min-idle"),
        (("nope",), "No such command 'nope'"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(
    settings: Settings, args: tuple[str, ...], message: str
) -> None:
    result = taskflow("streams", *args, env=env_for(settings))
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("idle_ms", "deliveries", "runs_begun", "expected"),
    [
        (10, 1, 0, (False, False)),
        (10, 9, 0, (False, False)),  # many deliveries to workers that died before starting it: innocent
        (10, 1, 4, (True, False)),  # one more begun run and it is dead-lettered (max 5)
        (2_000, 1, 0, (False, True)),  # idle past the 1 s lease: a reclaim takes it
        (10, 4, None, (True, False)),  # a projector entry: deliveries are all there is
    ],
)
def test_poison_and_reclaim_judgement(
    idle_ms: int, deliveries: int, runs_begun: int | None, expected: tuple[bool, bool]
) -> None:
    assert judge(idle_ms, deliveries, runs_begun, Limits(max_deliveries=5, lease_ms=1_000)) == expected


def test_the_age_histogram_buckets_by_idle_time() -> None:
    def entry(idle_ms: int) -> PendingEntry:
        return PendingEntry(
            stream="s",
            group="g",
            entry_id="1-0",
            task_id=None,
            consumer="c",
            idle_ms=idle_ms,
            deliveries=1,
            runs_begun=0,
            likely_poison=False,
            reclaimable=False,
        )

    histogram = dict(age_histogram([entry(5), entry(999), entry(1_000), entry(59_000), entry(7_200_000)]))
    assert histogram == {"< 1 s": 2, "< 10 s": 1, "< 1 min": 1, "< 10 min": 0, "< 1 h": 0, ">= 1 h": 1}


async def test_tail_shows_the_newest_events_and_follows_new_ones(redis: Redis, settings: Settings) -> None:
    import subprocess
    import sys

    await ensure_groups(redis, Keyspace.of(settings))
    events = [submitted("echo") for _ in range(5)]
    for event in events:
        await submit(redis, settings, event)
    shown = taskflow("streams", "tail", "--count", "3", "--json", env=env_for(settings))
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["aggregate_id"] for line in shown.stdout.splitlines()] == [
        e.aggregate_id for e in events[2:]
    ]
    text = taskflow("streams", "tail", "--count", "1", env=env_for(settings))
    assert "task.submitted" in text.stdout and events[-1].aggregate_id in text.stdout
    follower = subprocess.Popen(  # noqa: ASYNC220 - started once, read from a thread
        [sys.executable, "-m", "taskflow", "streams", "tail", "--count", "1", "--follow", "--json"],
        env=env_for(settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        first = await asyncio.to_thread(follower.stdout.readline)
        assert json.loads(first)["aggregate_id"] == events[-1].aggregate_id
        later = submitted("echo")
        await submit(redis, settings, later)
        arrived = await asyncio.wait_for(asyncio.to_thread(follower.stdout.readline), 15)
        assert json.loads(arrived)["aggregate_id"] == later.aggregate_id
    finally:
        follower.terminate()
        follower.wait(timeout=10)
