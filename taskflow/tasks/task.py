"""A ``@task`` function as its users hold it: called, it is the plain function; submitted,
it runs on a worker (``await add.submit(2, 3)`` gives a ``TaskHandle[int]`` for a function
returning ``int``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar
from uuid import UUID

from taskflow.events import Priority

if TYPE_CHECKING:
    # Only for annotations: the producer imports the task registry, not the other way.
    from taskflow.producer import Producer, TaskHandle
    from taskflow.producer.sync import SyncTaskHandle
    from taskflow.tasks.registry import TaskDefinition

P = ParamSpec("P")
Returned = TypeVar("Returned")  # what calling the function gives (a coroutine for async)
R = TypeVar("R")  # what the task's run gives: its result


class Call:
    """One run's arguments, for ``submit_many``: ``Call(2, 3)``, ``Call(path, mode="r")``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class Task(Generic[P, Returned, R]):
    """A registered task function: called, the function itself; ``submit`` runs it on a
    worker."""

    def __init__(self, definition: TaskDefinition, fn: Callable[P, Returned]) -> None:
        self.definition = definition
        self._fn = fn
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.definition.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Returned:
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self.definition.name}>"

    async def submit(
        self,
        *args: Any,
        priority: Priority | int | None = None,
        max_retries: int | None = None,
        timeout_seconds: int | None = None,
        scheduled_at: datetime | None = None,
        depends_on: Sequence[UUID | str | TaskHandle[Any]] = (),
        idempotency_key: str | None = None,
        producer: Producer | None = None,
        **kwargs: Any,
    ) -> TaskHandle[R]:
        """Run this function on a worker with these arguments; returns its handle at once.

        The keyword arguments named here are options, not the function's: an option left
        out takes the submission default (priority medium, 5 retries, 300 s). Raises
        ``InvalidSubmission`` naming a field the gateway would refuse (arguments that do
        not fit the signature included). ``producer`` defaults to ``Producer.default()``."""
        from taskflow.producer import Producer
        from taskflow.submission.schema import submission_of

        fields = _options(priority, max_retries, timeout_seconds, scheduled_at)
        fields.update(task_name=self.definition.name, args=list(args), kwargs=kwargs)
        if depends_on:
            fields["depends_on"] = [_task_id(parent) for parent in depends_on]
        producer = producer or await Producer.default()
        return await producer.submit(submission_of(fields), idempotency_key=idempotency_key)

    async def submit_many(
        self,
        calls: Iterable[Call | Sequence[Any]],
        *,
        priority: Priority | int | None = None,
        max_retries: int | None = None,
        timeout_seconds: int | None = None,
        scheduled_at: datetime | None = None,
        producer: Producer | None = None,
    ) -> list[TaskHandle[R]]:
        """Many runs in one round trip: ``calls`` holds each run's arguments, a ``Call(...)``
        or a tuple of positional ones. All are checked before any is appended."""
        from taskflow.producer import Producer
        from taskflow.submission.schema import submission_of

        options = _options(priority, max_retries, timeout_seconds, scheduled_at)
        submissions = []
        for call in calls:
            args, kwargs = (list(call.args), call.kwargs) if isinstance(call, Call) else (list(call), {})
            submissions.append(
                submission_of({**options, "task_name": self.definition.name, "args": args, "kwargs": kwargs})
            )
        producer = producer or await Producer.default()
        return await producer.submit_many(submissions)

    def submit_sync(self, *args: Any, **options_and_kwargs: Any) -> SyncTaskHandle[R]:
        """``submit`` for sync code (no event loop of yours needed): same arguments, and a
        handle whose methods block."""
        from taskflow.producer.sync import SyncTaskHandle
        from taskflow.sync_bridge import run_sync

        return SyncTaskHandle(run_sync(self.submit(*args, **options_and_kwargs)))


def _options(
    priority: Priority | int | None, max_retries: int | None, timeout_seconds: int | None, scheduled_at: datetime | None
) -> dict[str, Any]:
    given = {
        "priority": priority,
        "max_retries": max_retries,
        "timeout_seconds": timeout_seconds,
        "scheduled_at": scheduled_at,
    }
    return {name: value for name, value in given.items() if value is not None}


def _task_id(parent: UUID | str | TaskHandle[Any]) -> UUID | str:
    return parent if isinstance(parent, UUID | str) else parent.task_id
