"""Redis calls of one turn of the event loop share one pipeline (real Redis): each still
gets its own replies or its own error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

from taskflow.dev.ports import free_port
from taskflow.settings import Settings
from taskflow.streams.coalesced import CoalescedCalls, answers_per_call


class CountedRedis(Redis):
    """Counts the pipelines sent (the round trips): what the coalescing saves."""

    pipelines = 0

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        CountedRedis.pipelines += 1
        return super().pipeline(transaction, shard_hint)


@pytest.fixture
async def counted(settings: Settings) -> Any:
    client = CountedRedis.from_url(settings.redis_url, decode_responses=True)
    CountedRedis.pipelines = 0
    yield client
    await client.aclose()


async def test_calls_of_one_turn_share_a_round_trip_and_get_their_own_replies(
    counted: CountedRedis, settings: Settings
) -> None:
    calls = CoalescedCalls(counted)
    key = f"{settings.namespace}:coalesced"
    replies = await asyncio.gather(
        *(calls.execute(("SADD", key, f"m{i}"), ("SISMEMBER", key, f"m{i}"), ("SCARD", key)) for i in range(50))
    )
    assert CountedRedis.pipelines == 1
    # In order, as 50 round trips would have run them; SISMEMBER's reply as redis-py gives it.
    assert replies == [[1, True, i + 1] for i in range(50)]
    await calls.execute(("DEL", key))
    assert CountedRedis.pipelines == 2


async def test_an_error_is_raised_only_to_the_call_whose_command_failed(
    counted: CountedRedis, settings: Settings
) -> None:
    calls = CoalescedCalls(counted)
    text = f"{settings.namespace}:text"
    await counted.set(text, "not a set")
    good, bad, after = await asyncio.gather(
        calls.execute(("GET", text)),
        calls.execute(("EXISTS", text), ("SISMEMBER", text, "x")),
        calls.execute(("STRLEN", text)),
        return_exceptions=True,
    )
    assert good == ["not a set"] and after == [9]
    assert isinstance(bad, ResponseError) and "WRONGTYPE" in str(bad)
    await counted.delete(text)


async def test_a_caller_cancelled_before_the_round_trip_sends_nothing(
    counted: CountedRedis, settings: Settings
) -> None:
    calls = CoalescedCalls(counted)
    key = f"{settings.namespace}:cancelled"
    first = asyncio.ensure_future(calls.execute(("INCR", key)))
    second = asyncio.ensure_future(calls.execute(("INCR", key)))
    await asyncio.sleep(0)  # both queued, not yet sent
    first.cancel()
    assert await second == [1]  # the cancelled one's INCR never ran
    assert first.cancelled()
    await counted.delete(key)


async def test_a_command_that_cannot_be_encoded_fails_only_its_own_call(
    counted: CountedRedis, settings: Settings
) -> None:
    calls = CoalescedCalls(counted)
    key = f"{settings.namespace}:encoded"
    good, bad = await asyncio.gather(
        calls.execute(("SET", key, "1")), calls.execute(("SET", key + ":x", {"a": 1})), return_exceptions=True
    )
    assert good == [True] and isinstance(bad, DataError)
    assert await counted.get(key) == "1"
    await counted.delete(key)


async def test_a_broken_round_trip_fails_every_call_of_it() -> None:
    gone = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    calls = CoalescedCalls(gone)
    answers = await asyncio.gather(calls.execute(("PING",)), calls.execute(("PING",)), return_exceptions=True)
    assert all(isinstance(a, RedisConnectionError) for a in answers), answers
    await gone.aclose()


@pytest.mark.parametrize(
    ("sizes", "replies", "answers"),
    [
        ([1, 2], ["a", "b", "c"], [["a"], ["b", "c"]]),
        ([2, 1], [ValueError("x"), "b", "c"], ["x", ["c"]]),
        ([1, 2], ["a", "b", KeyError("y")], [["a"], "'y'"]),
        ([], [], []),
    ],
)
def test_answers_per_call(sizes: list[int], replies: list[Any], answers: list[Any]) -> None:
    found = answers_per_call(sizes, replies)
    assert [str(a) if isinstance(a, BaseException) else a for a in found] == answers
