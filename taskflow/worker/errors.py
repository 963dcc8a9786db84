"""Errors of the worker process."""

from taskflow.errors import TaskFlowError


class WorkerError(TaskFlowError):
    """Root of worker errors."""


class MalformedDispatchEntry(WorkerError):
    """Raised when a dispatch entry lacks its fields or holds an undecodable event;
    the entry is dead-lettered rather than retried, since it can never succeed."""
