"""Static checks of the container setup: compose.yaml, Dockerfile, .dockerignore.

No Docker engine is needed. compose.yaml is validated against the Compose Specification's
JSON schema wherever the suite runs (the schema docker-compose itself validates with,
vendored in tests/support/compose_spec.json), so the check never depends on what is
installed. The `config -q` checks additionally run a Compose CLI (Debian's
`docker-compose`, or the `docker compose` plugin) where there is one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# 48 bytes: comfortably above the 32-byte minimum the gateway enforces.
TEST_JWT_SECRET = "compose-config-test-secret-0123456789abcdefghijk"

APP_SERVICES = ("migrate", "gateway", "worker", "projector")
PG_URL_PREFIX = "postgresql://taskflow:taskflow@postgres:5432/"


# compose-spec (Apache-2.0), as shipped in docker-compose 1.29.2 (compose/config/).
COMPOSE_SPEC = Path(__file__).resolve().parent / "support" / "compose_spec.json"


def _spec_errors(document: object) -> list[str]:
    validator = jsonschema.Draft201909Validator(json.loads(COMPOSE_SPEC.read_text()))
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def test_compose_file_matches_the_compose_specification() -> None:
    assert _spec_errors(yaml.safe_load(COMPOSE_FILE.read_text())) == []


def test_the_specification_check_catches_a_broken_file() -> None:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    document["services"]["gateway"]["ports"] = 8000
    document["services"]["worker"]["restrat"] = "always"
    errors = _spec_errors(document)
    assert any(e.startswith("services/gateway/ports") for e in errors), errors
    assert any("restrat" in e for e in errors), errors


def _compose_command() -> list[str] | None:
    """The Compose CLI: `docker-compose` first, then `docker compose`; else None."""
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    docker = shutil.which("docker")
    if docker:
        try:
            probe = subprocess.run(
                [docker, "compose", "version"],
                check=False,
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


@pytest.fixture(scope="module")
def compose_cmd() -> list[str]:
    cmd = _compose_command()
    if cmd is None:
        pytest.skip(
            "no Compose CLI: neither `docker-compose` nor the `docker compose` "
            "plugin is installed (apt-get install docker-compose to run this check)"
        )
    return cmd


def _run_config(
    compose_cmd: list[str],
    env: dict[str, str],
    tmp_path: Path,
) -> subprocess.CompletedProcess[str]:
    # An empty --env-file keeps a developer's own `.env` out of the check.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    args = ["--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"]
    return subprocess.run(
        [*compose_cmd, *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _clean_env() -> dict[str, str]:
    dropped = ("TASKFLOW_", "COMPOSE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def test_compose_config_is_valid(
    compose_cmd: list[str],
    tmp_path: Path,
) -> None:
    env = _clean_env() | {"TASKFLOW_JWT_SECRET": TEST_JWT_SECRET}
    result = _run_config(compose_cmd, env, tmp_path)
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"`config -q` failed:\n{output}"


def test_compose_config_requires_jwt_secret(
    compose_cmd: list[str],
    tmp_path: Path,
) -> None:
    result = _run_config(compose_cmd, _clean_env(), tmp_path)
    assert result.returncode != 0, "the stack must not start without the JWT secret"
    assert "TASKFLOW_JWT_SECRET" in result.stdout + result.stderr


# --- structure -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def _as_words(command: str | list[str]) -> list[str]:
    return command.split() if isinstance(command, str) else [str(w) for w in command]


def _volume_source(mount: str | dict[str, Any]) -> str:
    return mount.split(":", 1)[0] if isinstance(mount, str) else str(mount["source"])


def _condition(service: dict[str, Any], dependency: str) -> str:
    return str(service["depends_on"][dependency]["condition"])


def test_no_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose Specification has no `version:`"


def test_app_services_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("redis", "postgres", *APP_SERVICES):
        assert name in services, f"service {name!r} missing"


def test_redis_enables_aof(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    words = _as_words(redis["command"])
    assert "--appendonly" in words
    assert words[words.index("--appendonly") + 1] == "yes"
    assert "--appendfsync" in words
    assert "redis-cli" in _as_words(redis["healthcheck"]["test"])


def test_postgres_is_16(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":", 1)[1].startswith("16")
    assert "pg_isready" in _as_words(postgres["healthcheck"]["test"])


def test_data_services_use_named_volumes(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name in ("redis", "postgres"):
        mounts = compose["services"][name]["volumes"]
        sources = {_volume_source(m) for m in mounts}
        assert sources & named, f"{name} does not use a named volume"


def test_migrate_runs_once_after_datastores(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert _as_words(migrate["command"])[-2:] == ["taskflow", "migrate"]
    assert str(migrate["restart"]) == "no"
    for dep in ("redis", "postgres"):
        assert migrate["depends_on"][dep]["condition"] == "service_healthy"


def test_gateway_waits_for_migrate(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert _condition(gateway, "migrate") == "service_completed_successfully"
    assert any("8000" in str(p) for p in gateway["ports"])
    assert "/ready" in " ".join(_as_words(gateway["healthcheck"]["test"]))


def test_worker_and_projector(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker, projector = services["worker"], services["projector"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["stop_grace_period"], "workers drain on SIGTERM: give them time"
    assert projector["deploy"]["replicas"] == 1
    for svc in (worker, projector):
        assert _condition(svc, "migrate") == "service_completed_successfully"


def test_app_services_share_image_and_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["TASKFLOW_REDIS_URL"] == "redis://redis:6379/0"
        assert env["TASKFLOW_DATABASE_URL"].startswith(PG_URL_PREFIX)
        # Required variable: no default secret may be baked into the file.
        assert env["TASKFLOW_JWT_SECRET"].startswith("${TASKFLOW_JWT_SECRET:?")


# --- Dockerfile / .dockerignore (plain text) ----------------------------------------


def test_dockerfile_basics() -> None:
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    assert lines[0].startswith("FROM python:3.11-slim")
    users = [line.split(None, 1)[1] for line in lines if line.startswith("USER ")]
    assert users, "the image must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0"), "image must run as non-root"
    assert any(line.startswith("HEALTHCHECK") for line in lines) and "/health" in text
    cmd = [line for line in lines if line.startswith("CMD ")][-1]
    assert '"taskflow", "gateway"' in cmd


def test_dockerignore_keeps_context_small_but_complete() -> None:
    entries = {
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    }
    for must in (".git", ".venv", ".env"):
        assert must in entries
    needed_in_image = ("README.md", "alembic.ini", "migrations", "pyproject.toml")
    for needed in (*needed_in_image, "taskflow"):
        assert needed not in entries, f"{needed} is needed inside the image"
