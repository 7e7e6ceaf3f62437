"""Handlers the ``aesop worker`` subprocesses of tests/temporal import (``--import``).

Side effects are appended, one line each, to the file named by the task's ``log`` input
(``O_APPEND`` writes of one short line are atomic across processes): what the tests count.
Each line names the worker that made it (the pool process's parent, the ``aesop worker``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import aesoperator as aesop
from aesoperator import Alert


def note(log: str, what: str) -> None:
    """Append ``what <worker pid>`` to ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{what} {os.getppid()}\n".encode())
    finally:
        os.close(fd)


def wait_for(path: str, limit: float = 50) -> None:
    """Until ``path`` exists (bounded: a test that never makes it fails, not hangs)."""
    end = time.monotonic() + limit
    while not Path(path).exists() and time.monotonic() < end:
        time.sleep(0.05)


@aesop.handler("t.add")
async def add(ctx, a: int, b: int, log: str) -> dict:
    ctx.progress(50, "adding")
    total = await ctx.step("sum", lambda: (note(log, "sum"), a + b)[1])
    ctx.memory.set("last", total)
    return {"sum": total}


@aesop.handler("t.steps")
async def steps(ctx, log: str, gate: str) -> dict:
    """Three steps; the second blocks until ``gate`` exists (the test kills its worker)."""
    one = await ctx.step("one", lambda: (note(log, "one"), 1)[1])

    def two() -> int:
        note(log, "two-start")
        wait_for(gate)
        note(log, "two")
        return 2

    second = await ctx.step("two", two)
    three = await ctx.step("three", lambda: (note(log, "three"), 3)[1])
    return {"steps": [one, second, three]}


@aesop.handler("t.block")
async def block(ctx, log: str) -> dict:
    """Runs until cancelled (bounded), in ``ctx.sleep``."""
    note(log, "block-start")
    for _ in range(600):
        await ctx.sleep(0.1)
    note(log, "block-end")
    return {"ended": "uncancelled"}


@aesop.handler("t.count")
async def count(ctx, i: int, log: str, read: bool = False) -> dict:
    """Each task adds itself to the permanent memory of its task name, atomically;
    ``read=True`` returns that memory instead."""
    if read:
        return {"seen": ctx.memory.get("seen", []), "n": ctx.memory.get("n", 0)}
    ctx.memory.update("seen", lambda seen: [*seen, i], default=[])
    ctx.memory.incr("n")
    note(log, f"count-{i}")
    return {"i": i}


@aesop.handler("t.progress")
async def progress(ctx, log: str, gate: str) -> dict:
    """Reports progress and an alert, then waits for ``gate`` before it ends."""
    for pct in (10, 40, 70):
        ctx.progress(pct, f"at {pct}")
        await ctx.sleep(0.2)
    ctx.alert(Alert(kind="t", message="something to know"))
    await ctx.step("wait", wait_for, gate)
    note(log, "progress-done")
    return {"ok": True}


@aesop.handler("t.secret")
async def secret(ctx, log: str) -> dict:
    """Uses its secret: its length, and the secret itself (redacted on the way out)."""
    note(log, "secret")
    return {"length": len(ctx.secrets["pw"]), "echo": ctx.secrets["pw"]}


@aesop.handler("t.child")
async def child(ctx, log: str, n: int) -> dict:
    note(log, "child")
    return {"twice": n * 2}


@aesop.handler("t.parent")
async def parent(ctx, log: str, gate: str) -> dict:
    """A subtask, then a step that blocks until ``gate`` exists (the test kills its worker)."""
    sub = await ctx.run_subtask(aesop.Task(name="t.child", inputs={"log": log, "n": 21}))

    def after() -> int:
        note(log, "after-start")
        wait_for(gate)
        note(log, "after")
        return 1

    await ctx.step("after", after)
    return {"child": sub.data}
