"""500 short tasks on 2 ``aesop worker``s (Temporal dev server + PostgreSQL on this machine),
beside the local backend on SQLite and the local backend on the same PostgreSQL, same run.

The task (``tb_short`` in _temporal_handlers.py): one ``ctx.step`` and one memory write.
Each side runs twice:

- burst: all ``--tasks`` submitted at once with ``execute_task_async`` from ``--submitters``
  threads (4; each submit waits for Temporal to have the workflow, so one thread alone
  measures that round trip as much as the cluster); tasks/s = tasks / (last completion -
  first submit);
- paced: ``--tasks`` submitted open-loop at ``--rate`` tasks/s; p50/p95 submit→completed, the
  completion seen by the client (the execution's future resolving).

A burst's latencies are queueing time, so latency targets are read from the paced run.
Then, for a sample of the paced Temporal executions, where the time went: the client's submit,
the Temporal history (workflow start, workflow task, activity schedule → start → complete,
workflow end) and the store's timeline (running, planner, completed), as mean milliseconds
per phase.

    python bench/temporal_throughput.py [--tasks 500] [--workers 2] [--pool 2] [--rate 50]
                                        [--submitters 4]

Targets (issue 17): >= 50 tasks/s and p95 < 500 ms on Temporal.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _temporal import SERVER_KINDS, Cluster, bench_env, pct

from aesoperator import Aesoperator, Task


class Side:
    """One client; runs the burst and the paced load on it."""

    def __init__(self, name: str, client: Aesoperator, cluster: Cluster | None = None) -> None:
        self.name, self.client, self.cluster = name, client, cluster
        self.cpu: dict[str, float] = {}
        self.ids: list[str] = []
        self.submitted: dict[str, float] = {}

    def _load(
        self, n: int, rate: float | None, base: int, submitters: int = 1
    ) -> tuple[float, list[float]]:
        ends: dict[str, float] = {}
        left = threading.Semaphore(0)
        starts: dict[str, float] = {}
        period = 1.0 / rate if rate else 0.0
        lock = threading.Lock()

        def submit(k: int) -> None:
            if period:
                delay = t0 + k * period - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            s = time.perf_counter()
            e = self.client.execute_task_async(Task(name="tb_short", inputs={"i": base + k}))
            with lock:
                starts[e.id] = s
                self.submitted[e.id] = time.time() - (time.perf_counter() - s)
            fut = self.client._future(e.id)

            def done(_: Any, eid: str = e.id) -> None:
                ends[eid] = time.perf_counter()
                left.release()

            if fut is None:  # ended already
                done(None)
            else:
                fut.add_done_callback(done)

        # Each submit waits until Temporal has the workflow (a round trip): one thread
        # submitting alone measures that latency as much as the cluster's throughput.
        with concurrent.futures.ThreadPoolExecutor(submitters) as pool:
            t0 = time.perf_counter()
            list(pool.map(submit, range(n)))
        for _ in range(n):
            if not left.acquire(timeout=300):
                raise RuntimeError(f"{self.name}: {len(ends)}/{n} ended in 300 s")
        self.ids = list(starts)
        states = {self.client.get_task_status(i).state.value for i in self.ids[:: max(1, n // 20)]}
        if states != {"completed"}:
            raise RuntimeError(f"{self.name}: states {states}")
        wall = max(ends.values()) - t0
        return n / wall, [(ends[i] - starts[i]) * 1000 for i in starts]

    def run(self, n: int, rate: float, submitters: int = 1) -> dict[str, float]:
        for _ in range(3):  # warm: worker processes, connections, imports
            self.client.execute_task(Task(name="tb_short", inputs={"i": 0}), timeout=60)
        before = self.cluster.cpu() if self.cluster else {}
        burst, blat = self._load(n, None, 0, submitters)
        if self.cluster:
            after = self.cluster.cpu()
            self.cpu = {k: (after[k] - before.get(k, 0.0)) / n * 1000 for k in after}
        paced, lat = self._load(n, rate, n, submitters)
        return {"burst": burst, "burst_p50": pct(blat, 0.5), "paced": paced,
                "p50": pct(lat, 0.5), "p95": pct(lat, 0.95), "max": max(lat)}  # fmt: skip


def _ts(t: Any) -> float:
    return t.ToDatetime().timestamp() if hasattr(t, "ToDatetime") else t.timestamp()


async def _histories(backend: str, ids: list[str]) -> list[dict[str, float]]:
    from temporalio.client import Client

    from aesoperator.runtime._temporal import parse_target

    target = parse_target(backend)
    client = await Client.connect(target.address, namespace=target.namespace)
    out = []
    for eid in ids:
        hist = await client.get_workflow_handle(eid).fetch_history()
        first: dict[str, float] = {}
        for ev in hist.events:
            kind = ev.WhichOneof("attributes").removesuffix("_event_attributes")
            first.setdefault(kind, _ts(ev.event_time))
            first[kind + "#last"] = _ts(ev.event_time)
        first["events"] = len(hist.events)
        out.append(first)
    return out


def breakdown(client: Aesoperator, backend: str, side: Side, sample: int) -> None:
    ids = side.ids[len(side.ids) // 4 :: max(1, len(side.ids) // (2 * sample))][:sample]
    hists = asyncio.run(_histories(backend, ids))
    phases: dict[str, list[float]] = {}

    def add(name: str, a: float | None, b: float | None) -> None:
        if a is not None and b is not None:
            phases.setdefault(name, []).append((b - a) * 1000)

    for eid, h in zip(ids, hists, strict=True):
        ev = client.get_events(eid)
        running = next((e.at.timestamp() for e in ev if e.kind == "state"), None)
        planner = next((e.at.timestamp() for e in ev if e.kind == "planner"), None)
        ended = [e.at.timestamp() for e in ev if e.kind == "state"][-1]
        st = h.get("workflow_execution_started")
        add("client submit → workflow started (row insert + start RPC)", side.submitted[eid], st)
        add("workflow started → first workflow task started", st, h.get("workflow_task_started"))
        add("first workflow task started → completed",
            h.get("workflow_task_started"), h.get("workflow_task_completed"))  # fmt: skip
        add("workflow task completed → activity scheduled",
            h.get("workflow_task_completed"), h.get("activity_task_scheduled"))  # fmt: skip
        add("activity scheduled → activity started (dispatch)",
            h.get("activity_task_scheduled"), h.get("activity_task_started"))  # fmt: skip
        add("activity started → store 'running' (worker-process handoff)",
            h.get("activity_task_started"), running)  # fmt: skip
        add("store 'running' → 'planner'", running, planner)
        add("'planner' → store 'completed' (handler: step + memory)", planner, ended)
        add("store 'completed' → activity completed",
            ended, h.get("activity_task_completed"))  # fmt: skip
        add("activity completed → workflow completed",
            h.get("activity_task_completed"), h.get("workflow_execution_completed"))  # fmt: skip
        add("total in Temporal (started → completed)", st, h.get("workflow_execution_completed"))
        phases.setdefault("history events", []).append(h["events"])
    print(f"\nwhere the time goes ({len(ids)} paced Temporal executions, mean / max ms):")
    for name, vals in phases.items():
        print(f"  {name:62s} {statistics.mean(vals):7.1f} {max(vals):7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pool", type=int, default=2, help="pool size of each aesop worker")
    ap.add_argument("--local-pool", type=int, default=None, help="default: workers * pool")
    ap.add_argument("--rate", type=float, default=50.0, help="paced load, tasks/s")
    ap.add_argument(
        "--submitters",
        type=int,
        default=4,
        help="client threads submitting (each submit waits for the workflow start)",
    )
    ap.add_argument("--sample", type=int, default=20, help="executions whose history is read")
    ap.add_argument("--server", choices=SERVER_KINDS, default="fast", help="dev server storage")
    ap.add_argument(
        "--eager",
        action="store_true",
        help="server setting system.enableActivityEagerExecution (activity handed to the "
        "worker that completes the workflow task, skipping the matching service)",
    )
    ap.add_argument("--dynamic", action="append", default=[], metavar="KEY=VALUE",
                    help="another server setting (dynamic config), e.g. "
                    "matching.numTaskqueueReadPartitions=1")  # fmt: skip
    ap.add_argument("--only", choices=["temporal", "local", "localpg"], action="append")
    args = ap.parse_args()
    os.environ.update(PYTHONPATH=bench_env()["PYTHONPATH"])  # the local pools import handlers
    from _temporal_handlers import register

    local_pool = args.local_pool or args.workers * args.pool
    only = set(args.only or ["temporal", "local", "localpg"])
    rows: dict[str, dict[str, float]] = {}
    with Cluster(
        args.workers,
        args.pool,
        server=args.server,
        eager=args.eager,
        dynamic=dict(kv.split("=", 1) for kv in args.dynamic),
    ) as cluster:
        if "temporal" in only:
            with Aesoperator(store=cluster.store, backend=cluster.backend) as c:
                side = Side("temporal", c, cluster)
                rows["temporal"] = side.run(args.tasks, args.rate, args.submitters)
                print("temporal:", {k: round(v, 1) for k, v in rows["temporal"].items()})
                print(f"\nCPU ms per task in the burst (2 cores: 2000 ms/s in all; load average "
                      f"{os.getloadavg()[0]:.1f}):")  # fmt: skip
                for part, ms in side.cpu.items():
                    print(f"  {part:30s} {ms:6.1f}")
                print(f"  {'total':30s} {sum(side.cpu.values()):6.1f}")
                breakdown(c, cluster.backend, side, args.sample)
        if "local" in only:
            with (
                tempfile.TemporaryDirectory() as tmp,
                Aesoperator(data_dir=tmp, pool_size=local_pool) as c,
            ):
                register(c)
                c.warmup()
                rows["local"] = Side("local", c).run(args.tasks, args.rate, args.submitters)
        if "localpg" in only:
            store = cluster.pg_url("tb_local")
            with Aesoperator(store=store, backend="process", pool_size=local_pool) as c:
                register(c)
                c.warmup()
                rows["localpg"] = Side("localpg", c).run(args.tasks, args.rate, args.submitters)
    names = {"temporal": f"temporal ({args.workers}x{args.pool}, {args.server} server)",
             "local": f"local, SQLite (pool {local_pool})",
             "localpg": f"local, PostgreSQL (pool {local_pool})"}  # fmt: skip
    print(f"\n{args.tasks} tasks from {args.submitters} submitting thread(s); burst = all at "
          f"once, paced = {args.rate:g}/s open loop")  # fmt: skip
    print(f"{'':40s} {'burst/s':>8s} {'paced/s':>8s} {'p50 ms':>7s} {'p95 ms':>7s} {'max ms':>7s}")
    for key, r in rows.items():
        print(f"{names[key]:40s} {r['burst']:8.1f} {r['paced']:8.1f} {r['p50']:7.1f} "
              f"{r['p95']:7.1f} {r['max']:7.1f}")  # fmt: skip
    t = rows.get("temporal")
    for key in ("local", "localpg"):
        if t and key in rows:
            b = rows[key]
            print(f"ratio temporal / {key}: burst {t['burst'] / b['burst']:.2f}, "
                  f"p95 {t['p95'] / b['p95']:.1f}x")  # fmt: skip
    if t:
        ok = t["burst"] >= 50 and t["p95"] < 500
        print(f"targets (>= 50 tasks/s, p95 < 500 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
