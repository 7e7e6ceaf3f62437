"""A monitor equivalent to 24 h of checks, time compressed, on the Temporal backend beside the
local backend: the workflow's history size and the worker's memory over the run.

24 h of checks every 60 s is 1,440 checks; here they come every ``--every`` s (0.05 s: 72 s),
against a local page (monitor_common.BenchServer). ``--kind skill`` runs the monitor skill
(``interval_seconds``, uptime + latency checks); ``--kind handler`` runs ``tb_checks`` (a GET,
a progress report and a memory write per check). Reported, Temporal side: the workflow's
history event count (``fetch_history``; must stay < 10,000) and the RSS of the workers'
process trees (each ``aesop worker`` and its pool) at start / middle / end; local side: the
RSS of the client's process tree (its pool) at the same points. Both should stay flat.

    python bench/temporal_monitor.py [--checks 1440] [--every 0.05] [--kind skill]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _temporal import SERVER_KINDS, Cluster, bench_env
from monitor_common import BenchServer

from aesoperator import Aesoperator, Execution, Task, TaskConfig


def task(kind: str, url: str, checks: int, every: float) -> Task:
    seconds = checks * every
    if kind == "handler":
        return Task(name="tb_checks", inputs={"url": url, "checks": checks, "every": every},
                    config=TaskConfig(max_duration_seconds=seconds + 60))  # fmt: skip
    # The monitor ends 0.5 s before its limit: give it that margin on top.
    return Task(
        name="monitor_24h",
        config=TaskConfig(max_duration_seconds=seconds + 0.5, requests_per_second=1 / every,
                          allow_private_network=True),
        inputs={"url": url, "checks": ["uptime", "latency"], "interval_seconds": every},
    )  # fmt: skip


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def tree(p: psutil.Process) -> list[psutil.Process]:
    try:
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return []


Samples = list[tuple[float, dict[str, float]]]


def local_pool(me: psutil.Process) -> list[psutil.Process]:
    """This process's own pool: its children that run aesoperator.runtime.worker."""
    out = []
    for p in me.children():
        with contextlib.suppress(psutil.Error):
            if "aesoperator.runtime.worker" in " ".join(p.cmdline()):
                out += tree(p)
    return out


def sample_while(done: threading.Event, measure: dict[str, Callable[[], float]]) -> Samples:
    samples: Samples = []
    t0 = time.monotonic()
    while not done.wait(0.5):
        samples.append((time.monotonic() - t0, {k: f() for k, f in measure.items()}))
    return samples


def thirds(samples: Samples, key: str) -> tuple[float, ...]:
    n = len(samples)
    if n < 3:
        return (float("nan"),) * 3
    return tuple(samples[i][1][key] for i in (max(0, n // 20), n // 2, n - 1))


def run(
    client: Aesoperator, t: Task, measure: dict[str, Callable[[], float]]
) -> tuple[Execution, Samples]:
    done = threading.Event()
    e = client.execute_task_async(t)
    waiter = threading.Thread(target=lambda: (e.wait(), done.set()))
    waiter.start()
    samples = sample_while(done, measure)
    waiter.join()
    return e, samples


async def history_events(backend: str, eid: str) -> int:
    from temporalio.client import Client

    from aesoperator.runtime._temporal import parse_target

    target = parse_target(backend)
    client = await Client.connect(target.address, namespace=target.namespace)
    hist = await client.get_workflow_handle(eid).fetch_history()
    return len(hist.events)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=1440, help="1,440 = 24 h at one a minute")
    ap.add_argument("--every", type=float, default=0.05, help="seconds between checks here")
    ap.add_argument("--kind", choices=["skill", "handler"], default="skill")
    ap.add_argument("--server", choices=SERVER_KINDS, default="fast")
    args = ap.parse_args()
    os.environ.update(PYTHONPATH=bench_env()["PYTHONPATH"])
    from _temporal_handlers import register

    rows = []
    with BenchServer() as page, Cluster(workers=2, pool=1, server=args.server) as cluster:
        t = task(args.kind, f"{page.base}/ok", args.checks, args.every)
        with Aesoperator(store=cluster.store, backend=cluster.backend) as c:
            workers = [psutil.Process(w.pid) for w in cluster.workers]
            measure = {f"w{k}": (lambda w=w: rss_mb(tree(w))) for k, w in enumerate(workers)}
            t0 = time.perf_counter()
            e, samples = run(c, t, measure)
            wall = time.perf_counter() - t0
            st = e.status()
            events = asyncio.run(history_events(cluster.backend, e.id))
            rss = [thirds(samples, f"w{k}") for k in range(len(workers))]
            busy = max(range(len(workers)), key=lambda k: rss[k][2] - rss[k][0])
            rows.append(("temporal", st.state.value, wall, events, rss[busy], e.id))
        with tempfile.TemporaryDirectory() as tmp, Aesoperator(data_dir=tmp, pool_size=1) as c:
            register(c)
            c.warmup()
            me = psutil.Process()
            measure = {"pool": lambda: rss_mb(local_pool(me))}
            t0 = time.perf_counter()
            e, samples = run(c, t, measure)
            wall = time.perf_counter() - t0
            rows.append(("local", e.status().state.value, wall, -1, thirds(samples, "pool"), e.id))
    print(f"{args.checks} checks every {args.every:g} s ({args.kind}), "
          f"= {args.checks / 60:g} h at one a minute")  # fmt: skip
    print(f"{'':9s} {'state':10s} {'wall s':>7s} {'history':>8s}   RSS MB start / middle / end")
    for name, state, wall, events, (a, b, z), _ in rows:
        hist = f"{events:8d}" if events >= 0 else f"{'-':>8s}"
        print(f"{name:9s} {state:10s} {wall:7.1f} {hist}   {a:6.1f} / {b:6.1f} / {z:6.1f} "
              f"({z - a:+.1f})")  # fmt: skip
    print("(temporal: the worker tree that ran it; local: the client's pool process)")
    events = rows[0][3]
    print(f"history < 10,000 events: {'yes' if events < 10_000 else 'NO'} ({events})")


if __name__ == "__main__":
    main()
