"""Task memory scopes and composition, as TASKS.md describes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, PageLimitExceeded, Task, TaskConfig, TaskResult


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
