"""``Postponed``: task code that cannot do its work yet asks for another run later.

Unlike any other exception it is not a failure of the task: the worker books the next run
after ``delay_s`` without counting a retry, so waiting (a paused campaign, a send rate's
next free slot) never uses up ``max_retries``. Honoured for async tasks (they run on the
worker's loop); a sync task raising it fails as with any error.
"""

from __future__ import annotations

from taskflow.errors import TaskFlowError


class Postponed(TaskFlowError):
    """Raised by task code to run again after ``delay_s`` seconds, no retry counted."""

    def __init__(self, reason: str, delay_s: float) -> None:
        super().__init__(reason)
        self.delay_s = delay_s
