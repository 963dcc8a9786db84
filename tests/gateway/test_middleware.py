"""The gateway's middleware, in the seed's order: CORS, request id, JWT (aud, iss, nbf,
algorithms, roles), rate limits shared by replicas, body limits, the access log."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from structlog.testing import capture_logs

from taskflow.dev.ports import free_port
from taskflow.events import TaskSubmitted
from taskflow.gateway.app import create_app
from taskflow.gateway.auth import issue_token
from taskflow.gateway.client_address import TrustedProxies, client_address
from taskflow.gateway.rate_limit import quota_of
from taskflow.settings import Settings
from tests.support.processes import env_for, services, start
from tests.support.stack import all_events
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]
DASHBOARD = "https://dashboard.example"


@pytest.fixture
def tuned(settings: Settings) -> Settings:
    return msgspec.structs.replace(
        settings, cors_origins=(DASHBOARD,), jwt_audience="taskflow-api", jwt_issuer="https://id.example"
    )


@pytest.fixture
async def client(tuned: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(tuned)) as test_client:
        yield test_client


def _token(settings: Settings, sub: str = "alice", role: str = "user", **claims: object) -> dict[str, str]:
    now = int(time.time())
    body: dict[str, object] = {
        "sub": sub,
        "role": role,
        "iat": now,
        "exp": now + 600,
        "aud": "taskflow-api",
        "iss": "https://id.example",
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return {"Authorization": f"Bearer {jwt.encode(body, settings.jwt_secret, algorithm='HS256')}"}


async def test_cors_answers_the_dashboard_origin_and_no_other(client: Client) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }

    allowed = await client.options("/api/v1/tasks", headers=preflight(DASHBOARD))
    assert allowed.headers["access-control-allow-origin"] == DASHBOARD
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert {"GET", "POST", "PUT", "DELETE"} <= set(allowed.headers["access-control-allow-methods"].split(", "))
    other = await client.options("/api/v1/tasks", headers=preflight("https://evil.example"))
    assert "access-control-allow-origin" not in other.headers
    simple = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_the_request_id_comes_back_is_logged_and_is_in_the_events(
    client: Client, tuned: Settings, redis: Redis
) -> None:
    with capture_logs() as logs:
        response = await client.post(
            "/api/v1/tasks", json={"task_name": "echo"}, headers={**_token(tuned), "X-Request-ID": "req-7f3a"}
        )
    assert response.status_code == 201 and response.headers["x-request-id"] == "req-7f3a"
    (line,) = [entry for entry in logs if entry["event"] == "request"]
    assert line["request_id"] == "req-7f3a"
    assert (line["method"], line["path"], line["status"], line["user"]) == ("POST", "/api/v1/tasks", 201, "alice")
    assert line["duration_ms"] > 0
    (submitted,) = [e for e in await all_events(redis, tuned) if isinstance(e, TaskSubmitted)]
    assert submitted.request_id == "req-7f3a"
    cancelled = await client.delete(
        f"/api/v1/tasks/{submitted.aggregate_id}", headers={**_token(tuned), "X-Request-ID": "req-cancel"}
    )
    assert cancelled.status_code == 200
    assert (await all_events(redis, tuned))[-1].request_id == "req-cancel"


def _unsigned(settings: Settings) -> dict[str, str]:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    claims = {
        "sub": "mallory",
        "role": "admin",
        "exp": int(time.time()) + 600,
        "aud": "taskflow-api",
        "iss": "https://id.example",
    }
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return {"Authorization": f"Bearer {header}.{payload}."}


def _tampered(settings: Settings) -> dict[str, str]:
    token = _token(settings)["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return {"Authorization": f"Bearer {header}.{forged}.{signature}"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        (lambda s: {}, "missing bearer token"),
        (lambda s: _token(s, exp=int(time.time()) - 60), "token expired"),
        (lambda s: _token(s, nbf=int(time.time()) + 600), "token not valid yet (nbf)"),
        (_unsigned, "invalid token"),
        (
            lambda s: {
                "Authorization": "Bearer " + jwt.encode({"sub": "x", "exp": 2**31}, "k" * 40, algorithm="HS256")
            },
            "invalid token",
        ),
        (lambda s: _token(s, aud="another-api"), "token is for another audience"),
        (lambda s: _token(s, aud=None), "invalid token"),
        (lambda s: _token(s, iss="https://elsewhere.example"), "token from another issuer"),
        (_tampered, "invalid token"),
    ],
    ids=["missing", "expired", "not-yet", "alg-none", "wrong-key", "wrong-aud", "no-aud", "wrong-iss", "tampered"],
)
async def test_bad_tokens_are_401(client: Client, tuned: Settings, headers: object, detail: str) -> None:
    response = await client.get("/api/v1/tasks", headers=headers(tuned))  # type: ignore[operator]
    assert response.status_code == 401 and response.json()["detail"] == detail


async def test_clock_skew_within_the_leeway_is_tolerated(client: Client, tuned: Settings) -> None:
    response = await client.get("/api/v1/tasks", headers=_token(tuned, nbf=int(time.time()) + 2))
    assert response.status_code == 200


async def test_analyst_and_ops_read_everything_and_change_nothing(client: Client, tuned: Settings) -> None:
    created = await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=_token(tuned, "alice"))
    task_id = created.json()["task_id"]
    for role in ("analyst", "ops"):
        reader = _token(tuned, "carol", role)
        assert (await client.get(f"/api/v1/tasks/{task_id}", headers=reader)).status_code == 200
        assert (await client.get("/api/v1/stats", headers=reader)).json()["queues"] is not None  # everyone's
        refused = await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=reader)
        assert refused.status_code == 403 and role in refused.json()["detail"]
        assert (await client.delete(f"/api/v1/tasks/{task_id}", headers=reader)).status_code == 403
        assert (await client.post("/api/v1/sse-tickets", headers=reader)).status_code == 201
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=_token(tuned, "bob"))).status_code == 404


async def test_a_20_mib_body_is_413_and_the_gateway_stays_healthy(client: Client, tuned: Settings) -> None:
    body = b'{"task_name": "echo", "kwargs": {"s": "' + b"x" * (20 * 1024 * 1024) + b'"}}'
    response = await client.post(
        "/api/v1/tasks", content=body, headers={**_token(tuned), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert (await client.get("/ready")).status_code == 200
    assert (await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=_token(tuned))).status_code == 201


async def test_the_101st_request_in_a_minute_is_429_across_two_gateways(settings: Settings) -> None:
    ports = [free_port(), free_port()]
    env = env_for(settings, TASKFLOW_RATE_LIMIT_PER_USER="100")
    headers = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'alice')}"}
    with services() as running:
        for port in ports:
            start(running, "gateway", "--port", str(port), env=env)
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) for port in ports]
        try:
            for http in clients:
                await eventually(lambda http=http: _ready(http), timeout_s=30)  # type: ignore[misc]
            answers = [await clients[i % 2].get("/api/v1/tasks") for i in range(100)]
            assert {a.status_code for a in answers} == {200}
            assert answers[0].headers["ratelimit-limit"] == "100" and answers[-1].headers["ratelimit-remaining"] == "0"
            refused = await clients[0].get("/api/v1/tasks")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert "100 requests per minute" in refused.json()["detail"]
            # Another user has their own budget; probes are never limited.
            other = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'bob')}"}
            assert (await clients[1].get("/api/v1/tasks", headers=other)).status_code == 200
            assert (await clients[1].get("/ready")).status_code == 200
            # The schema pages neither (served by handlers at other paths: /schema/{path}).
            assert (await clients[0].get("/schema/openapi.json")).status_code == 200
        finally:
            await asyncio.gather(*(http.aclose() for http in clients))


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/ready")).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "address"),
    [
        ("10.0.0.5", None, [], "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", [], "10.0.0.5"),  # an untrusted peer cannot choose its address
        ("10.0.0.5", "1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", ["10.0.0.0/8"], "1.2.3.4"),  # rightmost untrusted hop
        ("10.0.0.5", "garbage", ["10.0.0.0/8"], "10.0.0.5"),
        ("::1", "2001:db8::7", ["::1"], "2001:db8::7"),
        (None, "1.2.3.4", ["10.0.0.0/8"], "unknown"),
    ],
)
def test_the_client_address_believes_forwarded_for_only_from_trusted_proxies(
    peer: str | None, forwarded: str | None, proxies: list[str], address: str
) -> None:
    assert client_address(peer, forwarded, TrustedProxies(proxies)) == address


def test_the_tightest_limit_speaks_for_the_request() -> None:
    # user: 3 left of 100, reset in 58 s; address: 900 left of 1000.
    quota = quota_of([1, 0, 3, 58_000, 900, 6_000], [100, 1000])
    assert (quota.allowed, quota.limit, quota.remaining) == (True, 100, 3)
    assert quota.headers() == {"RateLimit-Limit": "100", "RateLimit-Remaining": "3", "RateLimit-Reset": "58"}
    refused = quota_of([0, 1_200, 0, 60_000, 899, 6_000], [100, 1000])
    assert refused.headers()["Retry-After"] == "2" and not refused.allowed
