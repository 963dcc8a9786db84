"""Private Redis and PostgreSQL servers that a test may stall (SIGSTOP) and resume.

A stall, unlike a stop, keeps every socket open: connects still complete in the kernel's
backlog and writes are buffered, but nothing ever answers, which is what a paused VM, a
long GC or a swapped-out host looks like to a client. Only servers started here are
stalled: the suite's shared servers are never signalled.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis

from taskflow.dev.postgres_server import start_postgres
from taskflow.dev.redis_server import start_redis
from taskflow.schema import migrate


@dataclass(frozen=True)
class StallableServer:
    url: str
    # The processes to stop, read at stall time: for PostgreSQL the postmaster and every
    # process it has forked so far (backends come and go with the connections).
    pids: Callable[[], tuple[int, ...]]


@contextmanager
def stalled(server: StallableServer) -> Iterator[None]:
    """SIGSTOP the server's processes for the block; SIGCONT them whatever happens."""
    pids = server.pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@contextmanager
def private_redis() -> Iterator[StallableServer]:
    base = Path(tempfile.mkdtemp(prefix="taskflow-stall-redis-"))
    server = start_redis(base / "data")
    try:
        pid = int(redis.Redis.from_url(server.url).info("server")["process_id"])
        yield StallableServer(url=server.url, pids=lambda: (pid,))
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[StallableServer]:
    """A migrated ``taskflow`` database on a cluster of its own. The postmaster's pid is
    read from ``postmaster.pid``; its children (background processes and the backends
    of connections open now) from /proc. Backends forked later are not stopped, but a
    stopped postmaster forks none."""
    base = Path(tempfile.mkdtemp(prefix="taskflow-stall-postgres-"))
    # As root, postgres runs as an unprivileged account that must traverse the dir.
    base.chmod(0o711)
    data_dir = base / "pgdata"
    server = start_postgres(data_dir)
    try:
        asyncio.run(_create_database(server.url, "taskflow"))
        url = server.url.rpartition("/")[0] + "/taskflow"
        migrate(url)
        postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        yield StallableServer(url=url, pids=lambda: (postmaster, *_children_of(postmaster)))
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _children_of(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The comm field may hold spaces; the ppid is the second field after its ')'.
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent:
            children.append(int(entry.name))
    return children


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
