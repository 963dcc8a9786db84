"""Unhandled errors: one JSON log line with the traceback and the request's context, and
the usual error shape for the client; every response carries its request id."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from tests.gateway.test_tasks_api import auth
from tests.support.processes import env_for

Client = AsyncTestClient  # type: ignore[type-arg]
REPO = Path(__file__).resolve().parents[2]

# Logging is configured once per process, as `taskflow gateway` does, so the app runs in a
# child process whose whole stderr is the evidence.
SCRIPT = """
import asyncio, json, os
from litestar import get
from litestar.testing import AsyncTestClient
from taskflow.gateway.app import create_app
from taskflow.gateway.auth import issue_token
from taskflow.settings import load_settings
from taskflow.telemetry import configure_logging

settings = load_settings(os.environ)
configure_logging(settings.log_level)
app = create_app(settings)


@get("/api/v1/boom")
async def boom() -> None:
    raise ZeroDivisionError("kaboom")


app.register(boom)


async def main() -> None:
    headers = {"Authorization": "Bearer " + issue_token(settings.jwt_secret, "alice"), "X-Request-ID": "req-42"}
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/api/v1/boom", headers=headers)
    answer = {"status": response.status_code, "body": response.json(), "request_id": response.headers.get("x-request-id")}
    print(json.dumps(answer))


asyncio.run(main())
"""


def test_an_unhandled_exception_is_logged_once_as_json_and_answered_without_a_traceback(settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env_for(settings), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer == {
        "status": 500,
        "body": {"status_code": 500, "detail": "Internal Server Error"},
        "request_id": "req-42",
    }
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]  # every line is JSON
    about_it = [line for line in lines if "kaboom" in json.dumps(line)]
    assert len(about_it) == 1, result.stderr
    (logged,) = about_it
    assert logged["level"] == "error" and logged["event"] == "unhandled_exception"
    assert (logged["method"], logged["path"], logged["request_id"]) == ("GET", "/api/v1/boom", "req-42")
    assert "Traceback" in logged["exception"] and "ZeroDivisionError: kaboom" in logged["exception"]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/tasks", 200),
        ("GET", "/health", 200),
        ("GET", "/api/v1/nowhere", 404),
        ("POST", "/api/v1/tasks", 415),
    ],
)
async def test_a_sane_request_id_comes_back_on_every_response(
    client: Client, settings: Settings, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers={**auth(settings), "X-Request-ID": "abc-123_x.Y"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "abc-123_x.Y"


async def test_an_unauthenticated_answer_carries_the_request_id_too(client: Client) -> None:
    response = await client.get("/api/v1/tasks", headers={"X-Request-ID": "r1"})
    assert response.status_code == 401 and response.headers["x-request-id"] == "r1"


@pytest.mark.parametrize("incoming", [None, b"", b"x" * 129, b"has space", b"caf\xe9", b"tab\there"])
async def test_a_missing_or_insane_request_id_is_replaced_by_a_fresh_one(
    client: Client, settings: Settings, incoming: bytes | None
) -> None:
    headers: dict[str, str | bytes] = {**auth(settings)}
    if incoming is not None:
        headers["X-Request-ID"] = incoming
    first = (await client.get("/api/v1/tasks", headers=headers)).headers["x-request-id"]
    second = (await client.get("/api/v1/tasks", headers=headers)).headers["x-request-id"]
    assert len(first) == 32 and int(first, 16) >= 0 and first != second
