"""The REST client against a real gateway process, Redis, PostgreSQL and a worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from redis.asyncio import Redis

from taskflow.client import AsyncClient, Client, Invalid, NotFound
from taskflow.dev.ports import free_port
from taskflow.events import AnyEvent, TaskSubmitted
from taskflow.gateway.auth import issue_token
from taskflow.producer import ResultTimeout, TaskFailedError
from taskflow.settings import Settings
from taskflow.submission.schema import TaskSubmission
from taskflow.sync_bridge import SyncCallInLoop
from tests.support.processes import Service, env_for, services, start
from tests.support.stack import running_worker
from tests.support.waiting import eventually


@contextmanager
def gateway(settings: Settings, port: int | None = None) -> Iterator[tuple[str, Service]]:
    port = port or free_port()
    with services() as running:
        yield f"http://127.0.0.1:{port}", start(running, "gateway", "--port", str(port), env=env_for(settings))


async def _up(client: AsyncClient) -> None:
    async def answers() -> bool:
        try:
            await client.get("00000000-0000-4000-8000-000000000000")
        except NotFound:
            return True
        except Exception:  # noqa: BLE001 - not listening yet
            return False
        return True

    await eventually(answers, timeout_s=30)


async def test_submit_wait_and_a_raised_error_for_a_failing_task(settings: Settings, redis: Redis) -> None:
    token = issue_token(settings.jwt_secret, "alice")
    with gateway(settings) as (base, _):
        async with AsyncClient(base, token) as client:
            await _up(client)
            ok = await client.submit("echo", greeting="hi")
            bad = await client.submit("fail", message="boom", max_retries=0)
            batch = await client.submit_many([TaskSubmission(task_name="echo", kwargs={"i": i}) for i in range(3)])
            with pytest.raises(Invalid, match=r"kwargs\.seconds"):
                await client.submit("sleep", seconds="abc")
            with pytest.raises(ResultTimeout):
                await client.result(ok.task_id, timeout=0.3)  # no worker yet
            async with running_worker(settings, redis):
                assert await client.result(ok.task_id, timeout=20) == {"greeting": "hi"}
                with pytest.raises(TaskFailedError) as failed:
                    await client.result(bad.task_id, timeout=20)
                assert [await client.result(a.task_id, timeout=20) for a in batch] == [{"i": i} for i in range(3)]
            assert failed.value.error_type == "TaskFailedOnPurpose"
            history = await client.events(ok.task_id)
            assert isinstance(history[0], TaskSubmitted) and history[0].actor == "alice"
            retried = await client.retry(bad.task_id)
            assert retried.status == "PENDING"


async def test_stream_reconnects_with_last_event_id_and_never_repeats(settings: Settings, redis: Redis) -> None:
    token = issue_token(settings.jwt_secret, "root", "admin")
    port = free_port()
    seen: list[AnyEvent] = []
    with gateway(settings, port) as (base, first):
        async with AsyncClient(base, token) as client:
            await _up(client)
            await client.submit("echo", n=0)
            # From the beginning of the history: the feed opens on the first anext().
            stream = client.stream(types=["task.submitted"], last_event_id="0-0")
            seen.append(await asyncio.wait_for(anext(stream), 30))
            first.kill()  # the gateway dies under the open feed
            with gateway(settings, port):
                await _up(client)
                await client.submit("echo", n=1)
                await client.submit("echo", n=2)
                seen += [await asyncio.wait_for(anext(stream), 30) for _ in range(2)]
            await stream.aclose()
    numbers = [e.kwargs for e in seen if isinstance(e, TaskSubmitted)]
    assert [bytes(n) for n in numbers] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert len({e.event_id for e in seen}) == 3


async def test_the_blocking_client_works_from_sync_code(settings: Settings, redis: Redis) -> None:
    token = issue_token(settings.jwt_secret, "alice")
    with gateway(settings) as (base, _):

        def use() -> object:
            with Client(base, token) as client:
                accepted = client.submit("echo", x=1)
                return client.result(accepted.task_id, timeout=20)

        async with AsyncClient(base, token) as probe:
            await _up(probe)
        with pytest.raises(SyncCallInLoop):
            Client(base, token)
        async with running_worker(settings, redis):
            assert await asyncio.to_thread(use) == {"x": 1}
