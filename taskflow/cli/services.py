"""Long-running processes: gateway, worker, projector; and the migrations."""

from __future__ import annotations

import click

from taskflow.cli._runtime import check_connections, fail, on_stop_signals, run, settings_from_env
from taskflow.database import open_pool
from taskflow.errors import ConfigurationError
from taskflow.events import PRIORITIES, Priority
from taskflow.settings import Settings
from taskflow.streams.connection import open_redis
from taskflow.tasks import load_task_modules


@click.command()
def migrate() -> None:
    """alembic upgrade head against TASKFLOW_DATABASE_URL."""
    # Alembic, uvicorn and Litestar load only for the commands that use them: every
    # worker and projector start would otherwise pay ~0.6 s of imports.
    from taskflow.schema import migrate as run_migrations

    settings = settings_from_env()
    run(check_connections(settings))
    run_migrations(settings.database_url)
    click.echo("migrations: at head")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def gateway(host: str, port: int) -> None:
    """The Litestar REST gateway."""
    from taskflow.gateway.app import create_app
    from taskflow.gateway.serve import serve

    settings = settings_from_env()
    try:
        app = create_app(settings)
    except ConfigurationError as e:
        fail(str(e))
    run(check_connections(settings))
    serve(app, host, port)


def _parse_queues(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[Priority, ...]:
    names = [q.strip() for q in value.split(",") if q.strip()]
    unknown = [q for q in names if q not in PRIORITIES]
    if unknown or not names:
        raise click.BadParameter(f"must be a comma list of {', '.join(PRIORITIES)}")
    return tuple(q for q in PRIORITIES if q in names)


@click.command()
@click.option("--concurrency", default=5, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--tasks", "task_modules", multiple=True, help="Module with @task functions (repeatable).")
@click.option(
    "--queues", default=",".join(PRIORITIES), show_default=True, callback=_parse_queues, help="Priorities to serve."
)
def worker(concurrency: int, task_modules: tuple[str, ...], queues: tuple[Priority, ...]) -> None:
    """A worker: runs tasks from the dispatch streams."""
    settings = settings_from_env()
    served = queues
    try:
        load_task_modules((*settings.task_modules, *task_modules))
    except ConfigurationError as e:
        fail(str(e))
    run(_worker(settings, concurrency, served, task_modules))


async def _worker(
    settings: Settings, concurrency: int, queues: tuple[Priority, ...], task_modules: tuple[str, ...]
) -> None:
    from taskflow.worker.service import Worker

    redis = await open_redis(settings)
    try:
        service = Worker(settings, redis, concurrency=concurrency, queues=queues, task_modules=task_modules)
        on_stop_signals(service.stop)
        await service.run()
    finally:
        await redis.aclose()


@click.command()
def projector() -> None:
    """The projector: builds the PostgreSQL tables from the event streams."""
    run(_projector(settings_from_env()))


async def _projector(settings: Settings) -> None:
    from taskflow.projections.projector import Projector

    redis = await open_redis(settings)
    pool = await open_pool(settings, min_size=1, max_size=4)
    try:
        service = Projector(settings, redis, pool)
        on_stop_signals(service.stop)
        await service.run()
    finally:
        await pool.close()
        await redis.aclose()


@click.command()
def coordinator() -> None:
    """The coordinator: dispatches scheduled tasks and retries when due, trims the streams
    (one leader)."""
    run(_coordinator(settings_from_env()))


async def _coordinator(settings: Settings) -> None:
    from taskflow.coordinator.service import Coordinator

    redis = await open_redis(settings)
    # No connection at start (min_size 0): the coordinator leads and promotes without
    # PostgreSQL, which only its trimming of the event streams waits for. Each statement
    # is bounded, so a stalled PostgreSQL delays a trim pass, never the process.
    pool = await open_pool(
        settings, min_size=0, max_size=2, command_timeout_seconds=settings.dependency_timeout_seconds
    )
    try:
        service = Coordinator(settings, redis, pool)
        on_stop_signals(service.stop)
        await service.run()
    finally:
        await pool.close()
        await redis.aclose()
