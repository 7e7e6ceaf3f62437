"""``Runner.run(job)`` needs no worker process: any host with a loop and a ``send`` runs it.

This is what a future backend (a Temporal activity) does: build a ``Job``, run it, and turn
the messages into state. Here the host is a plain ``asyncio.run`` program.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aesoperator import Task
from aesoperator.runtime.protocol import Finished, ToSupervisor
from aesoperator.runtime.runner import CancelToken, Job, Registry, Runner


async def _greet(ctx: Any, who: str) -> dict[str, str]:
    with ctx.action("greet", who=who):
        ctx.progress(50, "half way")
        ctx.emit("note", text="hello")
    return {"greeting": f"hello {who}"}


async def _forever(ctx: Any) -> None:
    await asyncio.sleep(3600)


def _job(tmp_path: Path, name: str, inputs: dict[str, Any], handler: Any) -> Job:
    task = Task(name=name, inputs=inputs)
    return Job(
        execution_id=f"{name}-1",
        task_json=task.model_dump_json(),
        planner=("handler", name),
        data_dir=str(tmp_path),
        registry=Registry(handlers={name: handler}),
    )


def test_runner_runs_a_job_in_a_plain_asyncio_program(tmp_path: Path) -> None:
    sent: list[ToSupervisor] = []

    async def main() -> None:
        runner = Runner(sent.append, asyncio.get_running_loop())
        await runner.run(_job(tmp_path, "greet", {"who": "host"}, _greet))

    asyncio.run(main())
    events = [m for m in sent if isinstance(m, dict)]
    assert [m["type"] for m in events if m["type"] != "event"] == ["action", "progress", "action"]
    assert {"type": "progress", "id": "greet-1", "value": 50.0, "message": "half way"} in events
    assert any(m["type"] == "event" and m["kind"] == "note" for m in events)
    assert isinstance(sent[-1], Finished)  # exactly one, and last
    assert sum(isinstance(m, Finished) for m in sent) == 1
    finished = sent[-1]
    assert (finished.id, finished.state, finished.error) == ("greet-1", "completed", None)
    assert finished.result is not None
    assert finished.result["data"] == {"greeting": "hello host"}
    assert [a["name"] for a in finished.result["actions"]] == ["greet"]


def test_a_host_cancels_a_job_through_its_token(tmp_path: Path) -> None:
    sent: list[ToSupervisor] = []

    async def main() -> None:
        runner = Runner(sent.append, asyncio.get_running_loop())
        token = CancelToken()
        run = asyncio.ensure_future(runner.run(_job(tmp_path, "wait", {}, _forever), token))
        while token.task is None:  # it has started
            await asyncio.sleep(0)
        token.cancel()
        token.task.cancel()
        await run

    asyncio.run(main())
    finished = sent[-1]
    assert isinstance(finished, Finished)
    assert finished.state == "cancelled"
    assert finished.error is not None and finished.error["type"] == "TaskCancelled"
