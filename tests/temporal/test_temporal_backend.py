"""The Temporal backend end to end, through the public API only: ``Aesoperator(store=...,
backend="temporal://...")`` clients, ``aesop worker`` subprocesses that run the handlers of
``temporal_handlers.py``, a real Temporal dev server and a real PostgreSQL (conftest.py).

Side effects are counted in a file the handlers append to, one line per effect, naming the
worker that made it. No timing is asserted: waits are ``eventually`` or generous timeouts.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from temporal_world import Setup, Worker, worker_env

from aesoperator import Aesoperator, Execution, Task, TaskConfig, TaskState, UserError
from waiting import eventually

pytestmark = pytest.mark.timeout(120)


def kinds(client: object, execution_id: str) -> list[str]:
    return [e.kind for e in client.get_events(execution_id)]  # type: ignore[attr-defined]


def on_temporal(setup: Setup, execution_id: str, call: str) -> Any:
    """Call Temporal directly about the execution's workflow (as an operator would):
    ``history``, ``running`` (its started activities), ``cancel`` or ``terminate``. History
    is [(event kind, its task queue)] (an activity's start is written when it ends);
    running [(activity type, the identity of the worker running it)]."""
    import asyncio

    from temporalio.client import Client

    address = setup.backend.split("//")[1].split("?")[0]

    async def run() -> Any:
        temporal = await Client.connect(address, namespace="default")
        handle = temporal.get_workflow_handle(execution_id)
        if call == "cancel":
            return await handle.cancel()
        if call == "terminate":
            return await handle.terminate("by hand")
        if call == "running":
            from temporalio.api.enums.v1 import PendingActivityState

            pending = (await handle.describe()).raw_description.pending_activities
            started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            return [
                (a.activity_type.name, a.last_worker_identity)
                for a in pending
                if a.state == started
            ]
        out = []
        for ev in (await handle.fetch_history()).events:
            kind = ev.WhichOneof("attributes")
            attrs = getattr(ev, kind)
            queue = attrs.task_queue.name if hasattr(attrs, "task_queue") else ""
            out.append((kind.removesuffix("_event_attributes"), queue))
        return out

    return asyncio.run(run())


def history(setup: Setup, execution_id: str) -> list[tuple[str, str]]:
    return on_temporal(setup, execution_id, "history")  # type: ignore[no-any-return]


def gated(setup: Setup, client: Aesoperator, name: str = "t.steps") -> tuple[Execution, Path]:
    """Submit the handler ``name``, which blocks until the returned gate file exists."""
    gate = setup.dir / "gate"
    return client.execute_task_async(
        Task(name=name, inputs={"log": setup.log, "gate": str(gate)})
    ), gate


def gated_on_two_workers(
    setup: Setup, name: str, mark: str
) -> tuple[list[Worker], Aesoperator, Execution, Path, Worker]:
    """Two workers (one slot each) and a task ``name`` that blocks on a gate file once it
    has noted ``mark``: (workers, client, execution, gate, the worker running it)."""
    workers = setup.start_workers(2, pool_size=1)
    client = setup.client()
    execution, gate = gated(setup, client, name)
    started = eventually(
        lambda: [pid for what, pid in setup.effects() if what == mark],
        timeout=60, what=f"{mark} noted",
    )  # fmt: skip
    (victim,) = [w for w in workers if w.pid == started[0]]
    return workers, client, execution, gate, victim


def own_queue(setup: Setup, worker: Worker) -> str:
    return f"{setup.backend.split('task_queue=')[1]}/{worker.ready['worker']}"


def test_short_tasks_run_as_local_activities_long_ones_are_followed(setup: Setup) -> None:
    """A task that ends within the local activity's budget costs Temporal no activity task;
    one that outlasts it goes on where it runs, followed on that worker's own queue."""
    (worker,) = setup.start_workers(1)
    client = setup.client()
    short = [
        client.execute_task_async(Task(name="t.add", inputs={"a": i, "b": 1, "log": setup.log}))
        for i in range(3)
    ]
    assert [e.result(timeout=60).data["sum"] for e in short] == [1, 2, 3]

    def closed(execution_id: str) -> list[str]:  # the store hears the end before Temporal
        kinds = [kind for kind, _ in history(setup, execution_id)]
        assert kinds[-1] == "workflow_execution_completed", kinds
        return kinds

    shapes = [eventually(lambda e=e: closed(e.id), timeout=30) for e in short]
    # A loaded machine may push one past the budget; not all three.
    assert any("activity_task_scheduled" not in kinds for kinds in shapes), shapes
    assert all("marker_recorded" in kinds for kinds in shapes), shapes

    long, gate = gated(setup, client)

    def followed() -> list[str]:
        queues = [q for kind, q in history(setup, long.id) if kind == "activity_task_scheduled"]
        assert queues, "not followed yet"
        return queues

    queues = eventually(followed, timeout=60, what="the long run is followed by an activity")
    assert queues == [own_queue(setup, worker)]
    gate.touch()
    assert long.result(timeout=60).data == {"steps": [1, 2, 3]}
    assert Counter(what for what, _ in setup.effects())["two-start"] == 1


def test_a_task_completes_and_a_new_client_reads_it(setup: Setup) -> None:
    setup.start_workers(1)
    client = setup.client()
    result = client.execute_task(
        Task(name="t.add", inputs={"a": 2, "b": 3, "log": setup.log}), timeout=60
    )
    assert result.data == {"sum": 5}

    other = setup.client()
    execution = client.list_tasks(name="t.add")[0]
    status = other.get_task_status(execution.id)
    assert status.state is TaskState.COMPLETED
    assert status.result is not None and status.result.data == {"sum": 5}
    timeline = kinds(other, execution.id)
    assert timeline, "no events"
    assert [what for what, _ in setup.effects()] == ["sum"]


@pytest.mark.parametrize("phase", ["local activity", "followed"])
@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_a_lost_worker_s_execution_completes_on_the_other(
    setup: Setup, how: str, phase: str
) -> None:
    """A worker killed (a crash) or stopped with SIGTERM (a deploy, which hands running
    executions back rather than ending them cancelled), while the run is still the workflow
    task's local activity or once an activity on that worker's queue follows it: the other
    worker finishes it."""
    workers, client, execution, gate, victim = gated_on_two_workers(setup, "t.steps", "two-start")
    if phase == "followed":
        eventually(
            lambda: ("aesop.run_execution", victim.ready["worker"])
            in on_temporal(setup, execution.id, "running"),
            timeout=60, what="an activity on the worker follows the run",
        )  # fmt: skip
    victim.kill() if how == "kill -9" else victim.stop()
    # The other worker takes it over: at once after a SIGTERM's hand-back, or once Temporal
    # misses a dead worker's heartbeats.
    eventually(
        lambda: len([1 for what, _ in setup.effects() if what == "two-start"]) == 2,
        timeout=60, what="step two started again",
    )  # fmt: skip
    gate.touch()
    result = execution.result(timeout=60)
    assert result.data == {"steps": [1, 2, 3]}

    effects = setup.effects()
    counts = Counter(what for what, _ in effects)
    # Completed steps ran once; the step running when its worker left ran again: at least once.
    assert counts == {"one": 1, "two-start": 2, "two": 1, "three": 1}, effects
    (survivor,) = [w for w in workers if w is not victim]
    assert {pid for what, pid in effects if what in ("two", "three")} == {survivor.pid}
    events = client.get_events(execution.id)
    resumed = [e for e in events if e.kind == "resumed"]
    assert resumed, [e.kind for e in events]
    assert resumed[0].data["worker"] == survivor.ready["worker"]


KILLED_CLIENT = """
import sys
from aesoperator import Aesoperator, Task
client = Aesoperator(store=sys.argv[1], backend=sys.argv[2])
execution = client.execute_task_async(
    Task(name="t.steps", inputs={"log": sys.argv[3], "gate": sys.argv[4]})
)
print(execution.id, flush=True)
sys.stdin.read()  # until it is killed
"""


def test_a_killed_client_s_execution_completes(setup: Setup) -> None:
    setup.start_workers(1)
    gate = setup.dir / "gate"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, setup.store, setup.backend, setup.log, str(gate)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=worker_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    execution_id = proc.stdout.readline().decode().strip()
    proc.kill()  # SIGKILL, right after it has the id
    proc.wait(10)
    assert execution_id, "the client printed no id"
    gate.touch()

    client = setup.client()

    def finished() -> object:
        status = client.get_task_status(execution_id)
        assert status.state.finished, status.state
        return status

    status = eventually(finished, timeout=60, what="the execution ended")
    assert status.state is TaskState.COMPLETED, status.error  # type: ignore[attr-defined]
    assert status.result.data == {"steps": [1, 2, 3]}  # type: ignore[attr-defined]
    assert Counter(what for what, _ in setup.effects()) == {
        "one": 1, "two-start": 1, "two": 1, "three": 1,
    }  # fmt: skip


def test_closing_the_client_cancels_nothing(setup: Setup) -> None:
    setup.start_workers(1)
    client = setup.client()
    execution, gate = gated(setup, client)
    client.close()  # the execution is durable: it goes on without its client
    gate.touch()
    status = execution.wait(60)  # the closed client's handle follows the store
    assert status.state is TaskState.COMPLETED, status.error
    assert setup.client().get_task_status(execution.id).state is TaskState.COMPLETED


@pytest.mark.parametrize("who", ["submitter", "another client", "Temporal alone"])
def test_cancel_ends_a_running_task_and_frees_the_worker(setup: Setup, who: str) -> None:
    setup.start_workers(1, pool_size=1)
    client = setup.client()
    execution = client.execute_task_async(Task(name="t.block", inputs={"log": setup.log}))
    eventually(lambda: "block-start" in [w for w, _ in setup.effects()], timeout=60)
    canceller = client if who == "submitter" else setup.client()
    if who == "Temporal alone":  # an operator's cancel: it reaches the run through the store
        on_temporal(setup, execution.id, "cancel")
    else:
        assert canceller.cancel_task(execution.id) is True

    def ended() -> object:
        status = canceller.get_task_status(execution.id)
        assert status.state.finished, status.state
        return status

    status = eventually(ended, timeout=60, what="the execution ended")
    assert status.state is TaskState.CANCELLED  # type: ignore[attr-defined]
    # The worker's one slot is free again: another task runs to its end.
    after = client.execute_task(
        Task(name="t.add", inputs={"a": 1, "b": 1, "log": setup.log}), timeout=60
    )
    assert after.data == {"sum": 2}
    assert "block-end" not in [w for w, _ in setup.effects()]


def test_a_hundred_tasks_on_two_workers_lose_no_memory_write(setup: Setup) -> None:
    workers = setup.start_workers(2)
    client = setup.client()
    executions = [
        client.execute_task_async(
            Task(name="t.count", memory_scope="permanent", inputs={"i": i, "log": setup.log})
        )
        for i in range(100)
    ]
    results = [e.result(timeout=90) for e in executions]
    assert sorted(r.data["i"] for r in results) == list(range(100))
    statuses = [client.get_task_status(e.id) for e in executions]
    assert {s.state for s in statuses} == {TaskState.COMPLETED}

    read = client.execute_task(
        Task(name="t.count", memory_scope="permanent", inputs={"i": -1, "log": setup.log,
                                                               "read": True}),
        timeout=60,
    )  # fmt: skip
    assert sorted(read.data["seen"]) == list(range(100))  # no lost write, no duplicate
    assert read.data["n"] == 100
    effects = [(w, pid) for w, pid in setup.effects() if w != "count--1"]
    assert Counter(w for w, _ in effects) == {f"count-{i}": 1 for i in range(100)}
    assert {pid for _, pid in effects} == {w.pid for w in workers}, "a worker ran none"


def test_progress_and_alert_callbacks_fire_on_the_client(setup: Setup) -> None:
    setup.start_workers(1)
    client = setup.client()
    execution, gate = gated(setup, client, "t.progress")
    seen: list[object] = []
    alerts: list[object] = []
    execution.on_progress(seen.append)
    execution.on_alert(alerts.append)
    eventually(lambda: alerts, timeout=60, what="an alert delivered")
    assert any(s.progress >= 70 for s in seen), seen  # type: ignore[attr-defined]
    assert alerts[0].message == "something to know"  # type: ignore[attr-defined]
    gate.touch()
    execution.result(timeout=60)
    eventually(
        lambda: seen and seen[-1].state is TaskState.COMPLETED,  # type: ignore[attr-defined]
        timeout=30, what="the last progress callback says completed",
    )  # fmt: skip
    assert len(alerts) == 1


def test_temporal_restarted_mid_run(make_setup: object, tmp_path: Path) -> None:
    from temporalserver import temporal_server

    with temporal_server(tmp_path / "own-temporal") as server:
        setup = make_setup(server)  # type: ignore[operator]
        setup.start_workers(1, pool_size=1)
        client = setup.client()
        running, gate = gated(setup, client)
        eventually(lambda: "two-start" in [w for w, _ in setup.effects()], timeout=60)
        queued = [
            client.execute_task_async(Task(name="t.add", inputs={"a": i, "b": 0, "log": setup.log}))
            for i in range(3)
        ]
        server.stop()
        server.start()
        gate.touch()
        assert running.result(timeout=90).data == {"steps": [1, 2, 3]}
        assert [q.result(timeout=90).data["sum"] for q in queued] == [0, 1, 2]
        counts = Counter(w for w, _ in setup.effects())
        assert counts["one"] == counts["three"] == counts["two"] == 1, counts
        assert counts["sum"] == 3, counts
        setup.stop()


def test_an_end_the_workflow_records_is_posted_to_the_webhook(setup: Setup) -> None:
    """Cancelled before any worker took it, no runner ends it: the workflow does (on the
    first worker to come), and the task's webhook still hears of it, once, signed with the
    workers' key (a task's own key never travels: it would be stored in Temporal)."""
    import json
    import os
    from http.server import ThreadingHTTPServer

    from temporal_world import start_worker

    from serving import QuietHandler, running

    posts: list[tuple[dict[str, str], bytes]] = []

    class Hook(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.reply(200, b"ok", "text/plain")

    with running(ThreadingHTTPServer(("127.0.0.1", 0), Hook)) as srv:
        client = setup.client()
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        with pytest.raises(UserError, match=r"^webhook_secret: not carried to the workers"):
            client.execute_task_async(Task(name="t.add", webhook_url=url, webhook_secret="k" * 16))
        task = Task(
            name="t.add", inputs={"a": 1, "b": 2, "log": setup.log}, webhook_url=url,
            config=TaskConfig(allow_private_network=True, retry_delay_seconds=0.01),
        )  # fmt: skip
        execution = client.execute_task_async(task)  # no worker yet: it waits in the queue
        assert execution.cancel() is True
        env = dict(os.environ, AESOP_WEBHOOK_SECRET="whsec-0123456789")
        setup.workers.append(start_worker(setup.backend, setup.store, setup.dir, env=env))
        status = execution.wait(60)
        assert status.state is TaskState.CANCELLED
        eventually(lambda: posts, timeout=30, what="the webhook was posted")
        headers, body = posts[0]
        assert json.loads(body)["state"] == "cancelled"
        assert any("signature" in name for name in headers), headers
        assert setup.effects() == []  # the handler never ran
    assert len(posts) == 1


def test_a_workflow_terminated_by_hand_fails_its_execution(setup: Setup) -> None:
    """No worker will ever record its end: the client that follows it does, and wakes."""
    client = setup.client()  # no worker: the execution waits in Temporal's queue
    execution = client.execute_task_async(
        Task(name="t.add", inputs={"a": 1, "b": 2, "log": setup.log})
    )
    on_temporal(setup, execution.id, "terminate")
    status = execution.wait(60)
    assert status.state is TaskState.FAILED
    assert status.error is not None and "workflow ended without it" in status.error.message


def test_secrets_travel_sealed_to_the_worker(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """With $AESOP_TEMPORAL_KEY on the client and the workers, a task's secrets reach the
    handler, and neither Temporal's history nor the store holds them in the clear."""
    import os

    from temporal_world import start_worker

    key = "k3y-0123456789-abcdef"
    secret = "pa55-Wörd-7Q9xZ"
    setup.workers.append(
        start_worker(setup.backend, setup.store, setup.dir,
                     env=dict(os.environ, AESOP_TEMPORAL_KEY=key))
    )  # fmt: skip
    monkeypatch.setenv("AESOP_TEMPORAL_KEY", key)
    client = setup.client()
    execution = client.execute_task_async(
        Task(name="t.secret", inputs={"log": setup.log}, secrets={"pw": secret})
    )
    result = execution.result(timeout=60)
    assert result.data == {"length": len(secret), "echo": "[secret:pw]"}

    def closed() -> bytes:
        import asyncio

        from temporalio.client import Client

        async def raw() -> bytes:
            temporal = await Client.connect(setup.backend.split("//")[1].split("?")[0])
            hist = await temporal.get_workflow_handle(execution.id).fetch_history()
            assert hist.events[-1].HasField("workflow_execution_completed_event_attributes")
            return bytes(hist.to_json(), "utf-8") + b"".join(
                e.SerializeToString() for e in hist.events
            )

        return asyncio.run(raw())

    history_bytes = eventually(closed, timeout=30, what="the workflow closed")
    assert b"aesop-sealed" in history_bytes  # its payloads are sealed, not absent
    for form in (secret.encode(), secret.encode("utf-16-le"), b"pa55-W"):
        assert form not in history_bytes
    stored = repr([e.data for e in client.get_events(execution.id)])
    stored += repr(client.get_task_status(execution.id))
    assert secret not in stored and "pa55-W" not in stored


def test_a_completed_subtask_is_not_run_again_after_its_worker_is_lost(setup: Setup) -> None:
    _, client, execution, gate, victim = gated_on_two_workers(setup, "t.parent", "after-start")
    victim.kill()
    eventually(
        lambda: [w for w, _ in setup.effects()].count("after-start") == 2,
        timeout=60, what="the step after the subtask started again",
    )  # fmt: skip
    gate.touch()
    assert execution.result(timeout=60).data == {"child": {"twice": 42}}
    counts = Counter(what for what, _ in setup.effects())
    assert counts == {"child": 1, "after-start": 2, "after": 1}, setup.effects()
    replayed = [e.data for e in client.get_events(execution.id) if e.kind == "step_replayed"]
    assert {"name": "subtask:t.child", "key": "subtask:t.child#1"} in [
        {k: d.get(k) for k in ("name", "key")} for d in replayed
    ], replayed
