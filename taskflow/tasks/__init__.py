"""The task registry: ``@task`` marks a function that workers may run by name; task code
reports logs and progress through ``current_task()``."""

from taskflow.tasks.context import NotInATask, TaskRun, current_task
from taskflow.tasks.postpone import Postponed
from taskflow.tasks.registry import TaskDefinition, UnknownTaskError, get_task, load_task_modules, task, task_names
from taskflow.tasks.task import Call, Task

__all__ = [
    "Call",
    "NotInATask",
    "Postponed",
    "Task",
    "TaskDefinition",
    "TaskRun",
    "UnknownTaskError",
    "current_task",
    "get_task",
    "load_task_modules",
    "task",
    "task_names",
]
