"""Where ``@task`` functions are kept, by name.

The gateway imports the same task modules as the workers so it can refuse an unknown
``task_name``, or arguments that do not fit the function's signature and annotations, with
a 422 at submit time.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, cast, overload

import msgspec

from taskflow.errors import ConfigurationError, TaskFlowError
from taskflow.tasks.task import Task

P = ParamSpec("P")
R = TypeVar("R")


class UnknownTaskError(TaskFlowError):
    """Raised when a name is asked for that no loaded module registered."""


class ArgumentProblem(msgspec.Struct, frozen=True):
    """Why arguments do not fit a task: where (``kwargs.seconds``, ``args[0]``) and what."""

    path: str
    message: str


class _Parameter(msgspec.Struct, frozen=True):
    name: str
    kind: inspect._ParameterKind
    # What a JSON value must convert to; None when anything goes (unannotated, Any, or a
    # class msgspec cannot build from JSON, which the worker would pass on unconverted).
    annotation: Any


# Where a sync function runs: a child process (default: a timeout, a cancel or a lost
# lease always stops it) or a thread of the worker (cheaper; stopped only between Python
# bytecodes, see ADR 0018). Async functions always run on the worker's event loop.
Isolation = Literal["process", "thread"]


@dataclass(frozen=True)
class TaskDefinition:
    name: str
    fn: Callable[..., Any] | Callable[..., Awaitable[Any]]
    is_async: bool
    isolation: Isolation = "process"

    def check_arguments(self, args: list[Any], kwargs: dict[str, Any]) -> ArgumentProblem | None:
        """Why ``args``/``kwargs`` (decoded JSON) cannot be passed to the function, or None.

        Each value must convert (``msgspec.convert``, strict) to its parameter's annotation,
        so ``sleep(seconds="abc")`` is refused at submit time, not in the worker.
        """
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as e:
            return ArgumentProblem("kwargs" if kwargs else "args", f"do not fit {self.name}(): {e}")
        named = self._keyword_names
        position = 0
        for parameter in self._parameters:
            if parameter.kind is _VAR_POSITIONAL:
                values = [(f"args[{i}]", args[i]) for i in range(position, len(args))]
                position = len(args)
            elif parameter.kind is _VAR_KEYWORD:
                values = [(f"kwargs.{key}", value) for key, value in kwargs.items() if key not in named]
            elif parameter.kind is not _KEYWORD_ONLY and position < len(args):
                values = [(f"args[{position}]", args[position])]
                position += 1
            elif parameter.name in kwargs and parameter.kind is not _POSITIONAL_ONLY:
                values = [(f"kwargs.{parameter.name}", kwargs[parameter.name])]
            else:
                continue  # left to its default
            if parameter.annotation is not None and (problem := _first_unfit(values, parameter.annotation)):
                return problem
        return None

    @cached_property
    def returns(self) -> Any:
        """What a result converts back to for a producer (the return annotation), or
        ``Any`` when it cannot be modelled: the decoded JSON is given as it is."""
        hint = _type_hints(self.fn).get("return", Any)
        return _checkable(hint) or Any

    @cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self.fn)

    @cached_property
    def _parameters(self) -> tuple[_Parameter, ...]:
        """Built on first use, once per task: task modules may define what their
        annotations name after the decorated function."""
        hints = _type_hints(self.fn)
        return tuple(
            _Parameter(name, p.kind, _checkable(hints.get(name, Any))) for name, p in self._signature.parameters.items()
        )

    @cached_property
    def _keyword_names(self) -> frozenset[str]:
        """Names a keyword argument binds to; any other keyword goes to ``**kwargs``."""
        return frozenset(p.name for p in self._parameters if p.kind in (_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY))


_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
# msgspec names the place inside a value as "... - at `$[1].a`".
_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<inner>[^`]*)`$", re.DOTALL)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        # Resolves string annotations (``from __future__ import annotations``) in fn's module.
        return typing.get_type_hints(fn)
    except (NameError, AttributeError, TypeError):
        # A name imported only for type checkers: with nothing to convert to, the task's
        # arguments are checked against its signature alone, as before annotations counted.
        return {}


def _checkable(annotation: Any) -> Any:
    try:
        info = msgspec.inspect.type_info(annotation)
    except TypeError:  # a typing construct msgspec does not model: nothing to convert to
        return None
    return None if isinstance(info, msgspec.inspect.AnyType | msgspec.inspect.CustomType) else annotation


def _first_unfit(values: list[tuple[str, Any]], annotation: Any) -> ArgumentProblem | None:
    for path, value in values:
        try:
            msgspec.convert(value, annotation)
        except msgspec.ValidationError as e:
            found = _AT.match(str(e))
            if found is None:
                return ArgumentProblem(path, str(e))
            return ArgumentProblem(path + found["inner"], found["message"])
    return None


_registry: dict[str, TaskDefinition] = {}


@overload
def task(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, Coroutine[Any, Any, R], R]: ...
@overload
def task(fn: Callable[P, R], /) -> Task[P, R, R]: ...
@overload
def task(*, name: str | None = None, isolation: Isolation = "process") -> _Decorator: ...
def task(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, isolation: Isolation = "process"
) -> Task[Any, Any, Any] | _Decorator:
    """Register a sync or async function as a task, under its own name or ``name``. The
    function stays callable as it was, and gains ``submit`` (run it on a worker).

    ``isolation="thread"`` runs a sync function in a thread of the worker instead of a
    child process: no process boundary per run, but a timeout, cancel or lost lease stops
    it only when it next runs Python bytecode (not inside ``time.sleep`` or a blocking C
    call), and a crash in it takes the worker down."""
    if isolation not in ("process", "thread"):
        raise TaskFlowError(f"isolation must be 'process' or 'thread', not {isolation!r}")

    def register(f: Callable[..., Any]) -> Task[Any, Any, Any]:
        task_name = name or f.__name__
        is_async = inspect.iscoroutinefunction(f)
        if is_async and isolation != "process":
            raise TaskFlowError(f"task {task_name!r}: isolation applies to sync functions; async ones run on the loop")
        existing = _registry.get(task_name)
        if existing is not None and existing.fn is not f:
            raise TaskFlowError(f"task name {task_name!r} is registered twice")
        definition = TaskDefinition(task_name, f, is_async, isolation)
        _registry[task_name] = definition
        return Task(definition, f)

    return register(fn) if fn is not None else cast("_Decorator", register)


class _Decorator(Protocol):
    """``@task(name=...)``: typed as ``@task`` is."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, Coroutine[Any, Any, R], R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R, R]: ...


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
