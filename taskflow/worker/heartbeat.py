"""The worker's heartbeat: an expiring hash plus a registry score, never the event log."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskflow.outage import REDIS_AWAY, Outage
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from taskflow.worker.inflight import InFlight

log = structlog.get_logger()


def live_status(inflight: InFlight) -> str:
    """What the heartbeat says: PAUSED, IDLE (nothing held), BUSY (full) or ACTIVE."""
    if inflight.paused:
        return "PAUSED"
    load = inflight.slots_taken
    if load == 0:
        return "IDLE"
    return "BUSY" if load >= inflight.capacity else "ACTIVE"


async def beat(redis: Redis, keyspace: Keyspace, settings: Settings, worker_id: str, inflight: InFlight) -> None:
    now_ms = int(time.time() * 1000)
    key = keyspace.worker_heartbeat(worker_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(
            key,
            mapping={
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "capacity": inflight.capacity,
                "load": inflight.slots_taken,
                "status": live_status(inflight),
                "last_heartbeat_ms": now_ms,
            },
        )
        # Three missed beats and the hash is gone: it never outlives a dead worker for long.
        pipe.pexpire(key, int(settings.heartbeat_seconds * 3000))
        pipe.zadd(keyspace.worker_registry(keyspace.partition_of(worker_id)), {worker_id: now_ms})
        await pipe.execute()


async def beat_forever(
    redis: Redis, keyspace: Keyspace, settings: Settings, worker_id: str, inflight: InFlight, outage: Outage
) -> None:
    while True:
        try:
            await beat(redis, keyspace, settings, worker_id, inflight)
        except REDIS_AWAY as e:
            outage.failed(e, during="heartbeat")
        except RedisError as e:
            log.warning("heartbeat_failed", error=str(e))
        else:
            outage.succeeded()
        await asyncio.sleep(settings.heartbeat_seconds)


async def leave(redis: Redis, keyspace: Keyspace, worker_id: str) -> None:
    """A clean exit: not a death, so the coordinator must not bury it."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(keyspace.worker_heartbeat(worker_id), keyspace.worker_control(worker_id))
        pipe.zrem(keyspace.worker_registry(keyspace.partition_of(worker_id)), worker_id)
        await pipe.execute()
