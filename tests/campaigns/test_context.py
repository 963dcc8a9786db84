"""The send context a worker builds on its first send: one per event loop, however many
sends start together, and a failed build is not kept."""

from __future__ import annotations

import asyncio
import os

import pytest

from taskflow.campaigns.context import SendContext
from taskflow.errors import ConfigurationError
from taskflow.settings import Settings
from tests.support.processes import env_for


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("TASKFLOW_")]:
        monkeypatch.delenv(name)
    for name, value in env_for(settings).items():
        if name.startswith("TASKFLOW_"):
            monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("environment")
async def test_sends_starting_together_share_one_context() -> None:
    contexts = await asyncio.gather(*(SendContext.for_this_loop() for _ in range(20)))
    try:
        assert len({id(c) for c in contexts}) == 1
        assert await SendContext.for_this_loop() is contexts[0]
    finally:
        await contexts[0].redis.aclose()


@pytest.mark.usefixtures("environment")
async def test_a_failed_build_fails_every_waiter_and_the_next_send_tries_again(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.delenv("TASKFLOW_JWT_SECRET")
    failures = await asyncio.gather(*(SendContext.for_this_loop() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(f, ConfigurationError) for f in failures), failures
    monkeypatch.setenv("TASKFLOW_JWT_SECRET", settings.jwt_secret)
    context = await SendContext.for_this_loop()
    try:
        assert context.keyspace.events(0).startswith(settings.namespace)
    finally:
        await context.redis.aclose()


@pytest.mark.usefixtures("environment")
async def test_a_send_cancelled_while_the_context_builds_leaves_it_to_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build = SendContext.build

    async def slow_build(settings: Settings) -> SendContext:
        await asyncio.sleep(0.2)  # long enough for the first send's own timeout
        return await build(settings)

    monkeypatch.setattr(SendContext, "build", slow_build)
    first = asyncio.ensure_future(asyncio.wait_for(SendContext.for_this_loop(), 0.05))
    await asyncio.sleep(0.01)  # the first send is building when the others come
    others = await asyncio.gather(SendContext.for_this_loop(), SendContext.for_this_loop(), return_exceptions=True)
    with pytest.raises(TimeoutError):
        await first
    assert all(isinstance(o, SendContext) for o in others) and others[0] is others[1], others
    await others[0].redis.aclose()
