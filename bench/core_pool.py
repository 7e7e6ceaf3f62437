"""Core runtime figures: submit→running latency and throughput of the warm pool.

Submits N no-op handler tasks with ``execute_task_async`` and waits for all, with process
isolation (the default) and, as the baseline, the same calls run inline (no isolation).
Prints p50/p95 submit→running latency, tasks/s and the ratio; then the RSS of an idle
client and of one idle worker.

    .venv/bin/python bench/core_pool.py [--tasks 200] [--pool 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import psutil

from aesoperator import Aesoperator, Task


def noop(ctx: object) -> None:
    return None


def run(isolation: str, n: int, pool: int, paced: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        client = Aesoperator(data_dir=tmp, isolation=isolation, pool_size=pool)  # type: ignore[arg-type]
        client.handler("noop")(noop)
        client.warmup()
        client.execute_task(Task(name="noop"))  # first job ships the handler
        t0 = time.perf_counter()
        if paced:  # one at a time: pure dispatch latency, no queueing
            executions = []
            for _ in range(n):
                e = client.execute_task_async(Task(name="noop"))
                e.wait()
                executions.append(e)
        else:  # a burst: all submitted at once, queued behind the pool
            executions = [client.execute_task_async(Task(name="noop")) for _ in range(n)]
            for e in executions:
                e.wait()
        wall = time.perf_counter() - t0
        lat = []
        for e in executions:
            s = e.status()
            assert s.state == "completed", s
            assert s.started_at is not None
            lat.append((s.started_at - s.created_at).total_seconds() * 1000)
        client.close()
    lat.sort()
    return {
        "p50": statistics.median(lat),
        "p95": lat[int(len(lat) * 0.95) - 1],
        "rate": n / wall,
    }


def rss() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        client = Aesoperator(data_dir=tmp, pool_size=1)
        client.warmup()
        time.sleep(0.5)
        me = psutil.Process()
        kids = me.children(recursive=True)
        worker = max(kids, key=lambda p: p.memory_info().rss) if kids else None
        result = (
            me.memory_info().rss / 1048576,
            worker.memory_info().rss / 1048576 if worker else float("nan"),
        )
        client.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--pool", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.tasks} no-op tasks, pool of {args.pool} warm workers")
    print(f"{'mode':<28}{'p50 ms':>10}{'p95 ms':>10}{'tasks/s':>10}")
    rows = {}
    for label, iso, paced in (
        ("inline, burst (baseline)", "inline", False),
        ("process pool, burst", "process", False),
        ("inline, one at a time", "inline", True),
        ("process pool, one at a time", "process", True),
    ):
        r = run(iso, args.tasks, args.pool, paced)
        rows[label] = r
        print(f"{label:<28}{r['p50']:>10.1f}{r['p95']:>10.1f}{r['rate']:>10.0f}")
    b, o = rows["inline, burst (baseline)"], rows["process pool, burst"]
    print(f"throughput ratio process/inline (burst): {o['rate'] / b['rate']:.2f}x")
    print("target: p50 submit->running < 50 ms with the warm pool")
    client_mb, worker_mb = rss()
    print(f"RSS idle client: {client_mb:.0f} MB; idle worker: {worker_mb:.0f} MB")


if __name__ == "__main__":
    main()
