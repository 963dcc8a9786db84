"""``taskflow dev``."""

from __future__ import annotations

import sys

import click

from taskflow.cli._runtime import fail
from taskflow.dev.process import EmbeddedServerError
from taskflow.errors import ConfigurationError


@click.command()
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(0, 64))
@click.option("--concurrency", default=5, show_default=True, type=click.IntRange(1, 10_000))
def dev(port: int, workers: int, concurrency: int) -> None:
    """The whole stack on this machine (embedded Redis/PostgreSQL where no URL is set)."""
    from taskflow.dev.stack import run_dev

    try:
        code = run_dev(port, workers, concurrency)
    except (ConfigurationError, EmbeddedServerError) as e:
        fail(str(e))
    sys.exit(code)
