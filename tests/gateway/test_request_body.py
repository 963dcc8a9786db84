"""What a JSON request body must be before it is decoded: its media type, size and depth."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from taskflow.gateway.app import create_app
from taskflow.gateway.request_body import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth_exceeds
from taskflow.settings import Settings
from tests.gateway.test_tasks_api import auth

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def _post(client: Client, settings: Settings, body: bytes, content_type: str | None, path: str = "/api/v1/tasks"):  # type: ignore[no-untyped-def]
    headers = auth(settings)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(path, content=body, headers=headers)


ECHO = b'{"task_name": "echo", "kwargs": {"a": 1}}'


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", None])
async def test_a_json_body_in_another_media_type_is_415(
    client: Client, settings: Settings, content_type: str | None
) -> None:
    response = await _post(client, settings, ECHO, content_type)
    assert response.status_code == 415
    assert response.json() == {
        "status_code": 415,
        "detail": "Content-Type must be application/json",
    }


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/vnd.taskflow+json",
    ],
)
async def test_json_media_types_are_accepted(client: Client, settings: Settings, content_type: str) -> None:
    assert (await _post(client, settings, ECHO, content_type)).status_code == 201


async def test_a_json_body_in_another_charset_is_415(client: Client, settings: Settings) -> None:
    response = await _post(client, settings, ECHO, "application/json; charset=latin-1")
    assert response.status_code == 415


async def test_other_body_routes_need_json_too(client: Client, settings: Settings) -> None:
    response = await _post(client, settings, b"{}", "text/plain", path="/api/v1/dlq/requeue")
    assert response.status_code == 415


async def test_routes_without_a_body_need_no_content_type(client: Client, settings: Settings) -> None:
    created = (await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=auth(settings))).json()
    cancelled = await client.delete(f"/api/v1/tasks/{created['task_id']}", headers=auth(settings))
    assert cancelled.status_code == 200
    retried = await client.post(f"/api/v1/tasks/{created['task_id']}/retry", headers=auth(settings))
    assert retried.status_code == 202
    # A client that labels an empty body text/plain is not sending one: also fine.
    paused = await client.post(
        "/api/v1/workers/00000000-0000-0000-0000-000000000000/pause",
        headers={**auth(settings, role="admin"), "Content-Type": "text/plain"},
    )
    assert paused.status_code == 404


def _nested(levels: int) -> bytes:
    # Written out by hand: json.dumps itself cannot encode 1,000 levels.
    return b'{"a": ' * levels + b"1" + b"}" * levels


def _echo_with(kwarg: bytes) -> bytes:
    return b'{"task_name": "echo", "kwargs": {"x": ' + kwarg + b"}}"


async def test_json_nested_too_deep_is_refused_before_decoding(client: Client, settings: Settings) -> None:
    body = _echo_with(_nested(1000))
    response = await _post(client, settings, body, "application/json")
    assert response.status_code == 422
    assert response.json()["detail"] == f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels"


async def test_json_nested_up_to_the_limit_is_accepted(client: Client, settings: Settings) -> None:
    # The body's own object and kwargs take two levels.
    body = _echo_with(_nested(MAX_JSON_DEPTH - 2))
    assert (await _post(client, settings, body, "application/json")).status_code == 201


async def test_a_body_over_the_size_limit_is_413(client: Client, settings: Settings) -> None:
    body = json.dumps({"task_name": "echo", "kwargs": {"s": "x" * MAX_BODY_BYTES}}).encode()
    response = await _post(client, settings, body, "application/json")
    assert response.status_code == 413
    assert response.json()["status_code"] == 413 and str(MAX_BODY_BYTES) in response.json()["detail"]


@pytest.mark.parametrize(
    ("document", "levels"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}], "c": {}}', 4),
        (b'["[[[[", "\\"[[[[", {"k]]": "{{{{"}]', 2),
        (b"[" * 40 + b"]" * 40, 40),
    ],
)
def test_depth_scan_ignores_brackets_inside_strings(document: bytes, levels: int) -> None:
    assert not json_depth_exceeds(document, levels)
    assert levels == 0 or json_depth_exceeds(document, levels - 1)
