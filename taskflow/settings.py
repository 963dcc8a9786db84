"""The one settings object, read once from the environment at start-up.

Nothing else reads ``os.environ``: processes call ``load_settings(os.environ)`` and pass the
result down; tests pass a plain dict.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit, urlunsplit

import msgspec

from taskflow.errors import ConfigurationError

ENV_PREFIX = "TASKFLOW_"
MIN_JWT_SECRET_BYTES = 32
MAX_JWT_LEEWAY_SECONDS = 300

OtelExporter = Literal["none", "console", "otlp"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# stream_retention_seconds that turns trimming off (the benchmark's baseline, or an operator
# who wants Redis to keep the whole log).
NEVER_TRIM = -1


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of every process; field ``x`` comes from ``TASKFLOW_X``."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/taskflow"
    jwt_secret: str = ""
    partitions: int = 1
    namespace: str = "tf"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    # The sender of campaign mail ("Name <address>"); its domain names the Message-IDs.
    smtp_from: str = "TaskFlow <noreply@localhost>"
    # How long one SMTP connect or command may take before the send counts as failed
    # (temporarily: it is retried).
    smtp_timeout_seconds: float = 30.0
    # Where the gateway is reached from outside: the base of unsubscribe links in mail.
    public_url: str = "http://127.0.0.1:8000"
    # DKIM signing of campaign mail: on when all three are set (ADR 0029).
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key_path: str = ""
    log_level: LogLevel = "INFO"
    otel_exporter: OtelExporter = "none"
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    # A worker silent this long is DEAD (WorkerDied) and its entries go to live workers.
    worker_dead_after_seconds: float = 30.0
    # An entry whose runs began this many times without an outcome is poison (invariant 5).
    max_deliveries: int = 5
    # Modules whose @task functions the gateway accepts and the workers run.
    task_modules: tuple[str, ...] = ("taskflow.tasks.builtin",)
    # How long a client's Idempotency-Key / chosen task id is remembered in Redis.
    idempotency_ttl_seconds: int = 86_400
    # Dead-letter entries older than this leave the DLQ table (their events stay archived).
    dlq_retention_days: float = 30.0
    # The longest the gateway waits on Redis or PostgreSQL for one call (connect included)
    # before answering 503 with Retry-After: a stalled dependency never hangs a request.
    dependency_timeout_seconds: float = 2.0
    # When set, tokens must carry this audience / issuer.
    jwt_audience: str = ""
    jwt_issuer: str = ""
    # Clock skew tolerated on exp / nbf / iat, in seconds (at most 300).
    jwt_leeway_seconds: float = 5.0
    # Browser origins allowed to call the API (the dashboard's), comma separated.
    cors_origins: tuple[str, ...] = ()
    # Requests per minute, shared by every gateway replica (0 turns a limit off).
    rate_limit_per_user: int = 100
    rate_limit_per_ip: int = 1000
    # Proxies whose X-Forwarded-For is believed (addresses or CIDR blocks, comma separated).
    trusted_proxies: tuple[str, ...] = ()
    # Live feeds (SSE): a comment this often keeps idle connections (and proxies) open.
    sse_keepalive_seconds: float = 15.0
    # Open feeds per user across every gateway replica; one more is a 429.
    sse_max_streams_per_user: int = 10
    # The coordinator trims the Redis streams (invariant 8) but keeps at least this many
    # seconds of entries for live feeds and `taskflow streams tail`; -1 never trims.
    stream_retention_seconds: float = 600.0
    # Set by `taskflow dev` only: allows a generated JWT secret.
    dev: bool = False

    @property
    def lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)


_SETTING_NAMES = {f"{ENV_PREFIX}{name.upper()}": name for name in Settings.__struct_fields__}
# Settings that name a level or a choice, each choice by its lower-case spelling: people
# write `warning` as often as `WARNING`, and nothing is gained by refusing either.
_CHOICES = {
    field: {choice.lower(): choice for choice in get_args(hint)}
    for field, hint in get_type_hints(Settings).items()
    if get_origin(hint) is Literal
}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build ``Settings`` from an environment mapping; raise ``ConfigurationError`` naming
    the first bad key."""
    raw: dict[str, object] = {}
    for env_name, field in _SETTING_NAMES.items():
        if env_name in environ:
            raw[field] = _raw_value(field, environ[env_name])
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigurationError(_env_name_in(str(e)), str(e)) from e
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Checks that need more than a type: URL shapes, ranges, secret length."""
    _check_url("TASKFLOW_REDIS_URL", settings.redis_url, {"redis", "rediss", "unix"})
    _check_url("TASKFLOW_DATABASE_URL", settings.database_url, {"postgresql", "postgres"})
    if settings.partitions < 1:
        raise ConfigurationError("TASKFLOW_PARTITIONS", "must be at least 1")
    if not settings.namespace or any(c in settings.namespace for c in "{}: "):
        raise ConfigurationError("TASKFLOW_NAMESPACE", "must be non-empty without '{', '}', ':' or spaces")
    if settings.lease_seconds <= 0 or settings.heartbeat_seconds <= 0:
        name = "TASKFLOW_LEASE_SECONDS" if settings.lease_seconds <= 0 else "TASKFLOW_HEARTBEAT_SECONDS"
        raise ConfigurationError(name, "must be positive")
    if settings.max_deliveries < 1:
        raise ConfigurationError("TASKFLOW_MAX_DELIVERIES", "must be at least 1")
    if settings.stream_retention_seconds < 0 and settings.stream_retention_seconds != NEVER_TRIM:
        raise ConfigurationError("TASKFLOW_STREAM_RETENTION_SECONDS", "must be 0 or more, or -1 (never trim)")
    _validate_gateway(settings)
    _validate_mail(settings)
    if settings.dependency_timeout_seconds <= 0:
        raise ConfigurationError("TASKFLOW_DEPENDENCY_TIMEOUT_SECONDS", "must be positive")


def _validate_gateway(settings: Settings) -> None:
    """The gateway's knobs: tokens, rate limits, proxies, feeds."""
    if not 0 <= settings.jwt_leeway_seconds <= MAX_JWT_LEEWAY_SECONDS:
        raise ConfigurationError("TASKFLOW_JWT_LEEWAY_SECONDS", f"must be between 0 and {MAX_JWT_LEEWAY_SECONDS}")
    if settings.rate_limit_per_user < 0 or settings.rate_limit_per_ip < 0:
        name = "TASKFLOW_RATE_LIMIT_PER_USER" if settings.rate_limit_per_user < 0 else "TASKFLOW_RATE_LIMIT_PER_IP"
        raise ConfigurationError(name, "must be 0 (off) or positive")
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as e:
            raise ConfigurationError("TASKFLOW_TRUSTED_PROXIES", f"{proxy!r} is not an address or CIDR block") from e
    if settings.sse_keepalive_seconds <= 0 or settings.sse_max_streams_per_user < 1:
        name = (
            "TASKFLOW_SSE_KEEPALIVE_SECONDS"
            if settings.sse_keepalive_seconds <= 0
            else "TASKFLOW_SSE_MAX_STREAMS_PER_USER"
        )
        raise ConfigurationError(name, "must be positive")


def _validate_mail(settings: Settings) -> None:
    """Campaign mail: a sender with an address, an absolute public URL, DKIM all or nothing."""
    _check_url("TASKFLOW_PUBLIC_URL", settings.public_url, {"http", "https"})
    _, address = parseaddr(settings.smtp_from)
    if "@" not in address or not address.isascii() or any(c in settings.smtp_from for c in "\r\n"):
        raise ConfigurationError(
            "TASKFLOW_SMTP_FROM", f"{settings.smtp_from!r} is not 'Name <address@domain>' with an ASCII address"
        )
    if settings.smtp_timeout_seconds <= 0:
        raise ConfigurationError("TASKFLOW_SMTP_TIMEOUT_SECONDS", "must be positive")
    dkim = {
        "TASKFLOW_DKIM_SELECTOR": settings.dkim_selector,
        "TASKFLOW_DKIM_DOMAIN": settings.dkim_domain,
        "TASKFLOW_DKIM_PRIVATE_KEY_PATH": settings.dkim_private_key_path,
    }
    missing = [name for name, value in dkim.items() if not value]
    if missing and len(missing) < len(dkim):
        raise ConfigurationError(missing[0], "DKIM signing needs the selector, the domain and the key path together")


def require_jwt_secret(settings: Settings) -> str:
    """The JWT secret, or a ``ConfigurationError`` when it is missing or too short.

    Only processes that sign or check tokens call this, so a worker runs without one.
    """
    secret = settings.jwt_secret
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        state = "is not set" if not secret else f"is {len(secret.encode())} bytes"
        raise ConfigurationError("TASKFLOW_JWT_SECRET", f"{state}; it must be at least {MIN_JWT_SECRET_BYTES} bytes")
    return secret


def _check_url(name: str, url: str, schemes: set[str]) -> None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric port
    except ValueError as e:
        raise ConfigurationError(name, f"malformed URL ({e})") from e
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(f"{s}://" for s in schemes))
        raise ConfigurationError(name, f"malformed URL {url!r}: scheme must be one of {allowed}")
    if parts.scheme != "unix" and not parts.hostname and "host=" not in parts.query:
        raise ConfigurationError(name, f"malformed URL {url!r}: no host")


def _raw_value(field: str, value: str) -> object:
    if field in ("task_modules", "cors_origins", "trusted_proxies"):
        return _split_list(value)
    if choices := _CHOICES.get(field):
        # An unknown choice stays as written, for msgspec to refuse listing the choices.
        return choices.get(value.strip().lower(), value)
    return value


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _env_name_in(message: str) -> str:
    # msgspec names the failing field as `$.field`; map it back to the variable users set.
    for env_name, field in _SETTING_NAMES.items():
        if f"$.{field}" in message:
            return env_name
    return "TASKFLOW_*"


# How long opening a connection to Redis or PostgreSQL may take before it counts as down.
CONNECT_TIMEOUT_SECONDS = 5.0


def redact(url: str) -> str:
    """The URL without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
