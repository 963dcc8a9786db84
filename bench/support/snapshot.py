"""The copy of the tree that every process of a benchmark runs.

Importing this module copies ``taskflow/`` (with ``migrations/`` and ``alembic.ini``) aside,
puts the copy first on ``sys.path`` and checks that ``taskflow`` is imported from it; the
subprocesses get it through PYTHONPATH (``Bench.taskflow_env``) and run with it as their
working directory (``Proc``).
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH_DIR = Path(__file__).resolve().parent.parent


def _snapshot_taskflow() -> Path:
    """Copy the package (plus migrations) aside, so every phase of one benchmark runs the
    same code while others keep editing the tree; subprocesses get it via PYTHONPATH,
    which wins over the editable install's finder (appended to sys.meta_path)."""
    snapshot = Path(tempfile.mkdtemp(prefix="taskflow-bench-src-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "taskflow", snapshot / "taskflow", ignore=ignore)
    shutil.copytree(ROOT / "migrations", snapshot / "migrations", ignore=ignore)
    shutil.copy2(ROOT / "alembic.ini", snapshot / "alembic.ini")
    return snapshot


SNAPSHOT = _snapshot_taskflow()
atexit.register(shutil.rmtree, SNAPSHOT, True)
sys.path.insert(0, str(SNAPSHOT))
sys.path.insert(0, str(BENCH_DIR))

import taskflow  # noqa: E402

if Path(taskflow.__file__ or "").resolve().parent != SNAPSHOT / "taskflow":
    raise SystemExit("error: taskflow was not imported from the benchmark's snapshot")
