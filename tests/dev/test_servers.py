"""Real start/stop/restart round trips of the embedded dev servers."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from taskflow.dev.ports import free_port
from taskflow.dev.postgres_server import start_postgres
from taskflow.dev.process import EmbeddedServerError, RunningServer
from taskflow.dev.redis_server import start_redis


@pytest.fixture
def postgres_dir() -> Iterator[Path]:
    # As root, postgres runs as the unprivileged "pgserver" account, which cannot
    # traverse pytest's 0700 tmp_path root; a fresh traversable dir in /tmp can.
    base = Path(tempfile.mkdtemp(prefix="taskflow-dev-servers-"))
    base.chmod(0o711)
    yield base / "pgdata"
    shutil.rmtree(base, ignore_errors=True)


def _redis_client(server: RunningServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


async def _pg_fetchval(url: str, query: str) -> object:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def _pg_execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def test_free_port_can_be_bound() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_redis_answers_ping_set_get(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    try:
        assert server.url.startswith("redis://127.0.0.1:")
        assert server.url.endswith("/0")
        with _redis_client(server) as client:
            assert client.ping()
            client.set("greeting", "hello")
            assert client.get("greeting") == "hello"
    finally:
        server.stop()
    assert (tmp_path / "redis" / "redis.log").exists()


def test_redis_uses_requested_port_and_stop_is_idempotent(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis(tmp_path / "redis", port=port)
    assert server.url == f"redis://127.0.0.1:{port}/0"
    server.stop()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_redis_data_survives_restart_via_aof(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    first = start_redis(data_dir)
    try:
        with _redis_client(first) as client:
            client.set("survivor", "still here")
    finally:
        first.stop()

    second = start_redis(data_dir)
    try:
        with _redis_client(second) as client:
            assert client.get("survivor") == "still here"
    finally:
        second.stop()


def test_redis_on_busy_port_raises_with_log_tail(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(EmbeddedServerError, match=r"redis\.log"):
            start_redis(tmp_path / "redis", port=port)


def test_postgres_is_version_16_over_tcp(postgres_dir: Path) -> None:
    server = start_postgres(postgres_dir)
    try:
        assert server.url.startswith("postgresql://postgres@127.0.0.1:")
        assert server.url.endswith("/postgres")
        version = asyncio.run(_pg_fetchval(server.url, "SELECT version()"))
        assert isinstance(version, str)
        assert version.startswith("PostgreSQL 16")
    finally:
        server.stop()
    server.stop()


def test_postgres_data_survives_restart(postgres_dir: Path) -> None:
    first = start_postgres(postgres_dir)
    try:
        asyncio.run(_pg_execute(first.url, "CREATE TABLE survivor (id int)"))
    finally:
        first.stop()

    second = start_postgres(postgres_dir)
    try:
        found = asyncio.run(_pg_fetchval(second.url, "SELECT to_regclass('survivor')::text"))
        assert found == "survivor"
    finally:
        second.stop()


def test_postgres_replaces_server_left_running_by_earlier_run(
    postgres_dir: Path,
) -> None:
    abandoned = start_postgres(postgres_dir)
    replacement = start_postgres(postgres_dir)
    try:
        assert replacement.url != abandoned.url
        version = asyncio.run(_pg_fetchval(replacement.url, "SELECT version()"))
        assert isinstance(version, str)
    finally:
        replacement.stop()
    abandoned.stop()
