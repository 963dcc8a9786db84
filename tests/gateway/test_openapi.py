"""The OpenAPI document renders, validates, and describes raw JSON fields as such."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient
from openapi_spec_validator import validate

from taskflow.gateway.app import create_app
from taskflow.settings import Settings

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def test_openapi_document_renders_and_is_valid(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert "/api/v1/tasks" in document["paths"]


async def test_raw_json_fields_are_described_as_any_json_value(client: Client) -> None:
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    task_view = next(schema for name, schema in schemas.items() if name.endswith("TaskView"))
    assert task_view["properties"]["kwargs"] == {"description": "any JSON value"}
    assert task_view["properties"]["result"] == {"description": "any JSON value"}
    submitted = next(schema for name, schema in schemas.items() if name.endswith("TaskSubmitted"))
    # A raw default is shown as the JSON value it stands for.
    assert submitted["properties"]["args"] == {"description": "any JSON value", "default": []}


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_schema_pages_answer_200(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
