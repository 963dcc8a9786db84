"""What a report states besides its figures: which machine, servers and code were measured;
and the statistics the figures are reduced to (median, nearest-rank percentile)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import statistics
from importlib import metadata
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from support.bench import Config
from support.snapshot import ROOT, SNAPSHOT


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def source_fingerprint(root: Path) -> str:
    """sha256 over taskflow/**/*.py and *.lua under ``root``: which code was measured."""
    digest = hashlib.sha256()
    package = root / "taskflow"
    for path in sorted([*package.rglob("*.py"), *package.rglob("*.lua")]):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def machine_info(redis_version: str, pg_version: str, extra_packages: tuple[str, ...] = ()) -> dict[str, str]:
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
            f"{d} {version(d)}"
            for d in ("taskflow", "taskiq", "taskiq-redis", "redis", "asyncpg", "uvloop", *extra_packages)
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
