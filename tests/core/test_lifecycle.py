"""The lifecycle through the public API: states, progress, events, results, errors."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aesoperator import (
    Aesoperator,
    NoPlannerError,
    Output,
    Task,
    TaskCancelled,
    TaskConfig,
    TaskFailed,
    TaskState,
    UserError,
)
from waiting import eventually


def _uniq(prefix: str) -> str:
    return f"{prefix}_{time.monotonic_ns()}"


def test_tasks_md_polling_loop(aesop: Aesoperator) -> None:
    name = _uniq("poll")

    @aesop.handler(name)
    def work(ctx: Any, n: int) -> dict[str, int]:
        for i in range(n):
            with ctx.action("step", i=i):
                ctx.progress((i + 1) * 100 / n)
                time.sleep(0.02)
        return {"total": n}

    execution = aesop.execute_task_async(Task(name=name, inputs={"n": 5}))
    execution_id = execution.id
    seen: list[TaskState] = []
    while True:  # as TASKS.md writes it
        status = aesop.get_task_status(execution_id)
        seen.append(status.state)
        if status.state == "completed":
            result = status.result
            break
        time.sleep(0.01)
    assert result is not None and result.data == {"total": 5}
    assert seen[-1] == TaskState.COMPLETED
    assert status.progress == 100 and status.error is None and status.current_action is None
    assert len(result.actions) == 5 and all(a.ok for a in result.actions)
    states = [e.data["state"] for e in aesop.get_events(execution_id) if e.kind == "state"]
    assert states == ["running", "completed"]


def test_progress_never_decreases_and_current_action_is_visible(aesop: Aesoperator) -> None:
    name = _uniq("progress")

    @aesop.handler(name)
    async def work(ctx: Any) -> str:
        ctx.progress(60)
        ctx.progress(30)  # ignored: progress only moves forward
        with ctx.action("waiting for the gate"):
            for _ in range(3000):
                if ctx.memory.get("go"):
                    break
                await asyncio.sleep(0.01)
        return "ok"

    execution = aesop.execute_task_async(Task(name=name))
    updates: list[Any] = []
    execution.on_progress(updates.append)
    status = eventually(
        lambda: (s := execution.status()).current_action == "waiting for the gate" and s,
        what="the action is visible",
    )
    assert status.state == "running" and status.progress == 60
    assert status.current_action == "waiting for the gate"
    # session memory is the execution's own namespace: poke it through the store directly
    from aesoperator.store.memory import Memory

    Memory(aesop._store, f"exec:{execution.id}").set("go", True)
    result = execution.result(timeout=10)
    assert result.content == "ok"
    # callbacks run on their own thread
    eventually(lambda: updates and updates[-1].state == "completed", what="the last callback")
    values = [u.progress for u in updates]
    assert values == sorted(values) and values[-1] == 100


def test_failure_carries_type_and_message(aesop: Aesoperator) -> None:
    name = _uniq("boom")

    @aesop.handler(name)
    def boom(ctx: Any) -> None:
        raise KeyError("no such column: revenue")

    execution = aesop.execute_task_async(Task(name=name))
    with pytest.raises(TaskFailed, match=r"KeyError.*no such column"):
        execution.result(timeout=10)
    status = execution.status()
    assert status.state == "failed" and status.error is not None
    assert status.error.type == "KeyError" and "revenue" in status.error.message
    assert status.result is None


def test_handler_return_values_become_results(inline: Aesoperator) -> None:
    @inline.handler("out")
    def out(ctx: Any, kind: str) -> Any:
        return {"str": "text", "out": Output(content="c", summary="s", data=[1])}.get(kind, 42)

    assert inline.execute_task(Task(name="out", inputs={"kind": "str"})).content == "text"
    res = inline.execute_task(Task(name="out", inputs={"kind": "out"}))
    assert (res.content, res.summary, res.data) == ("c", "s", [1])
    assert inline.execute_task(Task(name="out", inputs={"kind": "n"})).data == 42
    assert "via handler:out" in str(res)


def test_non_json_return_is_a_clear_failure(inline: Aesoperator) -> None:
    @inline.handler("setret")
    def setret(ctx: Any) -> Any:
        return {1, 2}

    with pytest.raises(UserError, match=r"not JSON-serialisable"):
        inline.execute_task(Task(name="setret"))


def test_no_planner_names_the_options(inline: Aesoperator) -> None:
    with pytest.raises(NoPlannerError) as info:
        inline.execute_task(Task(name="nobody_serves_this"))
    text = str(info.value)
    assert "@aesop.handler('nobody_serves_this')" in text
    assert "built-in skill" in text and "AESOP_LLM" in text


def test_cancel_pending_and_running(aesop: Aesoperator) -> None:
    name = _uniq("sleepy")

    @aesop.handler(name)
    async def sleepy(ctx: Any) -> None:
        await asyncio.sleep(60)

    running = [aesop.execute_task_async(Task(name=name)) for _ in range(3)]
    # two run (pool of two), one waits as pending
    eventually(
        lambda: (
            sorted(e.status().state.value for e in running) == ["pending", "running", "running"]
        ),
        what="two running, one pending",
    )
    for execution in running:
        assert execution.cancel()
    for execution in running:
        with pytest.raises(TaskCancelled):
            execution.result(timeout=10)
        assert execution.status().state == "cancelled"
    assert not running[0].cancel()  # already finished


def test_execution_is_awaitable_and_sync_api_works_in_a_running_loop(aesop: Aesoperator) -> None:
    name = _uniq("loop")

    @aesop.handler(name)
    async def work(ctx: Any, x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    async def notebook_cell() -> tuple[Any, Any]:
        # a Jupyter cell: a loop is running, and both styles must work
        sync_result = aesop.execute_task(Task(name=name, inputs={"x": 2}))
        async_result = await aesop.execute_task_async(Task(name=name, inputs={"x": 5}))
        return sync_result.data, async_result.data

    assert asyncio.run(notebook_cell()) == (4, 10)


def test_many_threads_at_once(aesop: Aesoperator) -> None:
    name = _uniq("threads")

    @aesop.handler(name)
    def work(ctx: Any, i: int) -> int:
        return i * i

    results: dict[int, Any] = {}

    def call(i: int) -> None:
        results[i] = aesop.execute_task(Task(name=name, inputs={"i": i})).data

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: i * i for i in range(12)}


def test_list_tasks_filters_newest_first(inline: Aesoperator) -> None:
    @inline.handler("listed")
    def ok(ctx: Any, fail: bool = False) -> str:
        if fail:
            raise RuntimeError("no")
        return "yes"

    ids = [
        inline.execute_task_async(Task(name="listed", inputs={"fail": i == 1})) for i in range(3)
    ]
    for e in ids:
        e.wait(10)
    listed = inline.list_tasks(name="listed")
    assert [s.id for s in listed] == [e.id for e in reversed(ids)]
    assert [s.id for s in inline.list_tasks(state="failed")] == [ids[1].id]
    with pytest.raises(UserError, match=r"state: got 'done'"):
        inline.list_tasks(state="done")


def test_retries_transient_steps_only(inline: Aesoperator) -> None:
    calls = {"flaky": 0, "broken": 0}

    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionError("reset by peer")
        return "fine"

    def broken() -> None:
        calls["broken"] += 1
        raise ValueError("bad data is not transient")

    @inline.handler("retry")
    async def work(ctx: Any) -> str:
        value = await ctx.step("flaky call", flaky)
        with contextlib.suppress(ValueError):
            await ctx.step("broken call", broken)
        return str(value)

    cfg = TaskConfig(max_retries=3, retry_delay_seconds=0.01)
    result = inline.execute_task(Task(name="retry", config=cfg))
    assert result.content == "fine" and calls == {"flaky": 3, "broken": 1}
    flaky_step = next(a for a in result.actions if a.name == "flaky call")
    assert flaky_step.attempts == 3 and flaky_step.ok
    retries = [e for e in inline.get_events(result.execution_id) if e.kind == "retry"]
    assert len(retries) == 2


def test_retries_give_up_after_max_retries(inline: Aesoperator) -> None:
    attempts = []

    def down() -> None:
        attempts.append(1)
        raise TimeoutError("upstream timed out")

    @inline.handler("giveup")
    async def work(ctx: Any) -> None:
        await ctx.step("call", down)

    with pytest.raises(TaskFailed, match=r"TimeoutError"):
        inline.execute_task(
            Task(name="giveup", config=TaskConfig(max_retries=2, retry_delay_seconds=0))
        )
    assert len(attempts) == 3


def test_current_action_label_without_recording_steps(inline: Aesoperator) -> None:
    @inline.handler("labels")
    async def labels(ctx: Any) -> int:
        with ctx.action("watch"):
            for i in range(3000):  # until the caller has seen a label
                if ctx.memory.get("seen"):
                    break
                ctx.set_current_action(f"check #{i}")
                await asyncio.sleep(0.01)
            return len(ctx.inputs)

    execution = inline.execute_task_async(Task(name="labels"))
    eventually(lambda: (execution.status().current_action or "").startswith("check #"),
               what="a label is stored")  # fmt: skip
    from aesoperator.store.memory import Memory

    Memory(inline._store, f"exec:{execution.id}").set("seen", True)
    result = execution.result(timeout=10)
    assert [a.name for a in result.actions] == ["watch"]  # labels are not steps
    assert not [e for e in inline.get_events(execution.id) if "check #" in str(e.data)]


def test_cancel_is_true_exactly_when_the_execution_ends_cancelled(aesop: Aesoperator) -> None:
    name = _uniq("stubborn")

    @aesop.handler(name)
    async def stubborn(ctx: Any, delay: float) -> str:
        # Swallows the cancellation and completes: the race of a task ending as it is
        # cancelled, made certain instead of rare.
        with ctx.action("working"):
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                return "completed anyway"
        return "done"

    execution = aesop.execute_task_async(Task(name=name, inputs={"delay": 60}))
    eventually(lambda: execution.status().current_action == "working", what="running")
    assert execution.cancel()
    with pytest.raises(TaskCancelled):
        execution.result(timeout=10)
    assert execution.status().state == "cancelled"

    rng = random.Random(12)  # a storm at every moment: pending, running, ending, ended
    storm = [
        aesop.execute_task_async(Task(name=name, inputs={"delay": rng.uniform(0, 0.03)}))
        for _ in range(30)
    ]
    answers = []
    for execution in storm:
        time.sleep(rng.uniform(0, 0.02))
        answers.append(execution.cancel())
    for execution, cancelled in zip(storm, answers, strict=True):
        state = execution.wait(30).state
        assert state == ("cancelled" if cancelled else "completed"), (cancelled, state)


def test_cancel_from_another_client_is_kept_when_the_task_completes_first(
    aesop: Aesoperator, tmp_path: Path
) -> None:
    name, gate = _uniq("gated"), tmp_path / "go"

    @aesop.handler(name)
    async def gated(ctx: Any, gate: str) -> str:
        with ctx.action("waiting"):
            for _ in range(3000):
                if Path(gate).exists():
                    break
                with contextlib.suppress(asyncio.CancelledError):  # keeps going, completes
                    await asyncio.sleep(0.01)
        return "completed"

    execution = aesop.execute_task_async(Task(name=name, inputs={"gate": str(gate)}))
    eventually(lambda: execution.status().current_action == "waiting", what="running")
    with Aesoperator(data_dir=aesop.data_dir, isolation="inline") as other:
        assert other.cancel_task(execution.id)  # another process's execution: via the store
    gate.touch()  # it completes now, most likely before the owner has polled the request
    assert execution.wait(10).state == "cancelled"
