"""Redis commands asked for in the same turn of the event loop, sent together: one
pipeline (one write, one read) for all of them instead of a round trip each, what
ioredis calls auto-pipelining. A sending worker runs dozens of sends at once, and each
asks for its own small script calls; on a machine where every socket write costs tens of
microseconds, those round trips were a fifth of the worker's CPU (ADR 0032).

Each call still gets exactly its own replies, in order, or its own error; a command of one
call never waits on another call's reply, and the calls run on the server one after the
other, as separate round trips would (not atomically together: use a script for that).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import DataError

Command = tuple[Any, ...]  # as for ``execute_command``: ("SISMEMBER", key, member)


class CoalescedCalls:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queued: list[tuple[tuple[Command, ...], asyncio.Future[list[Any]]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def execute(self, *commands: Command) -> list[Any]:
        """The commands' replies, in order, sent with every other call of this turn of
        the loop. Raises the first error among this call's own replies (say
        ``NoScriptError``), or what broke the round trip (say ``ConnectionError``)."""
        loop = asyncio.get_running_loop()
        if not self._queued:
            # Runs after every callback already ready: all the calls of this turn.
            loop.call_soon(self._send_queued)
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queued.append((commands, future))
        return await future

    def _send_queued(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._in_flight.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, queued: list[tuple[tuple[Command, ...], asyncio.Future[list[Any]]]]) -> None:
        # A caller cancelled before the round trip (its task's timeout) sends nothing, as
        # it would not have on its own.
        batch = [(commands, future) for commands, future in queued if not future.done()]
        if not batch:
            return
        calls = [commands for commands, _ in batch]
        try:
            answers = await self._round_trip(calls)
        except DataError:
            answers = await self._one_by_one(calls)
        except Exception as e:  # noqa: BLE001 - each caller gets what broke the round trip
            answers = [e] * len(batch)
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    async def _one_by_one(self, calls: list[tuple[Command, ...]]) -> list[list[Any] | BaseException]:
        """A command that cannot be encoded is found before anything is sent: each call
        alone then, so only its own caller gets the error."""
        answers: list[list[Any] | BaseException] = []
        for commands in calls:
            try:
                answers.extend(await self._round_trip([commands]))
            except Exception as e:  # noqa: BLE001 - the caller gets what broke its round trip
                answers.append(e)
        return answers

    async def _round_trip(self, calls: list[tuple[Command, ...]]) -> list[list[Any] | BaseException]:
        pipe = self.redis.pipeline(transaction=False)
        for commands in calls:
            for command in commands:
                pipe.execute_command(*command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return answers_per_call([len(commands) for commands in calls], replies)


def answers_per_call(sizes: list[int], replies: list[Any]) -> list[list[Any] | BaseException]:
    """Each call's own replies (``sizes``: its number of commands), or the first error
    among them."""
    answers: list[list[Any] | BaseException] = []
    first = 0
    for size in sizes:
        own = replies[first : first + size]
        first += size
        answers.append(next((reply for reply in own if isinstance(reply, BaseException)), own))
    return answers
