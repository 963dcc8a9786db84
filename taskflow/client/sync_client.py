"""``Client``: ``AsyncClient`` for sync code, each method blocking until its answer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any
from uuid import UUID

from taskflow.client.async_client import ActionAnswer, AsyncClient
from taskflow.events import AnyEvent
from taskflow.gateway.schemas import TaskAccepted, TaskView
from taskflow.submission.schema import TaskSubmission
from taskflow.sync_bridge import iterate_sync, run_sync


class Client:
    """``with Client("http://127.0.0.1:8000", token) as client: client.submit("echo")``"""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self._base_url, self._token, self._timeout_s = base_url, token, timeout_s
        self._client: AsyncClient = run_sync(self._open())

    async def _open(self) -> AsyncClient:
        # Made on the bridge's loop, where its connections will live.
        return AsyncClient(self._base_url, self._token, timeout_s=self._timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        run_sync(self._client.aclose())

    def submit(self, task_name: str, *args: Any, **options_and_kwargs: Any) -> TaskAccepted:
        return run_sync(self._client.submit(task_name, *args, **options_and_kwargs))

    def submit_many(self, submissions: Sequence[TaskSubmission]) -> list[TaskAccepted]:
        return run_sync(self._client.submit_many(submissions))

    def get(self, task_id: UUID | str) -> TaskView:
        return run_sync(self._client.get(task_id))

    def events(self, task_id: UUID | str) -> list[AnyEvent]:
        return run_sync(self._client.events(task_id))

    def cancel(self, task_id: UUID | str) -> ActionAnswer:
        return run_sync(self._client.cancel(task_id))

    def retry(self, task_id: UUID | str) -> ActionAnswer:
        return run_sync(self._client.retry(task_id))

    def wait(self, task_id: UUID | str, timeout: float | None = None) -> AnyEvent:
        return run_sync(self._client.wait(task_id, timeout))

    def result(self, task_id: UUID | str, timeout: float | None = None) -> Any:
        return run_sync(self._client.result(task_id, timeout))

    def stream(self, **filters: Any) -> Iterator[AnyEvent]:
        """``AsyncClient.stream`` as a blocking iterator (same filters)."""
        return iterate_sync(self._client.stream(**filters))
