"""``taskflow dev``: the whole stack in one process tree on one machine.

Where no Redis / PostgreSQL URL is configured it starts the embedded servers (data kept
between runs), runs the migrations, then supervises a gateway, a projector and workers
as child processes until Ctrl-C / SIGTERM, and stops everything in reverse order.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import click
import platformdirs

from taskflow.dev.mail_sink import start_mail_sink
from taskflow.dev.postgres_server import start_postgres
from taskflow.dev.process import RunningServer
from taskflow.dev.redis_server import start_redis
from taskflow.gateway.auth import issue_token
from taskflow.parent_death import die_with_parent
from taskflow.settings import load_settings

DEV_DATABASE = "taskflow"
CHILD_STOP_TIMEOUT_S = 30.0


def data_dir(environ: Mapping[str, str]) -> Path:
    """Where embedded servers keep their data: ``TASKFLOW_DATA_DIR``, else the user's
    data directory. As root that is /var/lib/taskflow, because PostgreSQL then runs as
    its own account, which cannot enter /root."""
    if "TASKFLOW_DATA_DIR" in environ:
        return Path(environ["TASKFLOW_DATA_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/taskflow")
    return Path(platformdirs.user_data_dir("taskflow"))


@dataclass
class DevStack:
    environ: dict[str, str]
    servers: list[RunningServer] = field(default_factory=list)
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start_servers(self) -> None:
        root = data_dir(self.environ)
        root.mkdir(parents=True, exist_ok=True)
        if "TASKFLOW_REDIS_URL" not in self.environ:
            server = start_redis(root / "redis")
            self.servers.append(server)
            self.environ["TASKFLOW_REDIS_URL"] = server.url
        if "TASKFLOW_DATABASE_URL" not in self.environ:
            root.chmod(0o755)  # the postgres account must traverse it
            server = start_postgres(root / "postgres")
            self.servers.append(server)
            asyncio.run(_create_database(server.url, DEV_DATABASE))
            self.environ["TASKFLOW_DATABASE_URL"] = server.url.rsplit("/", 1)[0] + f"/{DEV_DATABASE}"
        if "TASKFLOW_SMTP_HOST" not in self.environ:
            # Campaign mail goes to the sink unless a real server is configured.
            sink, port = start_mail_sink(self.mail_dir)
            self.servers.append(sink)
            self.environ["TASKFLOW_SMTP_HOST"] = "127.0.0.1"
            self.environ["TASKFLOW_SMTP_PORT"] = str(port)
            self.environ["TASKFLOW_SMTP_STARTTLS"] = "false"
        if "TASKFLOW_JWT_SECRET" not in self.environ:
            self.environ["TASKFLOW_JWT_SECRET"] = _dev_secret(root)
        self.environ["TASKFLOW_DEV"] = "1"

    @property
    def mail_dir(self) -> Path:
        """Where the dev SMTP sink keeps captured mail, one .eml file each."""
        return data_dir(self.environ) / "mail"

    def mail_note(self) -> str:
        host, port = self.environ.get("TASKFLOW_SMTP_HOST", ""), self.environ.get("TASKFLOW_SMTP_PORT", "")
        if any(server.url == self.mail_dir.as_uri() for server in self.servers):
            return f"  mail:      SMTP sink on {host}:{port}, captured mail in {self.mail_dir}/*.eml\n"
        return f"  mail:      sent through {host}:{port} (TASKFLOW_SMTP_*)\n"

    def spawn(self, name: str, *args: str) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskflow", *args], env=self.environ, preexec_fn=_die_with_parent
        )
        self.children.append((name, process))

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.children:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        """Children first (they finish in-flight work), then the servers."""
        for _, process in self.children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_TIMEOUT_S
        for _, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for server in reversed(self.servers):
            server.stop()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when `taskflow dev` dies, even by SIGKILL, so
    no orphaned worker keeps running against servers that are gone (Linux only)."""
    die_with_parent(signal.SIGTERM)


def _dev_secret(root: Path) -> str:
    """A random secret kept in the data dir, so dev tokens survive a restart."""
    path = root / "jwt_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _wait_until_ready(port: int, stack: DevStack, timeout_s: float = 60.0) -> None:
    """Print the URLs only once the gateway answers /ready, so they work when shown."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.first_exited() is not None:
            return  # the supervision loop reports it
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:  # refused while starting; HTTPError (503) while dependencies warm up
            pass
        time.sleep(0.1)
    click.echo(f"warning: the gateway did not report ready within {timeout_s:.0f}s", err=True)


def run_dev(port: int, workers: int, concurrency: int) -> int:
    """Start everything, block until a stop signal or a child's death; the exit code."""
    from taskflow.cli._runtime import check_connections
    from taskflow.schema import migrate

    stack = DevStack(environ=dict(os.environ))
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        stack.start_servers()
        # Unsubscribe links in dev mail point at this gateway.
        stack.environ.setdefault("TASKFLOW_PUBLIC_URL", f"http://127.0.0.1:{port}")
        settings = load_settings(stack.environ)
        asyncio.run(check_connections(settings))
        migrate(settings.database_url)
        stack.spawn("gateway", "gateway", "--port", str(port))
        stack.spawn("projector", "projector")
        stack.spawn("coordinator", "coordinator")
        for _ in range(workers):
            stack.spawn("worker", "worker", "--concurrency", str(concurrency))
        _wait_until_ready(port, stack)
        token = issue_token(
            stack.environ["TASKFLOW_JWT_SECRET"],
            "dev-admin",
            "admin",
            7 * 86_400,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
        click.echo(
            f"TaskFlow dev stack is up\n  API:       http://127.0.0.1:{port}/api/v1/tasks\n"
            f"  health:    http://127.0.0.1:{port}/ready\n  redis:     {settings.redis_url}\n"
            f"  postgres:  {settings.database_url}\n{stack.mail_note()}  admin token (7 days):\n{token}\n"
            "Ctrl-C stops everything.",
            err=False,
        )
        while not stopping:
            exited = stack.first_exited()
            if exited is not None:
                click.echo(f"error: {exited[0]} exited with code {exited[1]}; stopping the stack", err=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stack.stop()
