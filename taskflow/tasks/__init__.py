"""The task registry: ``@task`` marks a function that workers may run by name."""

from taskflow.tasks.registry import TaskDefinition, UnknownTaskError, get_task, load_task_modules, task, task_names

__all__ = ["TaskDefinition", "UnknownTaskError", "get_task", "load_task_modules", "task", "task_names"]
