"""Limits that hold from outside the task: cancel of blocking code, time, memory, crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from aesoperator import (
    Aesoperator,
    MemoryLimitExceeded,
    Task,
    TaskCancelled,
    TaskConfig,
    TimeLimitExceeded,
    WorkerCrashed,
)
from waiting import eventually


def _name(prefix: str) -> str:
    return f"{prefix}_{time.monotonic_ns()}"


def test_cancel_of_a_handler_stuck_in_blocking_code(aesop: Aesoperator, tmp_path: Path) -> None:
    name = _name("stuck")
    inside = tmp_path / "inside"

    @aesop.handler(name)
    def stuck(ctx: Any, inside: str) -> None:
        Path(inside).touch()
        while True:  # ignores ctx entirely, like a hung C call would
            time.sleep(0.5)

    execution = aesop.execute_task_async(Task(name=name, inputs={"inside": str(inside)}))
    eventually(inside.exists, what="the handler is in its blocking loop")
    assert execution.cancel()
    with pytest.raises(TaskCancelled):
        execution.result(timeout=10)
    status = execution.status()
    assert status.state == "cancelled"
    # ended within the documented bound (cooperative cancel, then kill after 1 s)
    assert status.finished_at is not None
    # the pool carries on
    ok = _name("after")
    aesop.handler(ok)(lambda ctx: "still serving")
    assert aesop.execute_task(Task(name=ok)).content == "still serving"


def test_time_limit_on_cooperative_and_blocking_handlers(aesop: Aesoperator) -> None:
    nice, rude = _name("nice"), _name("rude")

    @aesop.handler(nice)
    async def forever(ctx: Any) -> None:
        await ctx.sleep(60)

    @aesop.handler(rude)
    def spin(ctx: Any) -> None:
        x = 0
        while True:
            x += 1

    cfg = TaskConfig(max_duration_seconds=0.5)
    executions = [aesop.execute_task_async(Task(name=n, config=cfg)) for n in (nice, rude)]
    for execution in executions:
        with pytest.raises(TimeLimitExceeded, match=r"max_duration_seconds=0.5"):
            execution.result(timeout=20)
        assert execution.status().state == "failed"
        assert execution.status().error.type == "TimeLimitExceeded"


def test_memory_limit_in_the_handler(aesop: Aesoperator) -> None:
    name = _name("hog")

    @aesop.handler(name)
    def hog(ctx: Any) -> None:
        blocks = []
        for _ in range(60):
            blocks.append(bytearray(16 * 1024 * 1024))  # touched pages: real RSS
            time.sleep(0.02)

    execution = aesop.execute_task_async(Task(name=name, config=TaskConfig(max_memory_mb=300)))
    with pytest.raises(MemoryLimitExceeded, match=r"max_memory_mb=300"):
        execution.result(timeout=30)
    assert execution.status().state == "failed"


def test_memory_limit_counts_child_processes_and_kills_them(
    aesop: Aesoperator, tmp_path: Path
) -> None:
    name = _name("childhog")
    pid_file = tmp_path / "child.pid"

    @aesop.handler(name)
    def spawn(ctx: Any, pid_file: str) -> None:
        code = "b = bytearray(400 * 1024 * 1024); import time; time.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", code])
        Path(pid_file).write_text(str(child.pid))
        child.wait()

    execution = aesop.execute_task_async(
        Task(name=name, inputs={"pid_file": str(pid_file)}, config=TaskConfig(max_memory_mb=300))
    )
    with pytest.raises(MemoryLimitExceeded):
        execution.result(timeout=30)
    child_pid = int(pid_file.read_text())

    def gone() -> bool:
        try:
            return psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    eventually(gone, timeout=5, what="the handler's child process ends with the memory kill")


@pytest.mark.parametrize(
    ("how", "expected"),
    [("exit", "exited with code 3"), ("segfault", "SIGSEGV")],
)
def test_worker_crash_fails_one_execution_only(aesop: Aesoperator, how: str, expected: str) -> None:
    crash, healthy = _name("crash"), _name("healthy")

    @aesop.handler(crash)
    def die(ctx: Any, how: str) -> None:
        time.sleep(0.2)
        if how == "exit":
            os._exit(3)
        import ctypes

        ctypes.string_at(0)  # segfault

    @aesop.handler(healthy)
    def fine(ctx: Any) -> str:
        time.sleep(0.6)
        return "fine"

    bad = aesop.execute_task_async(Task(name=crash, inputs={"how": how}))
    good = aesop.execute_task_async(Task(name=healthy))
    with pytest.raises(WorkerCrashed, match=expected):
        bad.result(timeout=20)
    assert good.result(timeout=20).content == "fine"
    # and a replacement worker serves the next one
    assert aesop.execute_task(Task(name=healthy), timeout=20).content == "fine"


def _run_script(tmp_path: Path, body: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "AESOP_DATA_DIR": str(tmp_path / "data")},
    )


def test_script_without_main_guard_is_never_rerun_in_workers(tmp_path: Path) -> None:
    # Written exactly like a TASKS.md snippet: top-level code, no __main__ guard.
    proc = _run_script(
        tmp_path,
        """
        import aesoperator as aesop
        from aesoperator import Task
        with open("side_effects.log", "a") as fh:
            fh.write("top-level ran\\n")

        def double(x):
            return x * 2

        @aesop.handler("process_sales_data")
        def process(ctx, n):
            return {"n": double(n)}

        result = aesop.execute_task(Task(name="process_sales_data", inputs={"n": 21}))
        print(f"Task completed with result: {result}")
        print(result.data["n"])
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("42")
    assert (tmp_path / "side_effects.log").read_text() == "top-level ran\n"


def test_handlers_whose_modules_import_from_the_client_s_path(tmp_path: Path) -> None:
    """A handler's module, and what it imports, found on a path the client added at run time
    (a project directory, a plugin folder): the worker imports them from that path too."""
    code = tmp_path / "project"
    code.mkdir()
    tag = _name("p")
    (code / f"{tag}_helper.py").write_text("FACTOR = 3\n")
    (code / f"{tag}_handlers.py").write_text(
        f"from {tag}_helper import FACTOR\n\ndef triple(ctx, n):\n    return n * FACTOR\n"
    )
    proc = _run_script(
        tmp_path,
        f"""
        import sys
        sys.path.insert(0, {str(code)!r})
        import aesoperator as aesop
        from aesoperator import Task
        from {tag}_handlers import triple

        aesop.handler("triple")(triple)
        print(aesop.execute_task(Task(name="triple", inputs={{"n": 14}})).data)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("42")


def test_restart_recovery_marks_interrupted(tmp_path: Path) -> None:
    proc = _run_script(
        tmp_path,
        """
        import os, time
        import aesoperator as aesop
        from aesoperator import Task

        @aesop.handler("long_job")
        def long_job(ctx):
            time.sleep(60)

        @aesop.handler("quick_job")
        def quick_job(ctx):
            return "done"

        done = aesop.execute_task(Task(name="quick_job"))
        execution = aesop.execute_task_async(Task(name="long_job"))
        while aesop.get_task_status(execution.id).state != "running":
            time.sleep(0.01)
        print(done.execution_id, execution.id, flush=True)
        os._exit(1)  # the process dies with an execution running
        """,
    )
    done_id, running_id = proc.stdout.split()
    client = Aesoperator(data_dir=tmp_path / "data", isolation="inline")
    try:
        status = client.get_task_status(running_id)
        assert status.state == "failed"
        assert status.error is not None and status.error.type == "Interrupted"
        assert "exited before it finished" in status.error.message
        kept = client.get_task_status(done_id)
        assert kept.state == "completed" and kept.result is not None
        assert kept.result.content == "done"
    finally:
        client.close()


def test_unguarded_script_with_extraction_runs_once_inline_too(tmp_path: Path) -> None:
    # The web layer's extraction processes must not re-import an unguarded __main__ either.
    proc = _run_script(
        tmp_path,
        """
        import threading
        from http.server import HTTPServer, SimpleHTTPRequestHandler
        from aesoperator import Aesoperator, Task, TaskConfig
        with open("side_effects.log", "a") as fh:
            fh.write("top-level ran\\n")
        open("page.html", "w").write("<html><title>T</title><body><article><p>" +
                                     "Words here. " * 50 + "</p></article></body></html>")
        server = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/page.html"
        aesop = Aesoperator(isolation="inline")

        @aesop.handler("read")
        async def read(ctx, url):
            page = await ctx.web.fetch(url)
            return (await ctx.web.extract(page)).title

        cfg = TaskConfig(allow_private_network=True, allowed_domains=["127.0.0.1"])
        print(aesop.execute_task(Task(name="read", inputs={"url": url}, config=cfg)).content)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("T")
    assert (tmp_path / "side_effects.log").read_text() == "top-level ran\n"
