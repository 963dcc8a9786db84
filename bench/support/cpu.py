"""CPU use: of a process group, of Redis, of PostgreSQL, of this script and of the whole
machine; the other load in a phase's window, and waiting for an idle machine."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stats() -> Iterator[tuple[int, str, int, float]]:
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


def group_cpu_seconds(pgid: int) -> float:
    return sum(cpu for _, _, pgrp, cpu in proc_stats() if pgrp == pgid)


def _postgres_cpu_seconds() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process, by pid (backends come and go)."""
    return {pid: cpu for pid, comm, _, cpu in proc_stats() if comm.startswith("postgres")}


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


def other_load(r: dict[str, Any]) -> float:
    """Cores used by processes outside the benchmark during the timed window(s)."""
    if "cpu_s" in r:
        return float(r["cpu_s"]["other"] / r["drain_s"])
    return float((r["worker_cpu_s"]["other"] + r["projector_cpu_s"]["other"]) / (r["worker_s"] + r["projector_s"]))
