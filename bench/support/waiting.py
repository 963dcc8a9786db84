"""Waiting: polling a condition with a deadline, and the consumer groups' progress (has a
group read its first entry; has it read and acknowledged everything)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from support.errors import PhaseError
from support.processes import Proc

FIRST_READ_POLL_S = 0.005
DONE_POLL_S = 0.02


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, what: str, interval: float, deadline: float, procs: list[Proc]
) -> float:
    """Poll ``condition`` until true; the perf_counter time it was first seen true."""
    while True:
        if await condition():
            return time.perf_counter()
        for proc in procs:
            proc.check()
        if time.perf_counter() > deadline:
            raise PhaseError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def group_info(redis: Redis, stream: str, group: str) -> dict[str, Any]:
    for info in await redis.xinfo_groups(stream):
        if info["name"] == group:
            return dict(info)
    raise PhaseError(f"stream {stream} has no group {group}")


async def group_started(redis: Redis, stream: str, group: str) -> bool:
    """The group has read at least one entry."""
    return bool((await group_info(redis, stream, group))["last-delivered-id"] != "0-0")


async def group_done(redis: Redis, stream: str, group: str) -> bool:
    """The group has read up to the stream's last id and acknowledged all of it."""
    info = await group_info(redis, stream, group)
    last = (await redis.xinfo_stream(stream))["last-generated-id"]
    return info["last-delivered-id"] == last and int(info["pending"]) == 0


async def any_started(redis: Redis, streams: list[str], group: str) -> bool:
    for stream in streams:
        if await group_started(redis, stream, group):
            return True
    return False


async def all_done(redis: Redis, streams: list[str], group: str) -> bool:
    for stream in streams:
        if not await group_done(redis, stream, group):
            return False
    return True
