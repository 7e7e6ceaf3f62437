"""Task memory scopes and composition, as TASKS.md describes them."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aesoperator import (
    Aesoperator,
    PageLimitExceeded,
    Task,
    TaskCancelled,
    TaskConfig,
    TaskResult,
    UserError,
)
from waiting import eventually


def test_tasks_md_memory_snippet(tmp_path: Path) -> None:
    aesop = Aesoperator(data_dir=tmp_path, isolation="inline")
    aesop.memory.set("visited_urls", ["https://example.com"])
    visited = aesop.memory.get("visited_urls")
    assert visited == ["https://example.com"]
    assert aesop.memory.keys() == ["visited_urls"]
    assert aesop.memory.delete("visited_urls") and aesop.memory.get("visited_urls") is None
    aesop.close()
    # persisted: another client on the same directory sees it
    Aesoperator(data_dir=tmp_path, isolation="inline").memory.set("k", {"a": [1, 2]})
    assert Aesoperator(data_dir=tmp_path, isolation="inline").memory.get("k") == {"a": [1, 2]}


def test_non_json_values_get_a_clear_type_error(inline: Aesoperator) -> None:
    with pytest.raises(TypeError, match=r"memory.set\('when', ...\): a set value"):
        inline.memory.set("when", {1, 2})
    assert inline.memory.get("when") is None


def test_permanent_memory_survives_executions_and_processes(aesop: Aesoperator) -> None:
    @aesop.handler("persistent_task")
    def count(ctx: Any) -> int:
        runs = ctx.memory.get("runs", 0) + 1
        ctx.memory.set("runs", runs)
        return runs

    task = Task(name="persistent_task", memory_scope="permanent")
    first = aesop.execute_task(task).data
    second = aesop.execute_task(task).data  # another worker process, most likely
    assert second == first + 1


def test_session_memory_is_private_and_cleared(inline: Aesoperator) -> None:
    @inline.handler("session_task")
    def use(ctx: Any) -> Any:
        before = ctx.memory.get("seen")
        ctx.memory.set("seen", True)
        return {"before": before, "global": inline.memory.get("seen")}

    task = Task(name="session_task", memory_scope="session")
    assert inline.execute_task(task).data == {"before": None, "global": None}
    assert inline.execute_task(task).data == {"before": None, "global": None}
    assert not [k for k in inline._store.mem_keys("task:session_task")]


def test_tasks_md_composition_with_handlers(aesop: Aesoperator) -> None:
    @aesop.handler("research")
    def research(ctx: Any, topic: str) -> TaskResult | str:
        return f"{topic} is studied a lot. It has many uses. Research continues."

    @aesop.handler("summarize")
    def summarize(ctx: Any, text: str, max_length: int) -> str:
        return text.split(".")[0][:max_length] + "."

    def research_and_summarize(topic: str) -> TaskResult:
        research_task = Task(
            name="research", inputs={"topic": topic}, config=TaskConfig(max_pages=5)
        )
        research_result = aesop.execute_task(research_task)
        summary_task = Task(
            name="summarize", inputs={"text": research_result.content, "max_length": 1000}
        )
        return aesop.execute_task(summary_task)

    summary = research_and_summarize("quantum computing")
    assert summary.content == "quantum computing is studied a lot."


def test_subtasks_never_get_more_than_the_parent_has_left(aesop: Aesoperator) -> None:
    @aesop.handler("child_pages")
    def child(ctx: Any) -> dict[str, Any]:
        got = 0
        while ctx.budget.try_reserve_page():
            got += 1
        return {"max_pages": ctx.config.max_pages, "got": got,
                "time": ctx.config.max_duration_seconds}  # fmt: skip

    @aesop.handler("parent_pages")
    async def parent(ctx: Any) -> dict[str, Any]:
        for _ in range(7):
            ctx.budget.reserve_page()
        sub = await ctx.run_subtask(
            Task(name="child_pages", config=TaskConfig(max_pages=50, max_duration_seconds=999))
        )
        after = ctx.budget.pages_left
        try:
            await ctx.run_subtask(Task(name="child_pages"))
        except PageLimitExceeded as exc:
            return {"child": sub.data, "left": after, "second": str(exc), "id": sub.execution_id}
        return {"child": sub.data, "left": after, "second": None, "id": sub.execution_id}

    result = aesop.execute_task(
        Task(name="parent_pages", config=TaskConfig(max_pages=10, max_duration_seconds=30))
    )
    data = result.data
    assert data["child"]["max_pages"] == 3 and data["child"]["got"] == 3
    assert data["child"]["time"] <= 30
    assert data["left"] == 0 and "no pages left" in data["second"]
    child_status = aesop.get_task_status(data["id"])
    assert child_status.parent_id == result.execution_id and child_status.state == "completed"
    assert any(a.name == "subtask child_pages" for a in result.actions)


def test_secrets_reach_the_task_but_are_never_stored(aesop: Aesoperator) -> None:
    @aesop.handler("uses_secret")
    def uses(ctx: Any) -> dict[str, Any]:
        return {"length": len(ctx.secrets["password"]), "keys": sorted(ctx.secrets)}

    task = Task(name="uses_secret", secrets={"password": "hunter2-very-secret"})
    assert "hunter2" not in repr(task) and "hunter2" not in task.model_dump_json()
    result = aesop.execute_task(task)
    assert result.data == {"length": 19, "keys": ["password"]}
    db = (aesop.data_dir / "aesoperator.sqlite3").read_bytes()
    wal = aesop.data_dir / "aesoperator.sqlite3-wal"
    assert b"hunter2" not in db and (not wal.exists() or b"hunter2" not in wal.read_bytes())


def test_registered_functions_reach_the_worker(aesop: Aesoperator) -> None:
    @aesop.function
    def price(sku: str) -> float:
        return {"A1": 9.5}.get(sku, 0.0)

    @aesop.handler("calls_function")
    def call(ctx: Any, sku: str) -> float:
        return float(ctx.functions["price"](sku))

    assert aesop.execute_task(Task(name="calls_function", inputs={"sku": "A1"})).data == 9.5


def test_secret_values_are_redacted_from_everything_the_task_reports(inline: Aesoperator) -> None:
    @inline.handler("leaky")
    def leaky(ctx: Any) -> str:
        pw = ctx.secrets["password"]
        with ctx.action("login", url=f"https://x.test/login?pw={pw}&next=%2F"):
            ctx.log(f"typed {pw} into the form")
            ctx.emit("debug", form={"password": pw, "encoded": "p%40ss%20w0rd%21"})
        return f"logged in with {pw}"

    task = Task(name="leaky", secrets={"password": "p@ss w0rd!"})
    result = inline.execute_task(task)
    assert result.content == "logged in with [secret:password]"
    dumped = result.model_dump_json() + str(inline.get_events(result.execution_id))
    assert "p@ss w0rd!" not in dumped and "p%40ss%20w0rd%21" not in dumped
    assert "[secret:password]" in str(inline.get_events(result.execution_id))


def _session_keys(data_dir: Path, execution_id: str) -> list[str]:
    """What the SQLite file holds for an execution's session memory, read without our code."""
    with contextlib.closing(sqlite3.connect(data_dir / "aesoperator.sqlite3")) as db:
        rows = db.execute("SELECT key FROM memory WHERE namespace = ?", (f"exec:{execution_id}",))
        return [r[0] for r in rows]


@pytest.mark.parametrize("how", ["memory", "crash", "time", "cancel"])
def test_session_memory_is_cleared_however_the_execution_ends(
    aesop: Aesoperator, tmp_path: Path, how: str
) -> None:
    name = f"doomed_{how}_{time.monotonic_ns()}"

    @aesop.handler(name)
    async def doomed(ctx: Any, how: str, ready: str) -> None:
        # Blocks the worker's event loop: the runner never gets to end it, only a kill does.
        ctx.memory.set("token", "s3cr3t-session-value")
        Path(ready).touch()  # the key is committed: set() has returned
        if how == "memory":
            blocks = []
            while True:
                blocks.append(bytearray(32 * 1024 * 1024))
                time.sleep(0.01)
        if how == "crash":
            os._exit(3)
        while True:
            time.sleep(0.05)

    ready = tmp_path / "ready"
    config = TaskConfig(max_memory_mb=200, max_duration_seconds=0.5 if how == "time" else 60)
    task = Task(name=name, inputs={"how": how, "ready": str(ready)}, config=config)
    execution = aesop.execute_task_async(task)
    if how == "cancel":
        eventually(ready.exists, what="the handler wrote its session memory")
        assert execution.cancel()
    expected = {"memory": "failed", "crash": "failed", "time": "failed", "cancel": "cancelled"}
    assert execution.wait(30).state == expected[how]
    assert ready.exists()  # the key was there before the end...
    assert _session_keys(aesop.data_dir, execution.id) == []  # ...and went with it


def test_session_memory_of_a_killed_client_is_cleared_at_the_next_open(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = tmp_path / "script.py"
    script.write_text(
        "import time\nfrom pathlib import Path\nfrom aesoperator import Aesoperator, Task\n"
        "aesop = Aesoperator()\n"
        "@aesop.handler('held')\n"
        "def held(ctx):\n"
        "    ctx.memory.set('token', 's3cr3t-session-value')\n"
        f"    Path({str(ready)!r}).touch()\n"
        "    time.sleep(60)\n"
        "print(aesop.execute_task_async(Task(name='held')).id, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "AESOP_DATA_DIR": str(tmp_path / "data")}
    with subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        execution_id = proc.stdout.readline().strip()
        eventually(ready.exists, what="the handler wrote its session memory")
        proc.kill()  # kill -9: nothing of the client runs any more
    assert _session_keys(tmp_path / "data", execution_id) == ["token"]
    client = Aesoperator(data_dir=tmp_path / "data", isolation="inline")
    try:
        status = client.get_task_status(execution_id)
        assert status.state == "failed" and status.error is not None
        assert status.error.type == "Interrupted"
        assert _session_keys(tmp_path / "data", execution_id) == []
    finally:
        client.close()


def test_session_memory_left_by_an_ended_execution_is_swept_at_open(tmp_path: Path) -> None:
    # A process killed between an execution's end and the clearing of its memory (or an
    # older version) left keys behind: the next client to open the directory removes them.
    with Aesoperator(data_dir=tmp_path, isolation="inline") as client:
        client.handler("quick")(lambda ctx: "done")
        done = client.execute_task(Task(name="quick")).execution_id
    with contextlib.closing(sqlite3.connect(tmp_path / "aesoperator.sqlite3")) as db, db:
        db.execute(
            "INSERT INTO memory VALUES (?, 'token', '\"s3cr3t\"', '2024-01-01')", (f"exec:{done}",)
        )
    Aesoperator(data_dir=tmp_path, isolation="inline").close()
    assert _session_keys(tmp_path, done) == []


def test_an_abandoned_handler_thread_cannot_write_session_memory_back(inline: Aesoperator) -> None:
    refused: list[str] = []

    @inline.handler("writes_on")
    def writes_on(ctx: Any) -> None:
        for i in range(2000):  # ignores ctx.cancelled, as a hostile or stuck handler would
            try:
                ctx.memory.set(f"k{i}", i)
            except TaskCancelled as exc:
                refused.append(str(exc))
                return
            time.sleep(0.01)

    execution = inline.execute_task_async(Task(name="writes_on"))
    eventually(lambda: execution.status().state == "running" and _session_keys(
        inline.data_dir, execution.id), what="the handler writing")  # fmt: skip
    assert execution.cancel()
    assert execution.wait(10).state == "cancelled"
    eventually(lambda: refused, what="the abandoned thread's write refused")
    assert "has ended" in refused[0]
    assert _session_keys(inline.data_dir, execution.id) == []


def test_incr_and_update_are_atomic_across_worker_processes(tmp_path: Path) -> None:
    workers, n = 3, 120

    with Aesoperator(data_dir=tmp_path, pool_size=workers) as client:

        @client.handler("counter")
        def count(ctx: Any, tag: int, n: int) -> int | float:
            for i in range(n):
                ctx.memory.incr("count")
                entry = f"{tag}:{i}"
                ctx.memory.update("seen", lambda seen, e=entry: [*seen, e], default=[])
            return ctx.memory.incr("count", by=0)

        client.warmup()
        task = [Task(name="counter", inputs={"tag": t, "n": n}, memory_scope="permanent")
                for t in range(workers)]  # fmt: skip
        executions = [client.execute_task_async(t) for t in task]
        for execution in executions:
            execution.result(timeout=120)
        with contextlib.closing(sqlite3.connect(tmp_path / "aesoperator.sqlite3")) as db:
            stored = dict(db.execute("SELECT key, value_json FROM memory"))
        assert json.loads(stored["count"]) == workers * n
        seen = json.loads(stored["seen"])
        assert len(seen) == len(set(seen)) == workers * n


def test_incr_and_update_refuse_bad_use_and_leave_the_value(inline: Aesoperator) -> None:
    memory = inline.memory
    assert memory.incr("hits") == 1 and memory.incr("hits", by=2.5) == 3.5
    memory.set("name", "ada")
    with pytest.raises(TypeError, match=r"memory.incr\('name'\): the stored value is a str"):
        memory.incr("name")
    with pytest.raises(TypeError, match=r"by=...\): got True; use an int or a float"):
        memory.incr("hits", by=True)
    with pytest.raises(TypeError, match=r"memory.update\('name', ...\): a set value"):
        memory.update("name", lambda v: {v})
    with pytest.raises(ZeroDivisionError):
        memory.update("hits", lambda v: v / 0)
    with pytest.raises(UserError, match=r"must only compute the new value"):
        memory.update("hits", lambda v: memory.set("other", v))
    with pytest.raises(TypeError, match=r"fn must be callable"):
        memory.update("hits", 3)  # type: ignore[arg-type]
    assert (memory.get("name"), memory.get("hits"), memory.get("other")) == ("ada", 3.5, None)
    assert memory.update("names", lambda v: [*v, "bo"], default=[]) == ["bo"]
