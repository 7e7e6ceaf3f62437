"""The ``aesop`` command, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from waiting import eventually

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

    def running() -> bool:  # the detached runner goes on after `run --async` returned
        status = json.loads(cli("status", execution_id, "--json").stdout)
        assert status["state"] == "running" and status["progress"] > 0, status
        return True

    eventually(running, timeout=30, interval=0.1, what="the detached run under way")
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


# -- clean errors: one `aesop: ...` line on stderr, exit 2 for the caller's mistakes ---------


def one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith("aesop: "), line
    return line


BOMB = "name: bomb\ninputs:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcde", "bcdef", strict=True)
)  # 9**6 strings once expanded; the reported file had 9 levels (117 s, 15.7 GB)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (BOMB.encode(), "line 4: YAML aliases (*a) are not allowed in task files"),
        (b"name: x\ninputs:\n  who: caf\xe9\n", "is not UTF-8 text (byte b'\\xe9' at offset 26)"),
        (b"name: x\ninputs: [1, 2]\n", "'inputs' must be a mapping of names to values, not a list"),
        (b"name: x\ninputs:\n", "'inputs' must be a mapping of names to values, not empty"),
        (b"name: x\ninputs: hello\n", "'inputs' must be a mapping of names to values, not a str"),
        (b"name: x\nconfig: [1]\n", "'config' must be a mapping of names to values, not a list"),
        (b"- name: x\n", "must hold a mapping with at least 'name', not a list"),
        (b"name: [unclosed\n", "is not valid YAML/JSON"),
        (
            b"name: x\ninputs:\n  a: " + b"[" * 500 + b"]" * 500 + b"\n",
            "line 3: nested more than 64 levels deep",
        ),
        (
            b'{"name": "x", "inputs": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
            "nested too deep; the limit is 64 levels",
        ),
        (
            b'{"name": "x", "inputs": {"a": ' + b"[" * 500 + b"]" * 500 + b"}}",
            "Task.inputs: nested 501 deep; the limit is 64 levels",
        ),
        (b"name: x\ninputs:\n  n: " + b"1" * 5000 + b"\n", "a number too long to read"),
    ],
)
def test_bad_task_files_are_one_clear_line(
    cli: Any, tmp_path: Path, content: bytes, expected: str
) -> None:
    (tmp_path / "task.yaml").write_bytes(content)
    line = one_line_error(cli("run", "task.yaml", timeout=60))
    assert "task.yaml" in line or "Task." in line
    assert expected in line


def test_task_file_dates_stay_text(cli: Any, tmp_path: Path) -> None:
    # A date is not JSON: `start_date: 2023-01-01` means the text, as in TASKS.md's task.
    (tmp_path / "t.yaml").write_text("name: greet\ninputs: {who: 2023-01-01}\n")
    proc = cli("run", "t.yaml", "--import", "my_handlers")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello 2023-01-01"


def test_bad_flags_modules_and_data_dirs_are_one_clear_line(cli: Any, tmp_path: Path) -> None:
    deep = "[" * 60_000 + "]" * 60_000  # argv allows 128 KiB per argument
    line = one_line_error(cli("run", "-n", "greet", "-i", f"who={deep}"))
    assert "--input who: nested too deep; the limit is 64 levels" in line
    (tmp_path / "raising.py").write_text("raise ValueError('boom at import')\n")
    line = one_line_error(cli("run", "-n", "greet", "--import", "raising"))
    assert "--import 'raising': importing it raised ValueError: boom at import" in line
    line = one_line_error(cli("run", "-n", "x", "-c", "allowed_domains=https://x.org/a"))
    assert "'https://x.org/a' is a URL, not a domain; use 'x.org' in allowed_domains" in line
    line = one_line_error(cli("run", "-n", "summarize"))
    assert "summarize skill, which needs a 'text' input" in line
    assert "No planner" not in line
    # The data directory: a file, a place nobody may write, a database that is not one.
    (tmp_path / "a_file").write_text("x")
    garbage = bytes(range(256)) * 20
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "aesoperator.sqlite3").write_bytes(garbage)
    for data_dir, why in [
        (tmp_path / "a_file", "a file, not a directory"),
        (Path("/sys/aesop-test"), "cannot be used"),
        (tmp_path / "corrupt", "aesoperator.sqlite3' is not a readable Aesoperator database"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "aesoperator.cli", "list", "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert why in one_line_error(proc)
    assert (tmp_path / "corrupt" / "aesoperator.sqlite3").read_bytes() == garbage  # untouched


def test_a_lone_surrogate_argument_is_reported_not_crashed_on(tmp_path: Path) -> None:
    # A byte that is not UTF-8 in argv arrives as a lone surrogate (surrogateescape).
    proc = subprocess.run(
        [sys.executable, "-m", "aesoperator.cli", "memory", "set", b"key\xff", "1",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "memory key 'key\\udcff'" in one_line_error(proc)


def test_every_command_takes_json_and_there_is_a_version(cli: Any) -> None:
    import typer
    from typer.testing import CliRunner

    from aesoperator.cli import app

    runner = CliRunner()
    commands: list[list[str]] = []
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if command.hidden:
            continue
        subs = getattr(command, "commands", None)
        commands += [[name, sub] for sub in subs] if subs else [[name]]
    assert len(commands) == 18, commands  # + mcp, schedule add|list|remove, worker
    for command in commands:
        help_text = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
        assert "--json" in help_text, command
    assert cli("memory", "set", "k", "[1, 2]", "--json").stdout.strip() == (
        '{"key": "k", "value": [1, 2]}'
    )
    assert json.loads(cli("memory", "list", "--json").stdout) == ["k"]
    assert json.loads(cli("memory", "get", "k", "--json").stdout) == [1, 2]
    assert json.loads(cli("memory", "delete", "k", "--json").stdout) == {
        "key": "k", "deleted": True,
    }  # fmt: skip
    version = subprocess.run(
        [sys.executable, "-m", "aesoperator.cli", "--version"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert version.returncode == 0 and version.stdout.strip() == "aesop 0.1.0"


def test_a_data_task_says_where_its_files_went_and_out_saves_the_report(
    cli: Any, tmp_path: Path
) -> None:
    (tmp_path / "sales.csv").write_text("date,revenue,customer\n2024-01-05,10,a\n2024-02-05,30,b\n")
    proc = cli(
        "run", "-n", "sales", "-i", 'data_files=["sales.csv"]', "-i", 'metrics=["revenue"]',
        "-o", "out/sales.xlsx", timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = [line for line in proc.stderr.splitlines() if line.startswith("file: ")]
    assert files and files[0].startswith("file: report.xlsx: ")
    assert Path(files[0].split(": ", 2)[2]).is_file()
    assert "report: out/sales.xlsx" in proc.stderr
    assert (tmp_path / "out" / "sales.xlsx").read_bytes()[:2] == b"PK"  # a workbook
    line = one_line_error(cli("run", "-n", "sales", "--async", "--out", "x.xlsx"))
    assert "--out needs the result" in line
