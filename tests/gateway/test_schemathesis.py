"""The OpenAPI document is complete and true: schemathesis generates requests from it
(bounded examples) against a real gateway process and finds no 5xx and no response that
breaks its documented schema. Feeds (endless SSE responses) are left out: they have their
own tests (test_feeds.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from taskflow.dev.ports import free_port
from taskflow.gateway.auth import issue_token
from taskflow.settings import Settings
from tests.support.processes import env_for, services, start


@pytest.fixture
def gateway_url(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = env_for(settings, TASKFLOW_RATE_LIMIT_PER_USER="0", TASKFLOW_RATE_LIMIT_PER_IP="0")
    with services() as running:
        start(running, "gateway", "--port", str(port), env=env)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as http:
            for _ in range(300):
                try:
                    if http.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        yield base


@pytest.fixture
def api_schema(gateway_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{gateway_url}/schema/openapi.json")
    return schema.exclude(path_regex=r"/stream$")


@pytest.fixture
def admin(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'fuzz', 'admin')}"}


def test_the_api_does_what_its_schema_says(
    api_schema: schemathesis.BaseSchema, admin: dict[str, str], gateway_url: str
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20  # every route is in the document
    failures: list[str] = []
    calls: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: schemathesis.Case) -> None:
            calls.append(case.operation.label)
            case.call_and_validate(
                base_url=gateway_url, headers=admin, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            exercise()
        except Exception as e:  # noqa: BLE001 - collected, so one run reports every operation that fails
            failures.append(f"{operation.label}: {e}")
    assert not failures, "\n\n".join(failures)
    assert len(set(calls)) == len(operations) and len(calls) > 5 * len(operations)  # really exercised
