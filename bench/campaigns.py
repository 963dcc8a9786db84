"""Issue 14 benchmark: campaigns end to end on this machine.

1. **Throughput:** 10,000 recipients, the rate limit lifted, through the real stack: the
   gateway (create, start), workers (``--workers``, default one per core: 2 at
   ``--concurrency`` 100, as the other throughput benchmarks), the projector and the coordinator, into a local
   SMTP sink in its own process. Timed from the start request until every recipient is
   projected SENT in PostgreSQL; also the time to the first mail and the CPU each process
   used per mail. Run twice, once per sink: the lean one (``support/smtp_sink.py``, the
   headline: a real mail server costs the sender nothing) and aiosmtpd (what the tests use,
   about 1 ms of CPU per mail of this machine's two cores).
2. **Rate accuracy:** a campaign limited to ``--rate-limit`` (600/min), run for
   ``--rate-minutes`` (5): the rate that held (RecipientSent events per second of stream
   time) against the limit, and what waiting for the rate cost (events, cores).

    python bench/campaigns.py [--recipients 10000] [--rate-minutes 5] [--sink lean|aiosmtpd|both]
                              [--workers 2] [--concurrency 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from support.bench import unlink_matching, with_database
from support.cpu import ServerCpu, group_cpu_seconds
from support.report import machine_info

from taskflow.dev.ports import free_port
from taskflow.events import RecipientSent, decode
from taskflow.gateway.auth import issue_token
from taskflow.schema import migrate
from taskflow.settings import load_settings
from taskflow.streams.keyspace import Keyspace

BIN = Path(sys.executable).parent


class Stack:
    """A namespace, a fresh database, and TaskFlow's processes plus an SMTP sink."""

    def __init__(self, redis_url: str, admin_url: str, concurrency: int, sink: str = "lean", workers: int = 1) -> None:
        run = uuid.uuid4().hex[:10]
        self.db = f"bench_campaigns_{run}"
        self.admin_url = admin_url
        self.port = free_port()
        self.smtp_port = free_port()
        self.concurrency = concurrency
        self.sink = sink
        self.workers = workers
        self.logs = Path(tempfile.mkdtemp(prefix="bench-campaigns-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
        self.env.update(
            TASKFLOW_REDIS_URL=redis_url,
            TASKFLOW_DATABASE_URL=with_database(admin_url, self.db),
            TASKFLOW_NAMESPACE=f"benchcamp{run}",
            TASKFLOW_JWT_SECRET=secrets.token_hex(32),
            TASKFLOW_LOG_LEVEL="WARNING",
            TASKFLOW_SMTP_HOST="127.0.0.1",
            TASKFLOW_SMTP_PORT=str(self.smtp_port),
            TASKFLOW_SMTP_FROM="Bench <bench@example.com>",
            TASKFLOW_PUBLIC_URL=f"http://127.0.0.1:{self.port}",
            # The gateway's per-user request limits are not what is measured.
            TASKFLOW_RATE_LIMIT_PER_USER="0",
            TASKFLOW_RATE_LIMIT_PER_IP="0",
        )
        self.settings = load_settings(self.env)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = issue_token(self.settings.jwt_secret, "bench", "user")

    async def __aenter__(self) -> Stack:
        admin = await asyncpg.connect(self.admin_url)
        await admin.execute(f"CREATE DATABASE {self.db}")
        await admin.close()
        await asyncio.to_thread(migrate, self.env["TASKFLOW_DATABASE_URL"])
        if self.sink == "aiosmtpd":
            argv = [str(BIN / "aiosmtpd"), "-n", "-l", f"127.0.0.1:{self.smtp_port}", "-c", "aiosmtpd.handlers.Sink"]
        else:
            argv = [
                sys.executable,
                "-m",
                "support.smtp_sink",
                "--port",
                str(self.smtp_port),
                "--report",
                str(self.sink_report),
            ]
        self._spawn("sink", argv)
        self._spawn("gateway", [str(BIN / "taskflow"), "gateway", "--port", str(self.port)])
        self._spawn("projector", [str(BIN / "taskflow"), "projector"])
        self._spawn("coordinator", [str(BIN / "taskflow"), "coordinator"])
        for n in range(self.workers):
            self._spawn(f"worker{n or ''}", [str(BIN / "taskflow"), "worker", "--concurrency", str(self.concurrency)])
        async with httpx.AsyncClient(base_url=self.base) as http:
            for _ in range(300):
                try:
                    if (await http.get("/ready")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit(f"the gateway did not get ready; logs in {self.logs}")

    @property
    def sink_report(self) -> Path:
        return self.logs / "sink.json"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each of the stack's processes (with its children)."""
        return {name: group_cpu_seconds(proc.pid) for name, proc in self.procs.items()}

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        admin = await asyncpg.connect(self.admin_url)
        await admin.execute(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        await admin.close()
        redis = Redis.from_url(self.env["TASKFLOW_REDIS_URL"], decode_responses=True)
        await unlink_matching(redis, self.env["TASKFLOW_NAMESPACE"])  # the machine's Redis is shared
        await redis.aclose()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def create_and_start(stack: Stack, n: int, rate: int) -> tuple[str, float]:
    recipients = [{"email": f"user{i}@example.com", "name": f"User {i}", "fields": {"code": f"C{i}"}} for i in range(n)]
    async with httpx.AsyncClient(base_url=stack.base, timeout=120) as http:
        created = await http.post(
            "/api/v1/campaigns",
            json={
                "name": "Bench",
                "template_subject": "Hello {{ name }}",
                "template_body": "<p>Hi {{ name }}, your code is <b>{{ code }}</b>.</p>",
                "rate_limit_per_minute": rate,
                "recipients": recipients,
            },
            headers=stack.headers,
        )
        if created.status_code != 201:
            raise SystemExit(f"create: {created.status_code} {created.text[:500]}")
        campaign_id = str(created.json()["campaign_id"])
        started_at = time.time()
        started = await http.post(f"/api/v1/campaigns/{campaign_id}/start", headers=stack.headers)
        if started.status_code != 202:
            raise SystemExit(f"start: {started.status_code} {started.text[:500]}")
    return campaign_id, started_at


async def sent_times(redis: Redis, stack: Stack, campaign_id: str) -> list[float]:
    """When each RecipientSent of the campaign was appended (stream-id time, s)."""
    ks = Keyspace.of(stack.settings)
    times: list[float] = []
    start = "-"
    while True:
        page = await redis.xrange(ks.events_of(campaign_id), min=start, max="+", count=5000)
        for entry_id, fields in page:
            if fields.get("type") == "campaign.recipient_sent":
                event = decode(entry_id, fields["data"].encode())
                if isinstance(event, RecipientSent) and event.aggregate_id == campaign_id:
                    times.append(int(entry_id.split("-")[0]) / 1000)
        if len(page) < 5000:
            return times
        start = "(" + page[-1][0]


async def events_appended(redis: Redis, stack: Stack) -> int:
    """Events ever appended to the stack's event streams (trimming does not lower it)."""
    ks = Keyspace.of(stack.settings)
    total = 0
    for p in ks.all_partitions:
        with contextlib.suppress(ResponseError):  # no such stream yet
            total += int((await redis.xinfo_stream(ks.events(p)))["entries-added"])
    return total


async def throughput(
    redis: Redis, admin_url: str, redis_url: str, n: int, concurrency: int, sink: str, workers: int
) -> dict[str, Any]:
    async with Stack(redis_url, admin_url, concurrency, sink, workers) as stack:
        pool = await asyncpg.create_pool(stack.env["TASKFLOW_DATABASE_URL"], min_size=1, max_size=2)
        cpu_before, procs_before = await ServerCpu.sample(redis), stack.cpu_seconds()
        campaign_id, started_at = await create_and_start(stack, n, rate=100_000)  # the highest allowed: lifted
        deadline = time.time() + 600
        while time.time() < deadline:
            # COMPLETED is projected after every recipient's event (one stream, in order):
            # one cheap row to look at every 20 ms (the recipients are counted below).
            status = await pool.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1::uuid", campaign_id)
            if status == "COMPLETED":
                break
            await asyncio.sleep(0.02)
        projected_at = time.time()
        projected = await pool.fetchval(
            "SELECT count(*) FROM email_recipients WHERE campaign_id = $1::uuid AND status <> 'PENDING'", campaign_id
        )
        if projected != n:
            raise SystemExit(f"{projected} of {n} recipients projected (campaign {status}); logs in {stack.logs}")
        procs_after = stack.cpu_seconds()
        cpu = cpu_before.until(
            await ServerCpu.sample(redis), {name: procs_after[name] - procs_before[name] for name in procs_after}
        )
        status = await pool.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1::uuid", campaign_id)
        unsent = await pool.fetchval(
            "SELECT count(*) FROM email_recipients WHERE campaign_id = $1::uuid AND status <> 'SENT'", campaign_id
        )
        if unsent:
            raise SystemExit(f"{unsent} recipients were not SENT; logs in {stack.logs}")
        await pool.close()
        times = sorted(await sent_times(redis, stack, campaign_id))
    elapsed = projected_at - started_at
    delivered = json.loads(stack.sink_report.read_text())["messages"] if sink == "lean" else None
    return {
        "sink": sink,
        "workers": workers,
        "concurrency": concurrency,
        "delivered_to_sink": delivered,
        "cpu_ms_per_mail": {name: round(seconds * 1000 / n, 3) for name, seconds in cpu.items()},
        "cores_used": round(sum(cpu.values()) / elapsed, 2),
        "recipients": n,
        "sent": len(times),
        "campaign_status": status,
        "seconds_start_to_all_projected": elapsed,
        "mails_per_s_end_to_end": n / elapsed,
        "seconds_start_to_first_mail": (times[0] - started_at) if times else None,
        "mails_per_s_while_sending": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else None,
    }


async def rate_accuracy(
    redis: Redis, admin_url: str, redis_url: str, minutes: float, concurrency: int, workers: int, limit: int
) -> dict[str, Any]:
    n = int(limit * minutes) + limit  # more than the window can send
    async with Stack(redis_url, admin_url, concurrency, "lean", workers) as stack:
        cpu_before, procs_before = await ServerCpu.sample(redis), stack.cpu_seconds()
        events_before = await events_appended(redis, stack)
        campaign_id, started_at = await create_and_start(stack, n, rate=limit)
        await asyncio.sleep(minutes * 60 + 2)
        elapsed = time.time() - started_at
        events = await events_appended(redis, stack) - events_before
        procs_after = stack.cpu_seconds()
        cpu = cpu_before.until(
            await ServerCpu.sample(redis), {name: procs_after[name] - procs_before[name] for name in procs_after}
        )
        times = sorted(await sent_times(redis, stack, campaign_id))
    window = [t for t in times if t <= times[0] + minutes * 60]
    measured = (len(window) - 1) / (window[-1] - window[0]) * 60 if len(window) > 1 else 0.0
    per_minute = [
        sum(1 for t in window if times[0] + 60 * m <= t < times[0] + 60 * (m + 1)) for m in range(int(minutes))
    ]
    return {
        "workers": workers,
        "limit_per_minute": limit,
        "minutes": minutes,
        "sent_in_window": len(window),
        "measured_per_minute": measured,
        "deviation_percent": (measured - limit) / limit * 100,
        "per_minute": per_minute,
        "seconds_start_to_first_mail": times[0] - started_at if times else None,
        # What waiting for the rate costs: every event appended meanwhile, and the CPU.
        "events_appended": events,
        "events_per_mail": round(events / max(1, len(times)), 2),
        "cores_used": round(sum(cpu.values()) / elapsed, 2),
        "cpu_s": {name: round(seconds, 2) for name, seconds in cpu.items()},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate-minutes", type=float, default=5.0)
    parser.add_argument("--rate-limit", type=int, default=600, help="the rate phase's limit per minute")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (one per core)")
    parser.add_argument("--concurrency", type=int, default=100, help="each worker's --concurrency")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--skip-rate", action="store_true")
    parser.add_argument("--sink", choices=("lean", "aiosmtpd", "both"), default="both")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    redis = Redis.from_url(args.redis_url, decode_responses=True)
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat()}
    try:
        sinks = ("lean", "aiosmtpd") if args.sink == "both" else (args.sink,)
        for sink in sinks:
            found = await throughput(
                redis, args.pg_admin_url, args.redis_url, args.recipients, args.concurrency, sink, args.workers
            )
            results["throughput" if sink == sinks[0] else f"throughput_{sink}"] = found
            print(
                f"throughput ({sink} sink): {found['recipients']:,} recipients, all projected SENT "
                f"{found['seconds_start_to_all_projected']:.1f} s after the start request = "
                f"{found['mails_per_s_end_to_end']:,.0f} mails/s end to end (target >= 1,000); first mail "
                f"{found['seconds_start_to_first_mail']:.2f} s after the start; "
                f"{found['mails_per_s_while_sending']:,.0f} mails/s while sending; campaign {found['campaign_status']}"
                + (
                    f"; {found['delivered_to_sink']:,} delivered to the sink"
                    if found["delivered_to_sink"] is not None
                    else ""
                )
            )
            print(f"  cores used {found['cores_used']}; CPU ms per mail: {found['cpu_ms_per_mail']}")
        if not args.skip_rate:
            rate = await rate_accuracy(
                redis,
                args.pg_admin_url,
                args.redis_url,
                args.rate_minutes,
                args.concurrency,
                args.workers,
                args.rate_limit,
            )
            results["rate"] = rate
            print(
                f"rate: limit {rate['limit_per_minute']}/min for {rate['minutes']:g} min: "
                f"{rate['measured_per_minute']:.1f}/min "
                f"({rate['deviation_percent']:+.2f} %, target within 2 %); per minute {rate['per_minute']}; "
                f"{rate['events_appended']:,} events ({rate['events_per_mail']} per mail), "
                f"{rate['cores_used']} cores used"
            )
        version = str((await redis.info("server"))["redis_version"])
        conn = await asyncpg.connect(args.pg_admin_url)
        pg = str(await conn.fetchval("SHOW server_version"))
        await conn.close()
        results["machine"] = machine_info(version, pg, ("aiosmtplib", "aiosmtpd"))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
