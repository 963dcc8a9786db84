"""Where ``@task`` functions are kept, by name.

The gateway imports the same task modules as the workers so it can refuse an unknown
``task_name`` or arguments that do not fit the function with a 422 at submit time.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from taskflow.errors import ConfigurationError, TaskFlowError

F = TypeVar("F", bound=Callable[..., Any])


class UnknownTaskError(TaskFlowError):
    """Raised when a name is asked for that no loaded module registered."""


@dataclass(frozen=True)
class TaskDefinition:
    name: str
    fn: Callable[..., Any] | Callable[..., Awaitable[Any]]
    is_async: bool

    def check_arguments(self, args: list[Any], kwargs: dict[str, Any]) -> str | None:
        """Why ``args``/``kwargs`` cannot be passed to the function, or None if they can."""
        try:
            inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as e:
            return str(e)
        return None


_registry: dict[str, TaskDefinition] = {}


@overload
def task(fn: F, /) -> F: ...
@overload
def task(*, name: str | None = None) -> Callable[[F], F]: ...
def task(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Register a sync or async function as a task, under its own name or ``name``."""

    def register(f: F) -> F:
        task_name = name or f.__name__
        existing = _registry.get(task_name)
        if existing is not None and existing.fn is not f:
            raise TaskFlowError(f"task name {task_name!r} is registered twice")
        _registry[task_name] = TaskDefinition(task_name, f, inspect.iscoroutinefunction(f))
        return f

    return register(fn) if fn is not None else register


def get_task(name: str) -> TaskDefinition:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownTaskError(name) from None


def task_names() -> list[str]:
    return sorted(_registry)


def load_task_modules(modules: Iterable[str]) -> None:
    """Import each module so its ``@task`` functions register themselves."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigurationError("TASKFLOW_TASK_MODULES", f"cannot import {module!r} ({e})") from e
