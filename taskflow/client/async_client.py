"""``AsyncClient``: TaskFlow over REST and SSE (httpx), for programs that do not live
beside the workers. Answers are the gateway's own shapes (``taskflow.gateway.schemas``);
a refusal raises an ``ApiError`` subclass; a task's bad ending raises the producer's
typed ``TaskError``s, so code moves between the two producers unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx
import msgspec

from taskflow.client.errors import error_for
from taskflow.client.sse import messages
from taskflow.events import (
    AnyEvent,
    DispatchRejected,
    Priority,
    TaskCancelled,
    TaskDeadLettered,
    TaskFailed,
    TaskSucceeded,
    TaskTimedOut,
)
from taskflow.gateway.schemas import TaskAccepted, TaskBatchAccepted, TaskView
from taskflow.producer.errors import ResultTimeout, TaskError
from taskflow.producer.handle import error_of
from taskflow.submission.schema import TaskSubmission

# Reconnecting a dropped feed: quickly at first, then at most this far apart.
MAX_RECONNECT_S = 5.0
_event = msgspec.json.Decoder(AnyEvent)
_events = msgspec.json.Decoder(list[AnyEvent])
_view = msgspec.json.Decoder(TaskView)
_accepted = msgspec.json.Decoder(TaskAccepted)
_batch = msgspec.json.Decoder(TaskBatchAccepted)
_json = msgspec.json.Encoder()


class ActionAnswer(msgspec.Struct, kw_only=True):
    """What a cancel or a retry answers: the task's status now and the event appended."""

    task_id: UUID
    status: str
    event_id: str


_action = msgspec.json.Decoder(ActionAnswer)


class AsyncClient:
    """``AsyncClient("http://127.0.0.1:8000", token)``; use as an async context manager."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(
        self,
        task_name: str,
        *args: Any,
        priority: Priority | int | None = None,
        max_retries: int | None = None,
        timeout_seconds: int | None = None,
        scheduled_at: datetime | None = None,
        depends_on: Sequence[UUID | str] = (),
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> TaskAccepted:
        """``POST /api/v1/tasks``: the options are keyword-only and reserved; any other
        keyword is the task's."""
        body: dict[str, Any] = {"task_name": task_name, "args": list(args), "kwargs": kwargs}
        options = {
            "priority": priority,
            "max_retries": max_retries,
            "timeout_seconds": timeout_seconds,
            "scheduled_at": scheduled_at,
        }
        body.update({k: v for k, v in options.items() if v is not None})
        if depends_on:
            body["depends_on"] = [str(parent) for parent in depends_on]
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _accepted.decode(await self._call("POST", "/api/v1/tasks", body=body, headers=headers))

    async def submit_many(self, submissions: Sequence[TaskSubmission]) -> list[TaskAccepted]:
        """``POST /api/v1/tasks/batch``: all or none (an ``Invalid`` names ``tasks[i]``)."""
        answer = await self._call("POST", "/api/v1/tasks/batch", body={"tasks": list(submissions)})
        return _batch.decode(answer).items

    async def get(self, task_id: UUID | str) -> TaskView:
        return _view.decode(await self._call("GET", f"/api/v1/tasks/{task_id}"))

    async def events(self, task_id: UUID | str) -> list[AnyEvent]:
        return _events.decode(await self._call("GET", f"/api/v1/tasks/{task_id}/events"))

    async def cancel(self, task_id: UUID | str) -> ActionAnswer:
        return _action.decode(await self._call("DELETE", f"/api/v1/tasks/{task_id}"))

    async def retry(self, task_id: UUID | str) -> ActionAnswer:
        return _action.decode(await self._call("POST", f"/api/v1/tasks/{task_id}/retry"))

    async def wait(self, task_id: UUID | str, timeout: float | None = None) -> AnyEvent:  # noqa: ASYNC109 - CONTRACT.md
        """Follow the task's feed until it ends; the event that ended it (``TaskSucceeded``,
        ``TaskFailed``, ...). ``ResultTimeout`` first if ``timeout`` runs out (the task
        goes on)."""
        ending: AnyEvent | None = None
        try:
            async with asyncio.timeout(timeout):
                async for event in self.stream(task_id=task_id):
                    if _ends(event):
                        ending = event
        except TimeoutError:
            raise ResultTimeout(f"task {task_id} has not ended after {timeout:g} s") from None
        if ending is None:
            raise TaskError(str(task_id), "its feed ended without an ending event")
        return ending

    async def result(self, task_id: UUID | str, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - CONTRACT.md
        """The task's result once it ends; its bad ending as a ``TaskError``
        (``TaskFailedError`` with the remote error type and traceback, ...)."""
        event = await self.wait(task_id, timeout)
        if isinstance(event, TaskSucceeded):
            return msgspec.json.decode(event.result)
        raise error_of(str(task_id), event)

    async def stream(
        self,
        *,
        task_id: UUID | str | None = None,
        task_names: Sequence[str] = (),
        statuses: Sequence[str] = (),
        types: Sequence[str] = (),
        last_event_id: str | None = None,
    ) -> AsyncIterator[AnyEvent]:
        """The live feed (every event you may see, or one task's until it ends), as
        events. A dropped connection is reopened with ``Last-Event-ID``: nothing is
        missed and nothing is yielded twice."""
        path = f"/api/v1/tasks/{task_id}/stream" if task_id is not None else "/api/v1/events/stream"
        pairs: list[tuple[str, str | int | float | bool | None]] = [("task_name", n) for n in task_names]
        pairs += [("status", s) for s in statuses]
        pairs += [("type", t) for t in types]
        params = httpx.QueryParams(pairs)
        last = last_event_id
        pause = 0.1
        while True:
            headers = {"Last-Event-ID": last} if last else {}
            try:
                async with self._http.stream(
                    "GET", path, params=params, headers=headers, timeout=httpx.Timeout(30.0, read=None)
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise _error(response)
                    pause = 0.1
                    async for message in messages(response.aiter_lines()):
                        if message.event == "end":
                            return
                        if message.id is None or (last is not None and _order(message.id) <= _order(last)):
                            continue
                        last = message.id
                        yield _event.decode(message.data)
            except (httpx.TransportError, httpx.RemoteProtocolError):
                pass  # dropped: reconnect below
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RECONNECT_S)

    async def _call(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None) -> bytes:
        content = _json.encode(body) if body is not None else None
        request_headers = {"Content-Type": "application/json", **(headers or {})} if content is not None else headers
        response = await self._http.request(method, path, content=content, headers=request_headers)
        if response.status_code >= 400:
            raise _error(response)
        return response.content


def _error(response: httpx.Response) -> Exception:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return error_for(
        response.status_code, body, response.headers.get("x-request-id"), response.headers.get("retry-after")
    )


def _order(sse_id: str) -> tuple[int, int, int]:
    stream_id, _, partition = sse_id.partition("@")
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0), int(partition) if partition else 2**64


def _ends(event: AnyEvent) -> bool:
    """Whether ``event`` ends its task (a failure that books a retry does not)."""
    if isinstance(event, TaskFailed):
        return event.retry_at is None
    return isinstance(event, TaskSucceeded | TaskTimedOut | TaskCancelled | TaskDeadLettered | DispatchRejected)
