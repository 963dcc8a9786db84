"""Issue 12 benchmark: the client side. In one run, on one machine:

- in-process submit: TaskFlow's ``Producer`` (``fn.submit``, ``submit_many``) against
  taskiq's ``kiq()`` and arq's ``enqueue_job`` (arq in its own virtualenv: it pins
  redis-py < 6), one at a time and in batches;
- REST: single ``POST /api/v1/tasks`` latency (every middleware on, rate limits counted)
  and batch intake (``POST /api/v1/tasks/batch``, 1,000 tasks a request);
- SSE: latency from submit to the event on a feed (one client), then 1,000 concurrent
  feeds on one gateway (memory per feed, delivery latency to all of them).

    python bench/clients.py [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from support.bench import Bench, Config
from support.processes import Proc
from support.report import machine_info, percentile, server_versions
from support.stack import TaskFlowStack
from taskiq_app import make_broker

from taskflow.dev.ports import free_port
from taskflow.gateway.auth import issue_token
from taskflow.producer import Producer
from taskflow.tasks import Call
from taskflow.tasks.builtin import echo

ARQ_VENV = Path(tempfile.gettempdir()) / "taskflow-bench-arq"


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50": percentile(ms, 50), "p99": percentile(ms, 99), "mean": statistics.fmean(ms), "max": max(ms)}


async def _gateway(st: TaskFlowStack, **env: str) -> tuple[str, Proc]:
    port = free_port()
    st.env.update(env)
    gateway = st.spawn("gateway", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(600):
            try:
                if (await http.get("/ready")).status_code == 200:
                    return base, gateway
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not become ready")


# --------------------------------------------------------------------------- submit


async def submit_rates(bench: Bench, n: int, batch: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n, "batch": batch}
    async with TaskFlowStack(bench, "producer") as st, await Producer.connect(st.settings) as producer:
        await echo.submit(producer=producer)  # connect and load the script first
        started = time.perf_counter()
        for i in range(n):
            await echo.submit(i=i, producer=producer)
        out["taskflow_single_per_s"] = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, n, batch):
            await echo.submit_many([Call(i=start + i) for i in range(batch)], producer=producer)
        out["taskflow_batch_per_s"] = n / (time.perf_counter() - started)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    broker = make_broker(bench.cfg.redis_url, queue)
    await broker.startup()
    try:
        task = broker.find_task("bench.noop_async")
        assert task is not None
        started = time.perf_counter()
        for _ in range(n):
            await task.kiq()
        out["taskiq_single_per_s"] = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(0, n, batch):
            await asyncio.gather(*(task.kiq() for _ in range(batch)))
        out["taskiq_batch_per_s"] = n / (time.perf_counter() - started)
    finally:
        await broker.shutdown()
        assert bench.redis is not None
        await bench.redis.delete(queue)
    arq = await asyncio.to_thread(_arq, bench.cfg.redis_url, n, batch)
    out["arq_single_per_s"], out["arq_batch_per_s"] = n / arq["single_s"], n / arq["batch_s"]
    return out


def _arq(redis_url: str, n: int, batch: int) -> dict[str, float]:
    python = ARQ_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ARQ_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "arq==0.26.3"], check=True)
    queue = f"bench-arq-{uuid.uuid4().hex[:8]}"
    script = Path(__file__).resolve().parent / "arq_submit.py"
    done = subprocess.run(
        [str(python), str(script), redis_url, queue, str(n), str(batch)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- REST


async def rest(bench: Bench, requests: int, batches: int) -> dict[str, Any]:
    async with TaskFlowStack(bench, "rest") as st:
        # Limits on and counted, set out of reach: the cost of checking them is measured.
        base, _ = await _gateway(st, TASKFLOW_RATE_LIMIT_PER_USER="100000000", TASKFLOW_RATE_LIMIT_PER_IP="100000000")
        headers = {"Authorization": f"Bearer {issue_token(st.settings.jwt_secret, 'bench')}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as http:
            post_ms: list[float] = []
            for i in range(requests + 100):
                started = time.perf_counter()
                response = await http.post("/api/v1/tasks", json={"task_name": "echo", "kwargs": {"i": i}})
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 201, response.text
                if i >= 100:
                    post_ms.append(elapsed)
            body = json.dumps({"tasks": [{"task_name": "echo", "kwargs": {"i": i}} for i in range(1000)]})
            started = time.perf_counter()
            for _ in range(batches):
                response = await http.post(
                    "/api/v1/tasks/batch", content=body, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 201, response.text[:300]
            batch_s = time.perf_counter() - started
            concurrent_started = time.perf_counter()

            async def post() -> None:
                response = await http.post(
                    "/api/v1/tasks/batch", content=body, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 201

            await asyncio.gather(*(post() for _ in range(batches)))
            concurrent_s = time.perf_counter() - concurrent_started
    return {
        "post_ms": _summary(post_ms),
        "batch_tasks_per_s": 1000 * batches / batch_s,
        "batch_concurrent_tasks_per_s": 1000 * batches / concurrent_s,
    }


# --------------------------------------------------------------------------- SSE


class RawFeed:
    """A minimal SSE client on a raw socket (1,000 of them in one process)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base: str, token: str, params: str = "") -> RawFeed:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /api/v1/events/stream{params} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"feed refused: {status!r}")
        while (await reader.readline()).strip():
            pass
        return cls(reader, writer)

    async def next_data(self) -> dict[str, Any]:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("feed closed")
            if line.startswith(b"data:"):
                return dict(json.loads(line[5:].strip()))

    def close(self) -> None:
        self.writer.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def sse(bench: Bench, samples: int, clients: int, fanout_events: int) -> dict[str, Any]:
    out: dict[str, Any] = {"samples": samples, "clients": clients}
    async with TaskFlowStack(bench, "sse") as st:
        base, gateway = await _gateway(
            st,
            TASKFLOW_RATE_LIMIT_PER_IP="0",
            TASKFLOW_SSE_MAX_STREAMS_PER_USER="100000",
            TASKFLOW_LOG_LEVEL="WARNING",
        )
        secret = st.settings.jwt_secret
        type_filter = "?type=task.submitted"
        async with await Producer.connect(st.settings) as producer:
            one = await RawFeed.open(base, issue_token(secret, "watcher", "admin"), type_filter)
            latencies: list[float] = []
            for i in range(samples + 20):
                started = time.perf_counter()
                handle = await echo.submit(i=i, producer=producer)
                while (await one.next_data())["aggregate_id"] != handle.task_id:
                    pass
                if i >= 20:
                    latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.002)
            one.close()
            out["one_client_ms"] = _summary(latencies)

            rss_before = _rss_kib(gateway.popen.pid)
            feeds = []
            for start in range(0, clients, 100):
                feeds += await asyncio.gather(
                    *(
                        RawFeed.open(base, issue_token(secret, f"u{start + i}", "admin"), type_filter)
                        for i in range(min(100, clients - start))
                    )
                )
            await asyncio.sleep(1.0)
            rss_after = _rss_kib(gateway.popen.pid)
            out["gateway_rss_kib"] = {"before": rss_before, "after": rss_after}
            out["kib_per_feed"] = (rss_after - rss_before) / clients
            fan_ms: list[float] = []
            for i in range(fanout_events):
                started = time.perf_counter()
                handle = await echo.submit(fan=i, producer=producer)

                async def received(feed: RawFeed) -> float:
                    while (await feed.next_data())["aggregate_id"] != handle.task_id:  # noqa: B023
                        pass
                    return (time.perf_counter() - started) * 1000  # noqa: B023

                fan_ms += await asyncio.gather(*(received(f) for f in feeds))
                await asyncio.sleep(0.05)
            for feed in feeds:
                feed.close()
            out["fanout_ms"] = _summary(fan_ms)
            out["fanout_last_client_ms_p99"] = percentile(
                [max(fan_ms[i * clients : (i + 1) * clients]) for i in range(fanout_events)], 99
            )
    return out


# --------------------------------------------------------------------------- main


def _config(a: argparse.Namespace) -> Config:
    return Config(
        tasks=a.tasks,
        runs=1,
        concurrency=10,
        redis_url=a.redis_url,
        pg_admin_url=a.pg_admin_url,
        rest_requests=a.rest_requests,
        rest_warmup=100,
        phase_timeout=600,
        submit_connections=50,
        logdir=Path(tempfile.mkdtemp(prefix="taskflow-bench-")),
        skip_rest=False,
        json_out=a.json,
        phases=[],
        profile_dir=None,
        partitions=1,
        quiet_wait=30,
        max_other_load=0.3,
        noisy_retries=0,
    )


async def main(a: argparse.Namespace) -> None:
    bench = Bench(_config(a))
    await bench.setup()
    try:
        assert bench.redis is not None
        redis_version, pg_version = await server_versions(bench.cfg, bench.redis)
        machine = machine_info(redis_version, pg_version, ("taskiq", "httpx", "litestar"))
        results: dict[str, Any] = {"machine": machine}
        results["submit"] = await submit_rates(bench, a.tasks, a.batch)
        results["rest"] = await rest(bench, a.rest_requests, a.batches)
        results["sse"] = await sse(bench, a.sse_samples, a.sse_clients, a.fanout_events)
    finally:
        await bench.cleanup()
    _report(results)
    if a.json is not None:
        a.json.write_text(json.dumps(results, indent=2))
        print(f"json: {a.json}")


def _report(r: dict[str, Any]) -> None:
    s, rest_r, sse_r = r["submit"], r["rest"], r["sse"]
    print("=" * 100)
    for k, v in r["machine"].items():
        print(f"{k:>11}: {v}")
    print("-" * 100)
    print(f"in-process submit, {s['n']:,} tasks (jobs/s):     one at a time    batches of {s['batch']}")
    for name in ("taskflow", "taskiq", "arq"):
        print(f"  {name:<44} {s[f'{name}_single_per_s']:>12,.0f} {s[f'{name}_batch_per_s']:>16,.0f}")
    for mode in ("single", "batch"):
        peer = max(s[f"taskiq_{mode}_per_s"], s[f"arq_{mode}_per_s"])
        ratio = s[f"taskflow_{mode}_per_s"] / peer
        print(f"  TaskFlow / faster peer ({mode}): {ratio:.2f}   target >= 1.5: {'met' if ratio >= 1.5 else 'NOT met'}")
    p = rest_r["post_ms"]
    print(f"REST POST /api/v1/tasks (sequential): p50 {p['p50']:.2f} ms  p99 {p['p99']:.2f} ms  (target p99 < 5 ms)")
    print(
        f"REST batch intake: {rest_r['batch_tasks_per_s']:,.0f} tasks/s sequential, "
        f"{rest_r['batch_concurrent_tasks_per_s']:,.0f} concurrent (target >= 50,000)"
    )
    o = sse_r["one_client_ms"]
    print(f"SSE submit -> event, one feed: p50 {o['p50']:.1f} ms  p99 {o['p99']:.1f} ms  (target p99 < 50 ms)")
    f = sse_r["fanout_ms"]
    print(
        f"SSE {sse_r['clients']:,} feeds on one gateway: {sse_r['kib_per_feed']:.0f} KiB per feed; "
        f"delivery p50 {f['p50']:.1f} ms p99 {f['p99']:.1f} ms; last feed p99 {sse_r['fanout_last_client_ms_p99']:.1f} ms"
    )
    print("=" * 100)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="in-process submits per system and mode")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rest-requests", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=20, help="batch requests of 1,000 tasks")
    parser.add_argument("--sse-samples", type=int, default=1000)
    parser.add_argument("--sse-clients", type=int, default=1000)
    parser.add_argument("--fanout-events", type=int, default=20)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--json", type=Path, default=None)
    asyncio.run(main(parser.parse_args()))
