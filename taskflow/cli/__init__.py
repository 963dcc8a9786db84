"""The ``taskflow`` console script: one click group, one module per family of commands."""

from __future__ import annotations

import click

from taskflow.cli.dev import dev
from taskflow.cli.projections import projections
from taskflow.cli.reconcile import reconcile
from taskflow.cli.replay import replay
from taskflow.cli.services import coordinator, gateway, migrate, projector, worker
from taskflow.cli.streams import streams
from taskflow.cli.token import token


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taskflow")
def cli() -> None:
    """TaskFlow: event-sourced background tasks on Redis Streams."""


for command in (dev, migrate, gateway, worker, projector, coordinator, token, streams, replay, projections, reconcile):
    cli.add_command(command)


def main() -> None:
    cli()
