"""Monitor cost: memory after 1,000 and after 100,000 checks (must be flat), CPU per 1,000
checks, and CPU while waiting between checks.

Ours: a monitor task run inline (``isolation="inline"``, so this process *is* the worker and
psutil sees everything it costs: client, runtime, store and monitor) at a high rate against a
local server in another process. Baseline for CPU, same server, same run: ``httpx.AsyncClient``
doing the same GETs (a new connection each, as a monitor needs), without any bookkeeping.

    .venv/bin/python bench/monitor_cost.py [--checks 100000] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import httpx
import psutil
from monitor_common import BenchServer, load

from aesoperator import Aesoperator, Task, TaskConfig

ME = psutil.Process()


def sample() -> tuple[float, float]:
    cpu = ME.cpu_times()
    return ME.memory_info().rss / 2**20, cpu.user + cpu.system


def wait_count(server: BenchServer, n: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while server.count() < n:
        if time.monotonic() > end:
            raise SystemExit(f"only {server.count()} checks after {timeout:.0f} s (wanted {n})")
        time.sleep(0.05)


def ours(server: BenchServer, checks: int, rate: float) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, Aesoperator(data_dir=tmp, isolation="inline") as c:
        # Room for a loaded machine that cannot keep the rate: this measures cost, not speed.
        seconds = checks / rate * 6 + 60
        task = Task(
            name="monitor_cost",
            config=TaskConfig(max_duration_seconds=seconds, requests_per_second=rate,
                              concurrent_requests=16, allow_private_network=True),
            inputs={"url": f"{server.base}/cost", "checks": ["uptime", "latency"],
                    "alert_threshold_ms": 1000},
        )  # fmt: skip
        execution = c.execute_task_async(task)
        wait_count(server, 1_000, 60)
        out["rss_1k"], cpu_1k = sample()
        t_1k = time.monotonic()
        for mark in (10_000, checks // 2):
            wait_count(server, mark, seconds)
            out[f"rss_{mark // 1000}k"] = sample()[0]
        wait_count(server, checks, seconds)
        out["rss_end"], cpu_end = sample()
        out["wall"] = time.monotonic() - t_1k
        n = server.count()
        out["cpu_per_1k"] = (cpu_end - cpu_1k) / ((n - 1_000) / 1_000)
        execution.cancel()
        status = execution.wait(30)
        assert status.state == "cancelled", status.state
        assert status.result is not None
        out["recorded"] = status.result.data["checks_run"]
        out["result_kb"] = len(status.result.model_dump_json()) / 1024

        # Waiting: a monitor at one check per 10 s; CPU over 20 s of (mostly) sleeping.
        idle = Task(
            name="monitor_idle",
            config=TaskConfig(max_duration_seconds=21, requests_per_second=0.1,
                              allow_private_network=True),
            inputs={"url": f"{server.base}/idle"},
        )  # fmt: skip
        # Baseline: the same client with nothing to do (its runtime's own housekeeping).
        _, cpu0 = sample()
        time.sleep(20)
        _, cpu1 = sample()
        out["client_idle_cpu_ms_per_min"] = (cpu1 - cpu0) * 1000 * 3
        execution = c.execute_task_async(idle)
        time.sleep(0.5)
        _, cpu0 = sample()
        time.sleep(20)
        _, cpu1 = sample()
        out["idle_cpu_ms_per_min"] = (cpu1 - cpu0) * 1000 * 3
        execution.wait(30)
    return out


async def _httpx(url: str, n: int, concurrency: int) -> None:
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits) as client:
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                r = await client.get(url)
                assert r.status_code == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def baseline(server: BenchServer, n: int) -> float:
    _, cpu0 = sample()
    asyncio.run(_httpx(f"{server.base}/httpx", n, 16))
    _, cpu1 = sample()
    return (cpu1 - cpu0) / (n / 1000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--baseline-checks", type=int, default=10_000)
    args = ap.parse_args()
    with BenchServer() as server:
        o = ours(server, args.checks, args.rate)
        b = baseline(server, args.baseline_checks)
    print(f"cost: {args.checks:,} checks at {args.rate:g}/s, inline (this process is the worker); "
          f"{load()}")  # fmt: skip
    marks = [k for k in o if k.startswith("rss_")]
    print("RSS MB: " + ", ".join(f"{k[4:]} {o[k]:.1f}" for k in marks))
    print(
        f"RSS growth from 1k to {args.checks // 1000}k checks: {o['rss_end'] - o['rss_1k']:+.1f} MB"
    )
    print(f"checks recorded: {o['recorded']:,}; stored result {o['result_kb']:.0f} KB")
    print(f"CPU s per 1,000 checks: aesoperator monitor {o['cpu_per_1k']:.3f} "
          f"(client + runtime + store + monitor), httpx.AsyncClient {b:.3f} "
          f"(requests only); ratio {o['cpu_per_1k'] / b:.2f}x")  # fmt: skip
    idle, base = o["idle_cpu_ms_per_min"], o["client_idle_cpu_ms_per_min"]
    print(f"CPU while waiting (1 check / 10 s): {idle:.0f} ms per minute; "
          f"the same client with no task: {base:.0f} ms per minute")  # fmt: skip


if __name__ == "__main__":
    main()
