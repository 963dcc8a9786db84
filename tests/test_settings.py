"""Settings from the environment, and the CLI's one-line errors on bad configuration."""

from __future__ import annotations

import pytest

from taskflow.errors import ConfigurationError
from taskflow.settings import Settings, load_settings, require_jwt_secret
from tests.support.processes import env_for, taskflow

GOOD_SECRET = "s" * 32


def test_defaults_apply_when_nothing_is_set() -> None:
    settings = load_settings({})
    assert (settings.namespace, settings.partitions, settings.lease_seconds, settings.heartbeat_seconds) == (
        "tf",
        1,
        30.0,
        10.0,
    )


def test_values_are_converted_from_strings() -> None:
    settings = load_settings(
        {
            "TASKFLOW_PARTITIONS": "4",
            "TASKFLOW_LEASE_SECONDS": "2.5",
            "TASKFLOW_SMTP_STARTTLS": "true",
            "TASKFLOW_TASK_MODULES": "a.b, c.d",
            "TASKFLOW_NAMESPACE": "prod",
        }
    )
    assert (settings.partitions, settings.lease_ms, settings.smtp_starttls) == (4, 2500, True)
    assert settings.task_modules == ("a.b", "c.d") and settings.namespace == "prod"


@pytest.mark.parametrize(
    ("environ", "log_level", "otel_exporter"),
    [
        ({"TASKFLOW_LOG_LEVEL": "warning", "TASKFLOW_OTEL_EXPORTER": "CONSOLE"}, "WARNING", "console"),
        ({"TASKFLOW_LOG_LEVEL": "Debug", "TASKFLOW_OTEL_EXPORTER": "Otlp"}, "DEBUG", "otlp"),
        ({"TASKFLOW_LOG_LEVEL": " error ", "TASKFLOW_OTEL_EXPORTER": "none"}, "ERROR", "none"),
    ],
)
def test_a_level_or_choice_is_accepted_in_any_case(environ: dict[str, str], log_level: str, otel_exporter: str) -> None:
    settings = load_settings(environ)
    assert (settings.log_level, settings.otel_exporter) == (log_level, otel_exporter)


def test_a_lower_case_log_level_starts_a_command(settings: Settings) -> None:
    result = taskflow("token", "--sub", "u", env=env_for(settings, TASKFLOW_LOG_LEVEL="warning"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"TASKFLOW_REDIS_URL": "http://localhost"}, "TASKFLOW_REDIS_URL"),
        ({"TASKFLOW_REDIS_URL": "redis://host:notaport"}, "TASKFLOW_REDIS_URL"),
        ({"TASKFLOW_DATABASE_URL": "mysql://x/y"}, "TASKFLOW_DATABASE_URL"),
        ({"TASKFLOW_DATABASE_URL": "postgresql://"}, "TASKFLOW_DATABASE_URL"),
        ({"TASKFLOW_PARTITIONS": "many"}, "TASKFLOW_PARTITIONS"),
        ({"TASKFLOW_PARTITIONS": "0"}, "TASKFLOW_PARTITIONS"),
        ({"TASKFLOW_LEASE_SECONDS": "-1"}, "TASKFLOW_LEASE_SECONDS"),
        ({"TASKFLOW_STREAM_RETENTION_SECONDS": "-2"}, "TASKFLOW_STREAM_RETENTION_SECONDS"),
        ({"TASKFLOW_NAMESPACE": "a{b}"}, "TASKFLOW_NAMESPACE"),
        ({"TASKFLOW_LOG_LEVEL": "LOUD"}, "TASKFLOW_LOG_LEVEL"),
        ({"TASKFLOW_OTEL_EXPORTER": "zipkin"}, "TASKFLOW_OTEL_EXPORTER"),
        ({"TASKFLOW_SMTP_FROM": "News"}, "TASKFLOW_SMTP_FROM"),
        ({"TASKFLOW_SMTP_FROM": "News <jos\u00e9@example.com>"}, "TASKFLOW_SMTP_FROM"),  # would need SMTPUTF8
    ],
)
def test_a_bad_value_is_reported_under_its_variable_name(environ: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting)


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_jwt_secret_shorter_than_32_bytes_is_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError, match=r"TASKFLOW_JWT_SECRET.*32 bytes"):
        require_jwt_secret(Settings(jwt_secret=secret))


def _one_error_line(result: object, setting: str) -> None:
    assert result.returncode == 1, result  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith(f"error: {setting}")


@pytest.mark.parametrize("command", [("worker",), ("projector",), ("migrate",), ("gateway", "--port", "1")])
def test_commands_exit_1_with_one_line_when_redis_is_unreachable(settings: Settings, command: tuple[str, ...]) -> None:
    env = env_for(settings, TASKFLOW_REDIS_URL="redis://127.0.0.1:1/0")
    _one_error_line(taskflow(*command, env=env), "TASKFLOW_REDIS_URL")


def test_commands_exit_1_with_one_line_when_postgres_is_unreachable(settings: Settings) -> None:
    env = env_for(settings, TASKFLOW_DATABASE_URL="postgresql://postgres@127.0.0.1:1/x")
    _one_error_line(taskflow("projector", env=env), "TASKFLOW_DATABASE_URL")


def test_a_malformed_url_exits_1_naming_it(settings: Settings) -> None:
    _one_error_line(
        taskflow("worker", env=env_for(settings, TASKFLOW_REDIS_URL="localhost:6379")), "TASKFLOW_REDIS_URL"
    )


@pytest.mark.parametrize("command", [("gateway",), ("token", "--sub", "u")])
def test_a_short_jwt_secret_exits_1_outside_dev(settings: Settings, command: tuple[str, ...]) -> None:
    _one_error_line(taskflow(*command, env=env_for(settings, TASKFLOW_JWT_SECRET="tooshort")), "TASKFLOW_JWT_SECRET")


def test_an_unimportable_task_module_exits_1_naming_the_setting(settings: Settings) -> None:
    _one_error_line(taskflow("worker", "--tasks", "no.such.module", env=env_for(settings)), "TASKFLOW_TASK_MODULES")


def test_token_prints_a_jwt_the_gateway_accepts(settings: Settings) -> None:
    from taskflow.gateway.auth import TokenRules, verify_token

    env = env_for(settings, TASKFLOW_JWT_AUDIENCE="taskflow-api", TASKFLOW_JWT_ISSUER="https://id.example")
    result = taskflow("token", "--sub", "ops", "--role", "admin", env=env)
    assert result.returncode == 0, result.stderr
    rules = TokenRules(secret=settings.jwt_secret, audience="taskflow-api", issuer="https://id.example")
    principal = verify_token(rules, result.stdout.strip())
    assert (principal.sub, principal.is_admin) == ("ops", True)


def test_a_bad_cli_option_is_one_usage_error(settings: Settings) -> None:
    result = taskflow("worker", "--queues", "urgent", env=env_for(settings))
    assert result.returncode == 2 and "--queues" in result.stderr


def test_an_old_redis_is_refused_at_start_up() -> None:
    from taskflow.streams.connection import parse_version

    assert parse_version("6.2.14") < (7, 0) <= parse_version("7.0.15") <= parse_version("7.2.4")
