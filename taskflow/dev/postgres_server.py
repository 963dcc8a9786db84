"""The embedded PostgreSQL 16 server, from the binaries in the pgserver wheel."""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from taskflow.dev.ports import LOCALHOST, free_port
from taskflow.dev.process import POLL_INTERVAL, EmbeddedServerError, RunningServer, log_tail, run_once

_POSTGRES_START_TIMEOUT = 30.0
_POSTGRES_STOP_TIMEOUT = 30.0

# PostgreSQL refuses to run as root. pgserver solves that with this account, and
# reusing the same one keeps data directories usable by pgserver's own API too.
_POSTGRES_SYSTEM_ACCOUNT = "pgserver"
_POSTGRES_SUPERUSER = "postgres"
_POSTGRES_DATABASE = "postgres"


class _RunAs(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]
    env: dict[str, str]
    cwd: str


@dataclass(frozen=True)
class _PostgresCluster:
    data_dir: Path
    bin_dir: Path
    # None means "run as the current user"; set only when we are root.
    account: pwd.struct_passwd | None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def run(self, tool: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a bundled PostgreSQL tool as the account that owns the cluster."""
        command = [str(self.bin_dir / tool), *args]
        # A pipe could be inherited by the postmaster that pg_ctl forks and never
        # reach EOF (pgserver hit this); a temporary file cannot block.
        with tempfile.TemporaryFile("w+") as output:
            try:
                completed = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=timeout,
                    check=False,
                    **self.identity(),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise EmbeddedServerError(f"{tool} failed to run: {exc}") from exc
            output.seek(0)
            return subprocess.CompletedProcess(command, completed.returncode, output.read())

    def identity(self) -> _RunAs:
        """subprocess arguments that drop root privileges to the cluster's account."""
        if self.account is None:
            return {}
        env = {
            **os.environ,
            "HOME": self.account.pw_dir,
            "USER": self.account.pw_name,
            "LOGNAME": self.account.pw_name,
        }
        # The caller's cwd (often /root) may be unreadable for the account; all paths
        # passed to the tools are absolute, so / is a safe place to start from.
        return {
            "user": self.account.pw_uid,
            "group": self.account.pw_gid,
            "extra_groups": [],
            "env": env,
            "cwd": "/",
        }


def start_postgres(data_dir: Path, port: int | None = None) -> RunningServer:
    """Start PostgreSQL 16 from the pgserver wheel, listening on TCP 127.0.0.1 only."""
    cluster = _PostgresCluster(data_dir.resolve(), _postgres_bin_dir(), _postgres_account())
    port = free_port() if port is None else port
    _prepare_data_dir(cluster)
    _stop_leftover_server(cluster)
    _start_postmaster(cluster, port)
    try:
        _wait_until_accepting(cluster, port)
    except BaseException:
        _stop_postmaster(cluster)
        raise
    return RunningServer(
        url=f"postgresql://{_POSTGRES_SUPERUSER}@{LOCALHOST}:{port}/{_POSTGRES_DATABASE}",
        stop=run_once(lambda: _stop_postmaster(cluster)),
    )


def _postgres_bin_dir() -> Path:
    # find_spec locates the wheel without importing it; importing pgserver scans its
    # binaries and sets up lock files we have no use for.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise EmbeddedServerError("the pgserver package is not installed")
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise EmbeddedServerError(f"pgserver ships no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def _postgres_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_POSTGRES_SYSTEM_ACCOUNT)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--shell", "/usr/sbin/nologin",
             _POSTGRES_SYSTEM_ACCOUNT],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedServerError(
            f"running as root, but cannot create the {_POSTGRES_SYSTEM_ACCOUNT!r} system "
            f"account PostgreSQL needs: {exc}"
        ) from exc
    return pwd.getpwnam(_POSTGRES_SYSTEM_ACCOUNT)


def _prepare_data_dir(cluster: _PostgresCluster) -> None:
    cluster.data_dir.mkdir(parents=True, exist_ok=True)
    account = cluster.account
    if account is not None:
        if not cluster.is_initialised:
            # initdb insists on owning the directory it initialises.
            os.chown(cluster.data_dir, account.pw_uid, account.pw_gid)
        _check_account_access(cluster, account)
    if not cluster.is_initialised:
        _initdb(cluster)


def _check_account_access(cluster: _PostgresCluster, account: pwd.struct_passwd) -> None:
    """Fail with a clear hint instead of an obscure initdb/postmaster permission error."""
    probes = [("-w", cluster.data_dir), ("-x", cluster.bin_dir / "postgres")]
    for flag, path in probes:
        probe = subprocess.run(["test", flag, str(path)], check=False, **cluster.identity())
        if probe.returncode != 0:
            raise EmbeddedServerError(
                f"PostgreSQL runs as system user {account.pw_name!r}, which cannot "
                f"access {path}; make every parent directory traversable (chmod o+x)"
            )


def _initdb(cluster: _PostgresCluster) -> None:
    result = cluster.run(
        "initdb",
        "-D", str(cluster.data_dir),
        "-U", _POSTGRES_SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        # The host's locale may not exist or may differ between machines; C is always there.
        "--no-locale",
    )  # fmt: skip
    if result.returncode != 0:
        raise EmbeddedServerError(f"initdb failed in {cluster.data_dir}:\n{result.stdout}")


def _stop_leftover_server(cluster: _PostgresCluster) -> None:
    """A postmaster from an earlier run may still hold the directory, possibly on another port."""
    if _is_running(cluster):
        _stop_postmaster(cluster)


def _is_running(cluster: _PostgresCluster) -> bool:
    # pg_ctl status: 0 = running, 3 = not running, 4 = no usable data directory.
    return cluster.run("pg_ctl", "status", "-D", str(cluster.data_dir)).returncode == 0


def _start_postmaster(cluster: _PostgresCluster, port: int) -> None:
    # No Unix socket (-k ''): TCP is the contract, and a socket path inside an
    # arbitrary data_dir can exceed the ~107-byte limit and stop the server starting.
    server_options = f"-h {LOCALHOST} -p {port} -k ''"
    result = cluster.run(
        "pg_ctl", "start",
        "-D", str(cluster.data_dir),
        "-l", str(cluster.log_path),
        "-o", server_options,
        "-w", "-t", str(int(_POSTGRES_START_TIMEOUT)),
        timeout=_POSTGRES_START_TIMEOUT + 10,
    )  # fmt: skip
    if result.returncode != 0:
        raise EmbeddedServerError(
            f"PostgreSQL failed to start on port {port}:\n{result.stdout}\n" + log_tail(cluster.log_path)
        )


def _wait_until_accepting(cluster: _PostgresCluster, port: int) -> None:
    deadline = time.monotonic() + _POSTGRES_START_TIMEOUT
    while time.monotonic() < deadline:
        probe = cluster.run(
            "pg_isready",
            "-h", LOCALHOST,
            "-p", str(port),
            "-U", _POSTGRES_SUPERUSER,
            "-d", _POSTGRES_DATABASE,
            "-t", "1",
        )  # fmt: skip
        if probe.returncode == 0:
            return
        time.sleep(POLL_INTERVAL)
    raise EmbeddedServerError(
        f"PostgreSQL did not accept TCP connections on {LOCALHOST}:{port} within "
        f"{_POSTGRES_START_TIMEOUT:.0f}s; " + log_tail(cluster.log_path)
    )


def _stop_postmaster(cluster: _PostgresCluster) -> None:
    result = cluster.run(
        "pg_ctl", "stop",
        "-D", str(cluster.data_dir),
        "-m", "fast",
        "-w", "-t", str(int(_POSTGRES_STOP_TIMEOUT)),
        timeout=_POSTGRES_STOP_TIMEOUT + 10,
    )  # fmt: skip
    if result.returncode != 0 and _is_running(cluster):
        raise EmbeddedServerError(f"PostgreSQL in {cluster.data_dir} did not stop:\n{result.stdout}")
