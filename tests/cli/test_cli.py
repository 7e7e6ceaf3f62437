"""The ``aesop`` command, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HANDLERS = """
import time
import aesoperator as aesop

@aesop.handler("greet")
def greet(ctx, who="world"):
    with ctx.action("greeting", who=who):
        ctx.progress(50)
    return f"hello {who}"

@aesop.handler("slow")
def slow(ctx):
    for i in range(600):
        ctx.check_cancelled()
        ctx.progress(i / 6)
        time.sleep(0.05)
    return "done"

@aesop.handler("fail")
def fail(ctx):
    raise ValueError("bad input row 7")
"""


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "my_handlers.py").write_text(textwrap.dedent(HANDLERS))
    data = tmp_path / "data"

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aesoperator.cli", *args, "--data-dir", str(data)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "AESOP_POOL_SIZE": "1"},
        )

    return run


def test_run_from_flags_prints_the_result(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("run", "--import", "my_handlers", "-n", "greet", "-i", "who=ada")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello ada"
    assert "via handler:greet" in proc.stderr


def test_run_from_yaml_and_json_task_files(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "t.yaml").write_text("name: greet\ninputs:\n  who: yaml\nconfig:\n  max_pages: 3\n")
    (tmp_path / "t.json").write_text(json.dumps({"name": "greet", "inputs": {"who": "json"}}))
    for file, who in (("t.yaml", "yaml"), ("t.json", "json")):
        proc = cli("run", file, "--import", "my_handlers", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["content"] == f"hello {who}"


def test_failures_exit_nonzero_with_one_line_on_stderr(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = cli("run", "--import", "my_handlers", "-n", "fail")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "ValueError: bad input row 7" in proc.stderr
    bad = cli("run", "-n", "greet", "-c", "max_pages=0")
    assert bad.returncode == 2 and "TaskConfig.max_pages: got 0" in bad.stderr
    missing = cli("run", "nope.yaml")
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    broken = cli("run", "broken.yaml")
    assert broken.returncode != 0 and "not valid YAML" in broken.stderr
    unknown = cli("status", "doesnotexist")
    assert unknown.returncode == 2 and "no execution 'doesnotexist'" in unknown.stderr


def test_async_status_events_list_and_cancel(cli) -> None:  # type: ignore[no-untyped-def]
    started = cli("run", "--import", "my_handlers", "-n", "slow", "--async")
    assert started.returncode == 0, started.stderr
    execution_id = started.stdout.strip()
    deadline = time.monotonic() + 30
    while True:  # the detached runner goes on after `run --async` returned
        status = json.loads(cli("status", execution_id, "--json").stdout)
        if status["state"] == "running" and status["progress"] > 0:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    listed = cli("list", "--state", "running")
    assert execution_id in listed.stdout
    cancelled = cli("cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{execution_id} cancelled"
    again = cli("cancel", execution_id)
    assert again.returncode == 1 and "already finished" in again.stderr
    events = cli("events", execution_id, "--json")
    kinds = [json.loads(line)["kind"] for line in events.stdout.splitlines()]
    assert kinds[0] == "state" and "cancelled" in events.stdout


def test_memory_commands(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("memory", "set", "visited_urls", '["https://example.com"]').returncode == 0
    assert cli("memory", "set", "note", "plain text").returncode == 0
    got = cli("memory", "get", "visited_urls")
    assert json.loads(got.stdout) == ["https://example.com"]
    assert json.loads(cli("memory", "get", "note").stdout) == "plain text"
    assert cli("memory", "list").stdout.split() == ["note", "visited_urls"]
    assert cli("memory", "delete", "note").returncode == 0
    missing = cli("memory", "get", "note")
    assert missing.returncode == 1 and "no memory key 'note'" in missing.stderr


def test_watch_shows_progress_and_finishes(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("run", "--import", "my_handlers", "-n", "greet", "--watch")
    assert proc.returncode == 0, proc.stderr
    assert "completed" in proc.stdout and "hello world" in proc.stdout
