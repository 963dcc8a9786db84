"""``taskflow dev`` on embedded servers: up, serving, and down cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskflow.dev.ports import free_port


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # As root the embedded PostgreSQL runs as its own account, which must traverse it.
    base = Path(tempfile.mkdtemp(prefix="taskflow-dev-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _port_of(url: str) -> int:
    match = re.search(r":(\d+)/", url)
    assert match, url
    return int(match.group(1))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_dev(data_dir: Path, port: int, *, own_group: bool = False) -> tuple[subprocess.Popen[bytes], Path]:
    """``taskflow dev`` on embedded servers, once it printed its token; and its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
    env["TASKFLOW_DATA_DIR"] = str(data_dir)
    out = data_dir / "dev.out"
    with out.open("w") as sink:
        dev = subprocess.Popen(
            [sys.executable, "-m", "taskflow", "dev", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
    deadline = time.monotonic() + 90
    while "admin token" not in out.read_text():
        if dev.poll() is not None or time.monotonic() > deadline:
            dev.kill()
            raise AssertionError(out.read_text())
        time.sleep(0.2)
    return dev, out


def test_dev_runs_the_whole_stack_on_embedded_servers_and_stops_cleanly(data_dir: Path) -> None:
    port = free_port()
    dev, out = _start_dev(data_dir, port)
    deadline = time.monotonic() + 90
    try:
        text = out.read_text()
        token = text.split("admin token (7 days):\n", 1)[1].splitlines()[0].strip()
        redis_port = _port_of(re.search(r"redis:\s+(\S+)", text).group(1))  # type: ignore[union-attr]
        pg_port = _port_of(re.search(r"postgres:\s+(\S+)", text).group(1))  # type: ignore[union-attr]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}) as http:
            while http.get("/ready").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            task_id = http.post("/api/v1/tasks", json={"task_name": "echo", "kwargs": {"x": 1}}).json()["task_id"]
            while http.get(f"/api/v1/tasks/{task_id}").json()["status"] != "COMPLETED":
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.2)
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) == 0, out.read_text()
        assert not _listening(port) and not _listening(redis_port) and not _listening(pg_port)
        assert (data_dir / "redis").is_dir() and (data_dir / "postgres").is_dir()  # kept for the next run
    finally:
        if dev.poll() is None:
            dev.send_signal(signal.SIGTERM)
            try:
                dev.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dev.kill()  # its children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
                dev.wait()


def test_ctrl_c_to_the_whole_terminal_group_stops_the_stack_without_a_traceback(data_dir: Path) -> None:
    """A terminal's Ctrl-C reaches every process of its foreground group at once: the
    embedded servers must outlive the services draining against them."""
    # Its own group, as a shell gives a foreground job.
    dev, out = _start_dev(data_dir, free_port(), own_group=True)
    try:
        os.killpg(dev.pid, signal.SIGINT)
        assert dev.wait(timeout=60) == 0, out.read_text()
        text = out.read_text()
        assert "Traceback" not in text and "Connection refused" not in text, text
        assert '"worker_stopped"' in text and '"coordinator_stopped"' in text
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
