"""Subprocesses: finding an executable, and Proc, a subprocess in its own session."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from support.cpu import group_cpu_seconds
from support.errors import PhaseError
from support.snapshot import SNAPSHOT

BIN = Path(sys.executable).parent
STOP_TIMEOUT_S = 20.0


def exe(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"error: cannot find the `{name}` executable next to {sys.executable}")
    return found


class Proc:
    """A subprocess in its own session, so it and its children can be stopped together."""

    alive_procs: list[Proc] = []

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], logdir: Path, *, profiler: bool = False
    ) -> None:
        self.name = name
        self.profiler = profiler
        self.log_path = logdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            # The snapshot, not ROOT: the worker starts its sync-task children with
            # `python -m taskflow.worker.child_process`, which puts the working directory first on
            # sys.path; from ROOT they would import the live tree, not the snapshot.
            cwd=SNAPSHOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.spawned_at = time.perf_counter()
        Proc.alive_procs.append(self)

    def check(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise PhaseError(f"{self.name} exited early with code {code}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:])

    def cpu_seconds(self) -> float:
        """user + system CPU of every live process in this process's group."""
        return group_cpu_seconds(self.popen.pid)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the group, wait, then SIGKILL it; returns the exit code."""
        if self.profiler:
            # py-spy writes its profile when its target exits; give it the time to.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        # Children of the group (taskiq's worker process) may outlive the leader.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()
        if self in Proc.alive_procs:
            Proc.alive_procs.remove(self)
        return self.popen.returncode

    @classmethod
    def stop_all(cls) -> None:
        for proc in list(cls.alive_procs):
            proc.stop(timeout=5)
