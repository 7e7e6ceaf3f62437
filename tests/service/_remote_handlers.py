"""Handlers the served instance of the remote-client tests runs (``aesop serve --import``).

``paced`` moves only when the test says so (a file ``go<i>`` in ``inputs["dir"]``), so a test
can act between two steps without ever waiting for a fixed time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aesoperator as aesop
from aesoperator import Alert, Output, TaskContext


@aesop.handler("echo")
def echo(ctx: TaskContext, **inputs: Any) -> dict[str, Any]:
    return inputs


@aesop.handler("paced")
async def paced(ctx: TaskContext, dir: str, steps: int) -> dict[str, int]:
    for i in range(steps):
        while not (Path(dir) / f"go{i}").exists():
            await ctx.sleep(0.02)
        ctx.progress((i + 1) * 100 / (steps + 1), f"step {i}")
        ctx.alert(Alert(kind="keyword", message=f"alert {i}", metrics={"i": i}))
    while not (Path(dir) / "finish").exists():  # only a cancel or ``finish`` ends it
        await ctx.sleep(0.02)
    return {"steps": steps}


@aesop.handler("files")
def files(ctx: TaskContext, text: str) -> Output:
    ctx.add_file("report.md", f"# Report\n\n{text}\n")
    ctx.add_file("pages/1.html", "<p>one</p>")
    ctx.add_file("shot.png", bytes(range(256)) * 4)
    return Output(content=f"# Report\n\n{text}\n", summary="a report")


@aesop.handler("boom")
def boom(ctx: TaskContext) -> None:
    raise ValueError("kaput: the handler failed on purpose")


@aesop.handler("trespass")
async def trespass(ctx: TaskContext, url: str) -> str:
    page = await ctx.web.fetch(url)  # the policy refuses it before any connection
    return page.text


@aesop.handler("has_secret")
def has_secret(ctx: TaskContext, name: str) -> dict[str, bool]:
    return {"has": bool(ctx.secrets.get(name))}
