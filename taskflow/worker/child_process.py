"""Entry point of the worker's fork server, which makes the children that run sync tasks:
``python -m taskflow.worker.child_process CONTROL_FD WORKER_PID MODULE...`` (ADR 0018)."""

from __future__ import annotations

import sys

from taskflow.worker.fork_server import serve

if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), tuple(sys.argv[3:]))
