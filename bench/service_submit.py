"""1,000 short tasks submitted over HTTP vs through the local Python API.

Local: one `Aesoperator` on a tmp data dir, `execute_task_async` for each no-op task, then wait
for all. HTTP: a served instance (`aesop serve`, same pool size) and ``--concurrency`` client
connections, each POSTing `/v1/tasks?wait=true` (answered when the task has ended). Throughput =
tasks / wall time from the first submit to the last completion; both sides use the same
worker pool size.

    python bench/service_submit.py [--tasks 1000] [--concurrency 8] [--pool 2]

Target (issue 16): HTTP / local >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import Served

from aesoperator import Aesoperator, Task


def local(n: int, pool: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        client = Aesoperator(data_dir=tmp, pool_size=pool)
        client.handler("noop")(lambda ctx: None)
        client.warmup()
        client.execute_task(Task(name="noop"))
        t0 = time.perf_counter()
        runs = [client.execute_task_async(Task(name="noop")) for _ in range(n)]
        for e in runs:
            assert e.wait().state == "completed"
        rate = n / (time.perf_counter() - t0)
        client.close()
    return rate


async def _http(srv: Served, n: int, conc: int) -> float:
    """``conc`` connections, each POSTing a task with ``?wait=true`` (answered when it ends)."""
    limits = httpx.Limits(max_connections=conc)
    async with httpx.AsyncClient(
        base_url=srv.url, headers=srv.headers, timeout=120, limits=limits
    ) as c:
        (await c.post("/v1/tasks?wait=true", json={"name": "noop"})).raise_for_status()
        left = n
        t0 = time.perf_counter()

        async def submit() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                r = await c.post("/v1/tasks?wait=true", json={"name": "noop"})
                r.raise_for_status()
                assert r.json()["state"] == "completed", r.text

        await asyncio.gather(*(submit() for _ in range(conc)))
        return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--pool", type=int, default=2)
    args = ap.parse_args()
    loc = local(args.tasks, args.pool)
    with Served(imports=["_service_handlers"], pool_size=args.pool) as srv:
        over_http = asyncio.run(_http(srv, args.tasks, args.concurrency))
    print(f"local Python API: {loc:7.1f} tasks/s")
    print(f"over HTTP:        {over_http:7.1f} tasks/s")
    print(f"ratio HTTP/local: {over_http / loc:.2f}   (target >= 0.5)")


if __name__ == "__main__":
    main()
