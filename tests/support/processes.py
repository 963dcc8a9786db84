"""TaskFlow commands as real OS processes, always reaped at the end of the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taskflow.settings import Settings


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
    env.update(
        TASKFLOW_REDIS_URL=settings.redis_url,
        TASKFLOW_DATABASE_URL=settings.database_url,
        TASKFLOW_NAMESPACE=settings.namespace,
        TASKFLOW_JWT_SECRET=settings.jwt_secret,
        TASKFLOW_LEASE_SECONDS=str(settings.lease_seconds),
        TASKFLOW_MAX_DELIVERIES=str(settings.max_deliveries),
        TASKFLOW_PARTITIONS=str(settings.partitions),
        TASKFLOW_TASK_MODULES=",".join(settings.task_modules),
        TASKFLOW_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def taskflow(*args: str, env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "taskflow", *args], env=env, capture_output=True, text=True, timeout=timeout_s
    )


class Service:
    def __init__(self, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.log = Path(tempfile.mkstemp(prefix="taskflow-", suffix=".log")[1])
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "taskflow", *args], env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM, as an orchestrator stops a process; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as in a power cut."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text()


@contextmanager
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in started:
            service.kill()
            service.log.unlink(missing_ok=True)


def start(started: list[Service], *args: str, env: dict[str, str]) -> Service:
    service = Service(args, env)
    started.append(service)
    return service
