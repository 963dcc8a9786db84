"""``taskflow streams top``: rates from two samples and the lag trend (pure, by table), and
the command against real Redis: snapshots as JSON lines or tables, --iterations, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import pytest
from redis.asyncio import Redis

from taskflow.ops.top import GroupCounters, Sample, StreamCounters, WorkerBeat, flows, lag_trend, snapshot
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import Keyspace
from tests.support.processes import env_for, taskflow
from tests.support.stack import submitted_and_read


def _sample(
    taken_ms: int,
    added: int,
    read: int | None,
    pending: int,
    lag: int | None = 0,
    oldest: str | None = None,
    workers: tuple[WorkerBeat, ...] = (),
) -> Sample:
    group = GroupCounters(name="workers", entries_read=read, pending=pending, lag=lag, oldest_pending_id=oldest)
    stream = StreamCounters(name="dispatch:0:high", entries_added=added, groups=(group,))
    return Sample(taken_ms=taken_ms, streams=(stream,), workers=workers)


@pytest.mark.parametrize(
    ("before", "after", "in_per_s", "out_per_s"),
    [
        # 2 s apart: 10 appended; 8 more read, of which 2 still pending -> 6 more acked.
        (_sample(1_000, 100, 90, 0), _sample(3_000, 110, 98, 2), 5.0, 3.0),
        # Entries acked that were pending before: out without anything read.
        (_sample(1_000, 100, 100, 10), _sample(2_000, 100, 100, 0), 0.0, 10.0),
        # Claimed from one consumer by another: pending unchanged, nothing went out.
        (_sample(1_000, 100, 100, 4), _sample(2_000, 100, 100, 4), 0.0, 0.0),
        # Redis cannot tell entries-read (after XDEL of an undelivered entry): out unknown.
        (_sample(1_000, 100, None, 0), _sample(2_000, 105, 100, 0), 5.0, None),
        # Counters went down: the stream was deleted and made again; no rate, not a negative one.
        (_sample(1_000, 100, 100, 0), _sample(2_000, 3, 3, 0), None, None),
        # Two samples at the same instant: no rate.
        (_sample(1_000, 100, 100, 0), _sample(1_000, 101, 100, 0), None, None),
    ],
)
def test_rates_in_and_out_come_from_two_samples(
    before: Sample, after: Sample, in_per_s: float | None, out_per_s: float | None
) -> None:
    (flow,) = flows(before, after)
    assert (flow.in_per_s, flow.out_per_s) == (in_per_s, out_per_s)


def test_a_stream_or_group_new_since_the_last_sample_has_no_rate_yet() -> None:
    empty = Sample(taken_ms=1_000, streams=(), workers=())
    (flow,) = flows(empty, _sample(2_000, 5, 5, 1, lag=0, oldest="1500-0"))
    assert (flow.in_per_s, flow.out_per_s, flow.pending, flow.oldest_pending_age_ms) == (None, None, 1, 500)


@pytest.mark.parametrize(
    ("lags", "trend"),
    [
        ([0, 5, 10], "rising"),
        ([10, 12, 3], "falling"),
        ([4, 9, 4], "flat"),
        ([None, 2, None, 7], "rising"),  # unknown lags are skipped
        ([5], None),
        ([None, None], None),
    ],
)
def test_the_lag_trend_is_where_the_lag_went_over_the_samples(lags: list[int | None], trend: str | None) -> None:
    assert lag_trend(lags) == trend


def test_a_snapshot_has_the_trend_over_the_window_and_the_most_silent_worker_first() -> None:
    def beat(worker_id: str, at_ms: int) -> WorkerBeat:
        return WorkerBeat(worker_id=worker_id, partition=0, last_heartbeat_ms=at_ms, status="IDLE", load=0, capacity=5)

    samples = [_sample(1_000 * i, 100, 100, 0, lag=i) for i in range(1, 4)]
    samples.append(_sample(4_000, 100, 100, 0, lag=9, workers=(beat("fresh", 3_900), beat("silent", 1_000))))
    snap = snapshot(samples)
    assert snap.streams[0].lag_trend == "rising" and snap.interval_s == 1.0
    assert [(w.worker_id, w.heartbeat_age_ms) for w in snap.workers] == [("silent", 3_000), ("fresh", 100)]


async def _a_worker_holding_two_of_three(redis: Redis, settings: Settings) -> None:
    ks = Keyspace.of(settings)
    await submitted_and_read(redis, settings, "w1", count=3, read=2)
    # The heartbeat a worker writes (worker/heartbeat.py), for a worker that read them.
    now_ms = int(time.time() * 1000)
    await redis.hset(
        ks.worker_heartbeat("w1"),
        mapping={"status": "ACTIVE", "load": 2, "capacity": 5, "last_heartbeat_ms": now_ms},
    )
    await redis.zadd(ks.worker_registry(0), {"w1": now_ms})


async def test_top_prints_one_json_snapshot_per_interval_and_stops_after_its_iterations(
    redis: Redis, settings: Settings
) -> None:
    await _a_worker_holding_two_of_three(redis, settings)
    args = ("streams", "top", "--interval", "0.2", "--iterations", "2", "--json")
    result = await asyncio.to_thread(taskflow, *args, env=env_for(settings))
    assert result.returncode == 0, result.stderr
    snapshots = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(snapshots) == 2
    flows_now = {(f["stream"], f["group"]): f for f in snapshots[-1]["streams"]}
    medium = flows_now[("dispatch:0:medium", "workers")]
    assert (medium["pending"], medium["lag"], medium["in_per_s"], medium["out_per_s"]) == (2, 1, 0.0, 0.0)
    assert medium["lag_trend"] == "flat" and medium["oldest_pending_age_ms"] >= 0
    (worker,) = snapshots[-1]["workers"]
    assert (worker["worker_id"], worker["status"], worker["load"], worker["capacity"]) == ("w1", "ACTIVE", 2, 5)
    assert worker["heartbeat_age_ms"] < 60_000


async def test_top_piped_prints_tables(redis: Redis, settings: Settings) -> None:
    await _a_worker_holding_two_of_three(redis, settings)
    args = ("streams", "top", "--interval", "0.1", "--iterations", "1")
    result = await asyncio.to_thread(taskflow, *args, env=env_for(settings))
    assert result.returncode == 0, result.stderr
    assert "dispatch:0:medium" in result.stdout and "ACTIVE" in result.stdout and "2/5" in result.stdout


async def test_ctrl_c_ends_top_with_status_0(redis: Redis, settings: Settings) -> None:
    await ensure_groups(redis, Keyspace.of(settings))
    top = subprocess.Popen(  # noqa: ASYNC220 - one process, read from a thread
        [sys.executable, "-m", "taskflow", "streams", "top", "--interval", "0.1", "--json"],
        env=env_for(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert top.stdout is not None
        first = await asyncio.wait_for(asyncio.to_thread(top.stdout.readline), 15)
        assert json.loads(first)["streams"]
        top.send_signal(signal.SIGINT)
        _, stderr = await asyncio.to_thread(top.communicate, timeout=15)
        assert top.returncode == 0 and "Traceback" not in stderr
    finally:
        if top.poll() is None:
            top.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("top", "--interval", "0"), "--interval"),
        (("top", "--iterations", "0"), "--iterations"),
    ],
)
def test_bad_input_to_top_is_one_clear_line(settings: Settings, args: tuple[str, ...], message: str) -> None:
    result = taskflow("streams", *args, env=env_for(settings))
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
