"""Recovery after ``kill -9`` of the worker running a task, Temporal backend beside the local one.

Temporal: 2 ``aesop worker``s (pool 1 each). A task of ``--steps`` ``ctx.step``s 0.25 s apart
(``tb_slow_steps``) starts; ``--after`` s later the worker running it is killed with SIGKILL,
with its pool process, as when a machine dies. ``--phase followed`` (the default): counted
from when an activity on that worker's own queue follows the run (found from the workflow's
pending activity, whose worker identity is host:pid); a lost worker is then noticed by its
missing heartbeats. ``--phase local``: counted from when the run started, still inside the
first workflow task's local activity (the worker is the execution's owner in the store); a
lost worker is then noticed by the workflow task's timeout (the same 5 s). Measured: from the
kill to the ``resumed`` timeline event the other worker writes when the activity starts again
there (the task is running again; its completed steps are read back, not run again). Target:
< heartbeat timeout + 2 s. A new worker replaces the killed one before the next round.
Local (same run): the same task on ``Aesoperator(data_dir=tmp, pool_size=1)``, its pool
process killed the same way; measured: from the kill to the execution's next timeline event,
and how it ended.

    python bench/temporal_recovery.py [--rounds 5] [--steps 40] [--after 2] [--phase followed]
    python bench/temporal_recovery.py --phase local --after 0.3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _temporal import SERVER_KINDS, Cluster, bench_env

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.runtime._temporal import parse_target
from aesoperator.runtime._temporal_workflow import HEARTBEAT_TIMEOUT_S, WORKFLOW_TASK_TIMEOUT_S


def kill_tree(pid: int) -> float:
    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    for p in procs:
        os.kill(p.pid, signal.SIGKILL)
    return time.time()


async def running_on(backend: str, eid: str, timeout: float = 30) -> int:
    """The pid of the worker whose activity of ``eid`` has started."""
    from temporalio.client import Client

    target = parse_target(backend)
    client = await Client.connect(target.address, namespace=target.namespace)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        desc = await client.get_workflow_handle(eid).describe()
        for act in desc.raw_description.pending_activities:
            if act.last_worker_identity and act.last_started_time.seconds:
                return int(act.last_worker_identity.rsplit(":", 1)[1])
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{eid}: no activity started in {timeout} s")


def owner_pid(cluster: Cluster, eid: str, timeout: float = 30) -> int:
    """The pid of the worker that claimed ``eid`` in the store (owner ``temporal:host:pid``)."""
    import psycopg

    end = time.monotonic() + timeout
    with psycopg.connect(cluster.pg.url("tb"), autocommit=True) as conn:
        while time.monotonic() < end:
            row = conn.execute(
                "SELECT owner FROM executions WHERE id = %s AND state = 'running'", (eid,)
            ).fetchone()
            if row:  # temporal:host:pid
                return int(row[0].rsplit(":", 1)[1])
            time.sleep(0.01)
    raise RuntimeError(f"{eid}: no worker claimed it in {timeout} s")


def first_event_after(client: Aesoperator, eid: str, t: float, kinds: set[str] | None,
                      timeout: float = 60) -> tuple[float, str]:  # fmt: skip
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ev in client.get_events(eid):
            at = ev.at.timestamp()
            if at >= t and (kinds is None or ev.kind in kinds):
                return at - t, ev.kind
        time.sleep(0.02)
    return float("nan"), "none"


def slow_task(steps: int) -> Task:
    return Task(name="tb_slow_steps", inputs={"steps": steps, "every": 0.25},
                config=TaskConfig(max_duration_seconds=300, max_retries=3))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40, help="0.25 s apart")
    ap.add_argument("--after", type=float, default=2.0, help="kill this long after it started")
    ap.add_argument("--phase", choices=["followed", "local"], default="followed")
    ap.add_argument("--server", choices=SERVER_KINDS, default="fast")
    args = ap.parse_args()
    os.environ.update(PYTHONPATH=bench_env()["PYTHONPATH"])
    from _temporal_handlers import register

    temporal: list[float] = []
    local: list[float] = []
    with Cluster(workers=2, pool=1, server=args.server) as cluster:
        with Aesoperator(store=cluster.store, backend=cluster.backend) as c:
            for r in range(args.rounds):
                e = c.execute_task_async(slow_task(args.steps))
                if args.phase == "local":
                    pid = owner_pid(cluster, e.id)
                else:
                    pid = asyncio.run(running_on(cluster.backend, e.id))
                time.sleep(args.after)
                t_kill = kill_tree(pid)
                dt, _ = first_event_after(c, e.id, t_kill, {"resumed"})
                state = e.wait(120).state.value
                temporal.append(dt)
                print(f"temporal round {r + 1}: kill → resumed on the other worker "
                      f"{dt:5.2f} s; ended {state}")  # fmt: skip
                cluster.workers = [w for w in cluster.workers if w.pid != pid]
                cluster.start_worker()
        with tempfile.TemporaryDirectory() as tmp, Aesoperator(data_dir=tmp, pool_size=1) as c:
            register(c)
            c.warmup()
            me = psutil.Process()
            for r in range(args.rounds):
                e = c.execute_task_async(slow_task(args.steps))
                first_event_after(c, e.id, 0, {"planner"})
                time.sleep(args.after)
                pool = [p for p in me.children()
                        if "aesoperator.runtime.worker" in " ".join(p.cmdline())]  # fmt: skip
                t_kill = kill_tree(pool[0].pid)
                dt, kind = first_event_after(c, e.id, t_kill, None)
                state = e.wait(120).state.value
                local.append(dt)
                print(f"local round {r + 1}: kill → next event ({kind}) {dt:5.2f} s; "
                      f"ended {state}")  # fmt: skip
    timeout = HEARTBEAT_TIMEOUT_S if args.phase == "followed" else WORKFLOW_TASK_TIMEOUT_S
    what = "heartbeat" if args.phase == "followed" else "workflow task"
    target = timeout + 2
    med = statistics.median(temporal)
    print(f"temporal ({args.phase}): kill → running again, median {med:.2f} s, max "
          f"{max(temporal):.2f} s (target < {what} timeout {timeout:g} s + 2 s = {target:g} s: "
          f"{'met' if max(temporal) < target else 'NOT met'})")  # fmt: skip
    print(f"local:    kill → next event, median {statistics.median(local):.2f} s")


if __name__ == "__main__":
    main()
