"""Monitor cadence: how closely checks follow their schedule, and how many happen.

Ours: a monitor task (``requests_per_second=10`` for 60 s, process isolation) against a local
server that records when each request arrives. Baseline, same server, same run: the loop people
write by hand, ``while True: httpx.get(url); time.sleep(interval)`` (it drifts by the duration of
every check). Deviation of check k = (arrival_k - k * interval) - min_j (arrival_j - j * interval).

    .venv/bin/python bench/monitor_cadence.py [--seconds 60] [--rate 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import httpx
from monitor_common import BenchServer, load, pct

from aesoperator import Aesoperator, Task, TaskConfig


def deviations(arrivals: list[float], interval: float) -> list[float]:
    # Checks can only be late: the earliest arrival relative to its slot marks the schedule's
    # origin (network time included), and every deviation is measured from it.
    offsets = [a - k * interval for k, a in enumerate(arrivals)]
    origin = min(offsets)
    return [(o - origin) * 1000 for o in offsets]


def ours(server: BenchServer, seconds: float, rate: float) -> tuple[list[float], dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp, Aesoperator(data_dir=tmp, pool_size=1) as client:
        client.warmup()
        task = Task(
            name="monitor_cadence",
            # The monitor ends 0.5 s before its limit; give it that margin on top.
            config=TaskConfig(max_duration_seconds=seconds + 0.5, requests_per_second=rate,
                              allow_private_network=True),
            inputs={"url": f"{server.base}/ours", "checks": ["uptime", "latency"]},
        )  # fmt: skip
        result = client.execute_task(task)
    return server.arrivals("/ours"), result.data


def naive(server: BenchServer, seconds: float, rate: float) -> tuple[list[float], list[float]]:
    starts = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        starts.append(time.monotonic())
        httpx.get(f"{server.base}/naive")
        time.sleep(1 / rate)
    return server.arrivals("/naive"), starts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=10)
    args = ap.parse_args()
    interval, planned = 1 / args.rate, int(args.seconds * args.rate)
    with BenchServer() as server:
        ours_arrivals, data = ours(server, args.seconds, args.rate)
        naive_arrivals, naive_starts = naive(server, args.seconds, args.rate)
    print(f"cadence: {args.rate:g} checks/s for {args.seconds:g} s = {planned} planned; {load()}")
    head = f"{'':24}{'checks':>8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}"
    # 1. When each check started vs its slot, seen by the client: the scheduler's own accuracy.
    lag: dict[str, float] = data["schedule_lag_ms"]  # type: ignore[index,assignment]
    start_dev = deviations(naive_starts, interval)
    print("check start vs schedule (client side):")
    print(head)
    print(f"{'aesoperator monitor':24}{int(lag['count']):>8}{lag['p50']:>10.2f}{lag['p95']:>10.2f}"
          f"{lag['max']:>10.2f}")  # fmt: skip
    print(f"{'naive sleep loop':24}{len(start_dev):>8}{pct(start_dev, 50):>10.2f}"
          f"{pct(start_dev, 95):>10.2f}{max(start_dev):>10.2f}")  # fmt: skip
    # 2. When each request reached the server: adds the network stack and the server's own
    # scheduling, which a loaded machine delays whatever the client does.
    print("request arrival at the server vs schedule:")
    print(head)
    rows = {}
    for name, arr in (("aesoperator monitor", ours_arrivals), ("naive sleep loop", naive_arrivals)):
        dev = deviations(arr, interval)
        rows[name] = dev
        print(f"{name:24}{len(arr):>8}{pct(dev, 50):>10.2f}{pct(dev, 95):>10.2f}{max(dev):>10.2f}")
    o, n = rows["aesoperator monitor"], rows["naive sleep loop"]
    print(f"checks achieved / planned: ours {len(ours_arrivals)}/{planned}, "
          f"naive {len(naive_arrivals)}/{planned}")  # fmt: skip
    ratio = pct(start_dev, 95) / max(lag["p95"], 1e-9)
    print(f"p95 start deviation ratio naive/ours: {ratio:.0f}x;"
          f" p95 arrival deviation ratio: {pct(n, 95) / max(pct(o, 95), 1e-9):.0f}x; "
          f"target p95 < 20 ms (start): {'met' if lag['p95'] < 20 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
