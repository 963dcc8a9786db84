"""``taskflow token``: a signed JWT for the configured secret."""

from __future__ import annotations

import click

from taskflow.cli._runtime import fail, settings_from_env
from taskflow.errors import ConfigurationError
from taskflow.settings import require_jwt_secret


@click.command()
@click.option("--sub", required=True, help="The subject (user id) the token speaks for.")
@click.option(
    "--role",
    type=click.Choice(["user", "admin", "analyst", "ops"]),
    default="user",
    show_default=True,
    help="admin: everything; analyst, ops: read everything, change nothing; user: own tasks.",
)
@click.option("--ttl", "ttl_seconds", type=click.IntRange(1, 10 * 365 * 86_400), default=3600, show_default=True)
def token(sub: str, role: str, ttl_seconds: int) -> None:
    """Print a bearer token."""
    from taskflow.gateway.auth import issue_token  # Litestar loads only for this command

    settings = settings_from_env()
    try:
        secret = require_jwt_secret(settings)
    except ConfigurationError as e:
        fail(str(e))
    if not sub.strip():
        fail("--sub must not be empty")
    click.echo(
        issue_token(
            secret,
            sub,
            role,  # type: ignore[arg-type]
            ttl_seconds,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    )
