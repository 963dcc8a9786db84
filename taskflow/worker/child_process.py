"""Entry point of a child process that runs sync tasks: ``python -m taskflow.worker.child_process FD MODULE...``."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from taskflow.worker.child_pool import child_main

if __name__ == "__main__":
    child_main(Connection(int(sys.argv[1])), tuple(sys.argv[2:]))
