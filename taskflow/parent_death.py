"""A child process that must not outlive its parent asks the kernel to signal it when the
parent dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``; elsewhere nothing is set and
callers rely on their pipe to the parent closing)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals, parent_pid: int | None = None) -> None:
    """Receive ``sig`` when the parent dies. With ``parent_pid``, exit at once if the
    parent already died before the request took effect (we were re-parented)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig))
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
