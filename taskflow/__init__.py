"""TaskFlow: event-sourced background tasks and email campaigns on Redis Streams.

``from taskflow import task`` is the decorator (CONTRACT.md); it is imported on first use,
so processes that never declare tasks do not pay for the registry at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskflow.tasks import task  # what type checkers see; at run time, __getattr__

__version__ = "0.1.0"
__all__ = ["task"]


def __getattr__(name: str) -> Any:
    if name == "task":
        from taskflow.tasks import task  # lazy on purpose (see the module docstring)

        return task
    raise AttributeError(f"module 'taskflow' has no attribute {name!r}")
