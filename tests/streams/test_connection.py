"""Opening Redis: the hiredis command packer writes exactly what redis-py's own would."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from taskflow.settings import Settings
from taskflow.streams.connection import _HiredisPackedConnection, open_redis

COMMANDS = [
    ("SET", "key", "value"),
    ("CONFIG GET", "maxmemory"),  # a two-word command name
    ("EVALSHA", "abc", 2, "k1", "k2", b"\xff\x00", 1.5, -3),
    ("XADD", "stream", "*", "data", "é ü"),
    ("GET", ""),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_packs_the_same_bytes_as_redis_py(command: tuple[object, ...]) -> None:
    ours, theirs = _HiredisPackedConnection(), Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


def test_packs_a_pipeline_the_same_as_redis_py() -> None:
    ours, theirs = _HiredisPackedConnection(), Connection()
    assert b"".join(ours.pack_commands(COMMANDS)) == b"".join(theirs.pack_commands(COMMANDS))


async def test_the_client_talks_to_a_real_server_through_it(settings: Settings) -> None:
    client: Redis = await open_redis(settings)
    try:
        assert isinstance(await client.connection_pool.get_connection(), _HiredisPackedConnection)
        key = f"{settings.namespace}:packer"
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(key, "é", ex=60)
            pipe.get(key)
            assert await pipe.execute() == [True, "é"]
    finally:
        await client.aclose()
