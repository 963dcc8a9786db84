"""The one way a submission is appended: the gateway, cron ticks, the benchmarks and the
tests all come here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

from taskflow.events import TaskSubmitted, encode, tag_of
from taskflow.streams.dispatch import dispatch_mode, due_ms
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts


class SubmitOutcome(msgspec.Struct, frozen=True):
    created: bool
    event_id: str
    fingerprint: str


class Submitter(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.streams")
        self._submit = self.register("submit")

    async def submit(self, event: TaskSubmitted, *, fingerprint: str, marker_ttl_seconds: int) -> SubmitOutcome:
        """Append ``event`` and put its task in line as ``dispatch_mode`` decides (on its
        dispatch stream, held until due, or waiting for its parents), in one atomic step
        (invariants 2, 3).

        The marker remembers the task for ``marker_ttl_seconds`` past its due time: it
        also carries the task's live state, so it must outlast a far schedule."""
        keys, args = self._call(event, fingerprint, marker_ttl_seconds)
        return _outcome(await self._submit(keys=keys, args=args))

    async def submit_many(
        self, submissions: Sequence[tuple[TaskSubmitted, str]], *, marker_ttl_seconds: int
    ) -> list[SubmitOutcome]:
        """``submit`` for each (event, fingerprint), in one pipeline: one round trip for the
        lot, each append still its own atomic script call. In order; a failed call raises
        after the others ran (they are answered by a resubmit, which the marker replays)."""
        calls = [self._call(event, fingerprint, marker_ttl_seconds) for event, fingerprint in submissions]
        answers: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):  # a second pass only after the server lost the script
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in todo:
                    keys, args = calls[i]
                    # EVALSHA straight into the pipeline (a registered script would ask
                    # SCRIPT EXISTS first, one more round trip per batch).
                    pipe.evalsha(self._submit.sha, len(keys), *keys, *args)
                results: list[Any] = await pipe.execute(raise_on_error=False)
            for i, result in zip(todo, results, strict=True):
                answers[i] = result
            todo = [i for i in todo if isinstance(answers[i], NoScriptError)]
            if not todo:
                break
            await self.load()
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return [_outcome(answer) for answer in answers]

    def _call(
        self, event: TaskSubmitted, fingerprint: str, marker_ttl_seconds: int
    ) -> tuple[list[KeyT], list[EncodableT]]:
        ks = self.keyspace
        task_id = event.aggregate_id
        p = ks.partition_of(task_id)
        occurred_ms = int(event.occurred_at.timestamp() * 1000)
        held_until_ms = due_ms(event) or occurred_ms
        keys: list[KeyT] = [
            ks.events(p),
            ks.dispatch(p, event.priority),
            ks.task_marker(task_id),
            ks.held_due(p),
            ks.held(p),
            ks.waiting(p),
        ]
        args: list[EncodableT] = [
            tag_of(event),
            encode(event),
            task_id,
            fingerprint,
            marker_ttl_seconds + max(0, (held_until_ms - occurred_ms) // 1000),
            dispatch_mode(event),
            held_until_ms,
            event.priority,
        ]
        return keys, args


def _outcome(result: list[Any]) -> SubmitOutcome:
    return SubmitOutcome(created=bool(result[0]), event_id=str(result[1]), fingerprint=str(result[2] or ""))
