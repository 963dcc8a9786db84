"""One benchmark's configuration and shared state: Config (the options) and Bench (the Redis
client, the PostgreSQL admin connection, the template database migrated by ``taskflow
migrate``, unique names, and the clean-up of every database and key it created)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from support.errors import PhaseError
from support.processes import Proc, exe
from support.snapshot import SNAPSHOT


async def unlink_matching(redis: Redis, fragment: str) -> int:
    """SCAN + UNLINK every key containing ``fragment`` (a unique run id)."""
    removed = 0
    batch: list[str] = []
    async for key in redis.scan_iter(match=f"*{fragment}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            removed += await redis.unlink(*batch)
            batch.clear()
    if batch:
        removed += await redis.unlink(*batch)
    return removed


def with_database(url: str, name: str) -> str:
    base, _, rest = url.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@dataclass
class Config:
    tasks: int
    runs: int
    concurrency: int
    redis_url: str
    pg_admin_url: str
    rest_requests: int
    rest_warmup: int
    phase_timeout: float
    submit_connections: int
    logdir: Path
    skip_rest: bool
    json_out: Path | None
    phases: list[str]
    profile_dir: Path | None
    partitions: int
    quiet_wait: float
    max_other_load: float
    noisy_retries: int


@dataclass
class Bench:
    cfg: Config
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    databases: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    template: str = ""
    redis: Redis | None = None

    def profile(self, proc: Proc) -> Proc | None:
        """With --profile, a py-spy sampling ``proc`` (and its children) until it exits."""
        if self.cfg.profile_dir is None:
            return None
        self.cfg.profile_dir.mkdir(parents=True, exist_ok=True)
        out = self.cfg.profile_dir / f"{proc.log_path.stem}.txt"
        argv = [
            exe("py-spy"),
            "record",
            "--pid",
            str(proc.popen.pid),
            "--subprocesses",
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
        ]
        return Proc(f"py-spy-{proc.name}", argv, dict(os.environ), self.cfg.logdir, profiler=True)

    def new_name(self, kind: str) -> str:
        """A unique, prefix-safe name: the key namespace / stream name of one phase."""
        name = f"bench{self.run_id}{kind}{uuid.uuid4().hex[:6]}"
        self.fragments.append(name)
        return name

    async def admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.cfg.pg_admin_url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def taskflow_env(self, namespace: str, database: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
        env.update(
            TASKFLOW_REDIS_URL=self.cfg.redis_url,
            TASKFLOW_DATABASE_URL=with_database(self.cfg.pg_admin_url, database),
            TASKFLOW_NAMESPACE=namespace,
            TASKFLOW_JWT_SECRET=secrets.token_hex(32),
            TASKFLOW_LOG_LEVEL="WARNING",
            TASKFLOW_PARTITIONS=str(self.cfg.partitions),
            PYTHONPATH=os.pathsep.join([str(SNAPSHOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        return env

    async def setup(self) -> None:
        self.redis = Redis.from_url(self.cfg.redis_url, decode_responses=True)
        self.template = f"bench_tpl_{self.run_id}"
        self.databases.append(self.template)
        await self.admin(f'CREATE DATABASE "{self.template}"')
        env = self.taskflow_env(self.new_name("tpl"), self.template)
        done = await asyncio.to_thread(
            subprocess.run,
            [exe("taskflow"), "migrate"],
            env=env,
            cwd=SNAPSHOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise PhaseError(f"taskflow migrate failed:\n{done.stdout}\n{done.stderr}")

    async def cleanup(self) -> None:
        Proc.stop_all()
        if self.redis is not None:
            for fragment in self.fragments:
                with contextlib.suppress(Exception):
                    await unlink_matching(self.redis, fragment)
            await self.redis.aclose()
            self.redis = None
        for name in reversed(self.databases):
            with contextlib.suppress(Exception):
                await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.clear()
