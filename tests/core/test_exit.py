"""A script that ends with executions in flight exits silently, with or without close()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from aesoperator import Aesoperator, Task

_HEAD = """
import time
from aesoperator import Aesoperator, Task, TaskConfig, TaskError
aesop = Aesoperator(pool_size=2)
clients = [aesop]

@aesop.handler("forever")
def forever(ctx):
    while True:  # blocking code that ignores ctx: only a kill ends it
        time.sleep(0.05)

@aesop.handler("hog")
def hog(ctx):
    blocks = []
    while True:
        blocks.append(bytearray(32 * 1024 * 1024))
        time.sleep(0.01)

left = aesop.execute_task_async(Task(name="forever"))
"""

# What the script does before it ends; the execution above is still running.
_BODIES = {
    "left_running": """
while left.status().state != "running":
    time.sleep(0.01)
""",
    "time_limit": """
try:
    aesop.execute_task(Task(name="forever", config=TaskConfig(max_duration_seconds=0.3)))
except TaskError as exc:
    assert type(exc).__name__ == "TimeLimitExceeded", exc
""",
    "inline_thread_reports_on": """
inline = Aesoperator(isolation="inline")
clients.append(inline)

@inline.handler("ticking")
def ticking(ctx):
    while True:  # ignores cancellation: abandoned at close, it goes on reporting progress
        ctx.progress(1)
        time.sleep(0.01)

ticker = inline.execute_task_async(Task(name="ticking"))
while ticker.status().state != "running":
    time.sleep(0.01)
""",
    "memory_limit": """
try:
    aesop.execute_task(Task(name="hog", config=TaskConfig(max_memory_mb=200)))
except TaskError as exc:
    assert type(exc).__name__ == "MemoryLimitExceeded", exc
""",
}


@pytest.mark.parametrize("close", [False, True], ids=["no_close", "close"])
@pytest.mark.parametrize("body", sorted(_BODIES))
def test_exit_is_silent_and_leaves_no_execution_running(
    tmp_path: Path, body: str, close: bool
) -> None:
    script = tmp_path / "script.py"
    script.write_text(_HEAD + _BODIES[body] + ("for c in clients: c.close()\n" if close else ""))
    data = tmp_path / "data"
    env = {**os.environ, "AESOP_DATA_DIR": str(data), "PYTHONWARNINGS": "default"}
    # Races at exit showed in a fraction of runs: run a few times, concurrently.
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**env, "AESOP_DATA_DIR": str(data / str(i))},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, err) == (0, ""), textwrap.shorten(out, 300)
    for i in range(3):
        client = Aesoperator(data_dir=data / str(i), isolation="inline")
        try:
            states = {s.name: s.state.value for s in client.list_tasks()}
            assert states["forever"] in ("cancelled", "failed")  # never left running
            assert not client.list_tasks(state="running") and not client.list_tasks(state="pending")
        finally:
            client.close()


def test_a_closed_client_answers_without_its_runtime(tmp_path: Path) -> None:
    client = Aesoperator(data_dir=tmp_path, isolation="inline")
    client.handler("quick")(lambda ctx: "done")
    execution = client.execute_task_async(Task(name="quick"))
    execution.wait(10)
    client.close()
    answers: list[object] = []

    def use() -> None:  # on the old code this waited forever on a stopped loop
        execution.on_progress(print)
        answers.append(execution.cancel())

    thread = threading.Thread(target=use, daemon=True)
    thread.start()
    thread.join(10)
    assert answers == [False]
