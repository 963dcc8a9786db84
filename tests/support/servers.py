"""Finding a Redis and a PostgreSQL for the suite, in the order the README documents:
TASKFLOW_TEST_*_URL, then the local default ports, then testcontainers when a Docker
engine answers, then the embedded servers ``taskflow dev`` uses."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from taskflow.dev.postgres_server import start_postgres
from taskflow.dev.redis_server import start_redis


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine", which is the question
        return False
    return True


def _local_redis() -> str | None:
    if not _port_open("127.0.0.1", 6379):
        return None
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping()
    except redis.RedisError:
        return None
    return "redis://127.0.0.1:6379/0"


@contextmanager
def redis_server() -> Iterator[str]:
    if (url := os.environ.get("TASKFLOW_TEST_REDIS_URL")) or (url := _local_redis()):
        yield url
    elif _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
    else:
        with _embedded(start_redis, "redis") as url:
            yield url


@contextmanager
def postgres_server() -> Iterator[str]:
    """An admin URL (database ``postgres``) on a server where the suite may create databases."""
    if url := os.environ.get("TASKFLOW_TEST_DATABASE_URL"):
        yield url
    elif _port_open("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        with _embedded(start_postgres, "postgres") as url:
            yield url


@contextmanager
def _embedded(start: Callable[..., object], name: str) -> Iterator[str]:
    base = Path(tempfile.mkdtemp(prefix=f"taskflow-test-{name}-"))
    base.chmod(0o711)  # an embedded postgres run as its own account must traverse it
    server = start(base / "data")
    try:
        yield server.url  # type: ignore[attr-defined]
    finally:
        server.stop()  # type: ignore[attr-defined]
