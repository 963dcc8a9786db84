"""What intake refuses before anything is appended: NUL characters, oversized arguments,
and arguments that do not convert to the task function's annotations."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from uuid import uuid4

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from taskflow.submission.intake import MAX_ARGUMENTS_BYTES
from tests.gateway.test_tasks_api import auth

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _refused(client: Client, settings: Settings, body: dict[str, object], **headers: str) -> str:
    response = await client.post("/api/v1/tasks", json=body, headers={**auth(settings), **headers})
    assert response.status_code == 422, response.text
    assert response.json()["status_code"] == 422
    detail: str = response.json()["detail"]
    return detail


async def _nothing_appended(redis: Redis, settings: Settings) -> bool:
    return await redis.xlen(Keyspace.of(settings).events(0)) == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"task_name": "sleep", "kwargs": {"seconds": "abc"}}, "kwargs.seconds: Expected `float`, got `str`"),
        ({"task_name": "sleep", "args": ["abc"]}, "args[0]: Expected `float`, got `str`"),
        ({"task_name": "typed_arguments", "args": ["1"]}, "args[0]: Expected `int`, got `str`"),
        ({"task_name": "typed_arguments", "args": [1, 2.5, "a", 3]}, "args[3]: Expected `str`, got `int`"),
        (
            {"task_name": "typed_arguments", "kwargs": {"count": 1, "tags": ["a", 2]}},
            "kwargs.tags[1]: Expected `str`, got `int`",
        ),
        (
            {"task_name": "typed_arguments", "kwargs": {"count": 1, "on": "May"}},
            "kwargs.on: Invalid RFC3339 encoded date",
        ),
        (
            {"task_name": "typed_arguments", "kwargs": {"count": 1, "other": "x"}},
            "kwargs.other: Expected `int`, got `str`",
        ),
        ({"task_name": "typed_arguments", "kwargs": {"count": True}}, "kwargs.count: Expected `int`, got `bool`"),
    ],
)
async def test_an_argument_of_the_wrong_type_is_a_422_naming_it(
    client: Client, settings: Settings, redis: Redis, body: dict[str, object], detail: str
) -> None:
    assert await _refused(client, settings, body) == detail
    assert await _nothing_appended(redis, settings)


@pytest.mark.parametrize(
    "body",
    [
        {"task_name": "sleep"},
        {"task_name": "sleep", "kwargs": {"seconds": 2}},
        {"task_name": "echo", "kwargs": {"a": {"b": [1, None, "c"]}}},
        {"task_name": "typed_arguments", "args": [1, 0.5, "a", "b"], "kwargs": {"extra_one": 1}},
        {"task_name": "typed_arguments", "kwargs": {"count": 1, "on": "2024-05-01", "tags": ["x"]}},
        {"task_name": "typed_arguments", "kwargs": {"count": 1, "loose": {"any": ["json"]}, "anything": [1, "a"]}},
    ],
)
async def test_arguments_that_fit_the_annotations_are_accepted(
    client: Client, settings: Settings, body: dict[str, object]
) -> None:
    response = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    assert response.status_code == 201, response.text


async def test_arguments_the_signature_cannot_bind_are_still_a_422(client: Client, settings: Settings) -> None:
    detail = await _refused(client, settings, {"task_name": "typed_arguments", "kwargs": {"ratio": 1.0}})
    assert detail == "kwargs: do not fit typed_arguments(): missing a required argument: 'count'"


@pytest.mark.parametrize(
    ("body", "headers", "path"),
    [
        ({"task_name": "echo", "kwargs": {"s": "a\u0000b"}}, {}, "kwargs.s"),
        ({"task_name": "echo", "kwargs": {"deep": [{"x": ["ok", "\u0000"]}]}}, {}, "kwargs.deep[0].x[1]"),
        ({"task_name": "echo", "kwargs": {"k\u0000": 1}}, {}, "kwargs.k\\u0000"),
        ({"task_name": "sleep", "args": ["\u0000"]}, {}, "args[0]"),
        ({"task_name": "ec\u0000ho"}, {}, "task_name"),
        ({"task_name": "echo", "cron": "* * * * *\u0000"}, {}, "cron"),
        ({"task_name": "echo"}, {"Idempotency-Key": "k\u00001"}, "Idempotency-Key"),
    ],
)
async def test_a_nul_character_anywhere_in_the_submission_is_a_422_naming_its_path(
    client: Client, settings: Settings, redis: Redis, body: dict[str, object], headers: dict[str, str], path: str
) -> None:
    detail = await _refused(client, settings, body, **headers)
    assert detail == f"{path}: contains a NUL character (\\u0000), which cannot be stored"
    assert await _nothing_appended(redis, settings)


async def test_an_escaped_backslash_before_u0000_is_no_nul(client: Client, settings: Settings) -> None:
    body = {"task_name": "echo", "kwargs": {"s": "\\u0000"}}
    assert (await client.post("/api/v1/tasks", json=body, headers=auth(settings))).status_code == 201


@pytest.mark.parametrize("field", ["args", "kwargs"])
async def test_arguments_over_the_size_limit_are_a_422_naming_the_limit(
    client: Client, settings: Settings, redis: Redis, field: str
) -> None:
    big = "x" * MAX_ARGUMENTS_BYTES
    body: dict[str, object] = {"task_name": "echo", field: [big] if field == "args" else {"s": big}}
    detail = await _refused(client, settings, body)
    assert detail.startswith(f"{field}: args and kwargs encode to ")
    assert detail.endswith(f"more than the limit of {MAX_ARGUMENTS_BYTES} bytes")
    assert await _nothing_appended(redis, settings)


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/tasks?task_name=a%00b", "task_name"),
        ("/api/v1/dlq?task_name=%00", "task_name"),
        ("/api/v1/tasks?cursor=x%00", "cursor"),
    ],
)
async def test_a_nul_in_a_query_parameter_is_a_422_naming_it_not_a_500(
    client: Client, settings: Settings, path: str, param: str
) -> None:
    response = await client.get(path, headers=auth(settings))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{param}: contains a NUL")


async def test_a_nul_in_any_json_body_is_a_422_naming_its_path(client: Client, settings: Settings) -> None:
    response = await client.post(
        "/api/v1/dlq/requeue", json={"task_name": "a\x00b"}, headers=auth(settings, "ops", "admin")
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("task_name: contains a NUL")


NUL_STREAM = "a\x00b"


def _cursor(*key: object) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(list(key))).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "admin"),
    [
        (f"/api/v1/tasks?cursor={_cursor('0001-01-01T00:00:00+01:00', str(uuid4()))}", False),
        (f"/api/v1/dlq?cursor={_cursor('0001-01-01T00:00:00+01:00', str(uuid4()))}", False),
        (f"/api/v1/tasks?cursor={_cursor('2026-01-01T00:00:00', str(uuid4()))}", False),  # no time zone
        (f"/api/v1/quarantine?cursor={_cursor('2026-01-01T00:00:00Z', NUL_STREAM, '1-0')}", True),
    ],
    ids=["year-0-in-utc", "dlq-year-0", "naive-time", "nul-inside"],
)
async def test_a_cursor_this_api_never_returned_is_a_422_not_a_500(
    client: Client, settings: Settings, path: str, admin: bool
) -> None:
    response = await client.get(path, headers=auth(settings, "ops", "admin") if admin else auth(settings))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("cursor:")
