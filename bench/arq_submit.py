"""arq's enqueue side for ``bench/clients.py``, run in its own virtualenv: arq 0.26 pins
redis-py < 6, TaskFlow needs 7. Prints one JSON line: seconds for N enqueues, one at a
time and in concurrent batches.

    python bench/arq_submit.py REDIS_URL QUEUE N BATCH
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from arq import create_pool
from arq.connections import RedisSettings


async def main(url: str, queue: str, n: int, batch: int) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url), default_queue_name=queue)
    try:
        started = time.perf_counter()
        for i in range(n):
            await pool.enqueue_job("noop", _job_id=f"{queue}:s{i}")
        one_at_a_time = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, n, batch):
            await asyncio.gather(*(pool.enqueue_job("noop", _job_id=f"{queue}:b{start + i}") for i in range(batch)))
        batched = time.perf_counter() - started
        await pool.delete(queue)
        # Job ids carry the queue name, so only this run's keys go.
        keys = [k async for k in pool.scan_iter(match=f"arq:job:{queue}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await pool.delete(*keys[start : start + 1000])
    finally:
        await pool.aclose()
    print(json.dumps({"single_s": one_at_a_time, "batch_s": batched}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
