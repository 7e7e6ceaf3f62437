"""TASKS.md is the user-facing contract: every snippet in it runs as written.

The snippets run in order, in one Python process, as a reader would paste them into one
script. What the page leaves implicit is provided up front and said here: ``aesop`` (the
module, the default client), ``time``, the two sales CSV files in the working directory, and
a stand-in for the public web (``offline_web.py``) that answers for wikipedia.org, arxiv.org,
nature.com, science.org, duckduckgo.com and example.com on 127.0.0.1. The snippets themselves
are not changed by a character. An epilogue then checks what the page promises.
"""

from __future__ import annotations

import asyncio
import csv
import os
import random
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from datetime import date, timedelta
from pathlib import Path

import pytest

from aesoperator import PolicyViolation, TaskConfig
from aesoperator.web.policy import Policy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline_web import offline_web

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "TASKS.md"
SHARED = ROOT.parent / "shared" / "TASKS.md"

PRELUDE = """\
import time
import aesoperator as aesop
"""

EPILOGUE = """
# ---- epilogue: not part of TASKS.md ----
import json, openpyxl, sys
sys.path.insert(0, {tests!r})
from waiting import eventually
print("CHECK data planner:", result.planner)
print("CHECK summary planner:", summary.planner)
print("CHECK polled state:", status.state, status.progress)
print("CHECK memory:", json.dumps(visited))
print("CHECK summary length:", len(summary.content))
wb = openpyxl.load_workbook("sales_analysis.xlsx")
print("CHECK workbook sheets:", json.dumps(wb.sheetnames))
# Callbacks run one at a time, in order: once this one has an alert, handle_alert has printed.
delivered = []
execution.on_alert(delivered.append)
eventually(lambda: delivered, timeout=60, interval=0.05, what="an alert delivered")
print("CHECK monitor state before cancel:", execution.status().state)
execution.cancel()
final = execution.wait(15)
print("CHECK monitor final:", final.state, len(final.alerts))
"""


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_repo_copy_is_the_shared_contract() -> None:
    if not SHARED.exists():
        pytest.skip("no shared/TASKS.md beside this checkout")
    assert DOC.read_text(encoding="utf-8") == SHARED.read_text(encoding="utf-8")


def _sales(path: Path, start: date, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["order_id", "order_date", "customer_id", "product", "quantity", "unit_price"])
        for i in range(rows):
            day = start + timedelta(days=rng.randrange(90))
            out.writerow(
                [f"{seed}-{i}", day.isoformat(), f"C{rng.randrange(40):03d}",
                 rng.choice(["Widget", "Gadget", "Gizmo"]), rng.randint(1, 5),
                 rng.choice([9.99, 19.5, 42.0])]
            )  # fmt: skip


def test_trusted_hosts_route_a_name_but_keep_every_domain_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AESOP_TRUSTED_HOSTS", "wikipedia.org=127.0.0.1,meta.test=169.254.169.254")
    policy = Policy.from_config(TaskConfig(allowed_domains=["wikipedia.org", "meta.test"]))
    assert asyncio.run(policy.resolve("wikipedia.org", 443)) == ["127.0.0.1"]
    with pytest.raises(PolicyViolation) as refused:
        asyncio.run(policy.resolve("meta.test", 80))  # metadata stays refused
    assert refused.value.rule == "cloud_metadata"
    with pytest.raises(PolicyViolation) as other:
        policy.check_url("https://example.com/")  # domain rules still apply
    assert other.value.rule == "allowed_domains"
    plain = Policy.from_config(TaskConfig())
    with pytest.raises(PolicyViolation):  # an unlisted loopback name is still refused
        asyncio.run(plain.resolve("localhost", 80))


def test_every_snippet_runs_as_written(tmp_path: Path) -> None:
    run_and_check(tmp_path)


# Served: given the working directory and the environment of the run, start a served instance
# there and yield what makes the script's client remote (AESOP_URL, AESOP_TOKEN).
Serve = Callable[[Path, dict[str, str]], AbstractContextManager[dict[str, str]]]
REGISTERS = re.compile(r"\baesop\.(handler|function)\b")
HANDLERS_MODULE = "tasks_md_handlers"


def run_and_check(tmp_path: Path, serve: Serve | None = None) -> None:
    """Run TASKS.md's snippets as one script and check what the page promises.

    With ``serve``, the same script runs against a served instance (tests/service): snippets
    that register handlers or functions go, as written, into a module the server imports
    (``HANDLERS_MODULE``, in the working directory), the others into the script.
    """
    snippets = _snippets()
    assert len(snippets) == 9
    on_server = [b for b in snippets if serve is not None and REGISTERS.search(b)]
    (tmp_path / f"{HANDLERS_MODULE}.py").write_text(
        PRELUDE + "from aesoperator import Task, TaskConfig, TaskContext\n" + "".join(on_server)
    )
    script = PRELUDE + "".join(
        f"\n# ---- TASKS.md snippet {i + 1} ----\n{body}"
        for i, body in enumerate(snippets)
        if body not in on_server
    )
    epilogue = textwrap.dedent(EPILOGUE).format(tests=str(ROOT / "tests"))
    (tmp_path / "tasks_md.py").write_text(script + epilogue)
    _sales(tmp_path / "sales_q1.csv", date(2024, 1, 1), 400, 1)
    _sales(tmp_path / "sales_q2.csv", date(2024, 4, 1), 500, 2)
    try:
        web_cm = offline_web(tmp_path)
        web = web_cm.__enter__()
    except (PermissionError, OSError) as exc:
        pytest.skip(f"the web stand-in needs 127.0.0.1:80 and :443 ({exc})")
    stack = ExitStack()
    try:
        # The monitoring snippet alerts over alert_threshold_ms=1000: make the site slow.
        web.stats.slow_hosts["example.com"] = 1.3
        env = {**os.environ, **web.env, "AESOP_DATA_DIR": str(tmp_path / "data")}
        if serve is not None:
            env = {**env, **stack.enter_context(serve(tmp_path, env))}
            env["AESOP_DATA_DIR"] = str(tmp_path / "client-data-unused")
        proc = subprocess.run(
            [sys.executable, "tasks_md.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        hits = list(web.stats.hits)
        # The composition again, with DuckDuckGo answering its bot challenge (HTTP 202) as it
        # does to many automated clients: the summary must say so, not summarise nothing.
        web.stats.ddg_challenge = True
        composed = next(body for body in snippets if "def research_and_summarize" in body)
        (tmp_path / "composed.py").write_text(
            PRELUDE
            + "from aesoperator import Task, TaskConfig\n"
            + composed
            + "\nprint('CHECK composed:', summary.content)\n"
        )
        if serve is None:
            env["AESOP_DATA_DIR"] = str(tmp_path / "data-challenged")
        challenged = subprocess.run(
            [sys.executable, "composed.py"], cwd=tmp_path, capture_output=True, text=True,
            timeout=120, env=env,
        )  # fmt: skip
    finally:
        stack.close()
        web_cm.__exit__(None, None, None)
    if serve is not None:  # the client kept nothing on this machine but the report
        assert not (tmp_path / "client-data-unused").exists()
    out = proc.stdout
    print(out)  # shown by pytest on failure
    print(challenged.stdout, challenged.stderr[-3000:])
    assert challenged.returncode == 0
    said = re.search(r"CHECK composed: (.*)", challenged.stdout, re.S)
    assert said is not None and "DuckDuckGo" in said.group(1) and "challenge" in said.group(1)
    # The providers reached their APIs despite robots.txt; the walled journal was asked once;
    # arXiv got the start_date as a submittedDate range; DuckDuckGo's ad was never followed.
    assert any(h == "export.arxiv.org" and "submittedDate" in p for h, p in hits)
    walled = [p for h, p in hits if h.endswith("science.org") and p != "/robots.txt"]
    assert len(walled) == 1, walled
    assert not any(h == "duckduckgo.com" for h, _ in hits)
    assert proc.returncode == 0, f"stdout:\n{out[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "Task completed with result: TaskResult('research_topic' via skill:research" in out
    assert "State: completed" in out and "Progress: 100.0%" in out
    assert "Error (if any): None" in out
    assert 'CHECK memory: ["https://example.com"]' in out
    assert "CHECK data planner: skill:data" in out
    assert "CHECK summary planner: skill:summarize" in out
    summary_len = int(re.search(r"CHECK summary length: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert 0 < summary_len <= 1000
    assert "CHECK workbook sheets:" in out and '"Summary"' in out
    assert (tmp_path / "sales_analysis.xlsx").stat().st_size > 0
    assert "Alert: " in out and "Metrics: {" in out  # handle_alert ran in this process
    assert "CHECK monitor state before cancel: running" in out
    assert re.search(r"CHECK monitor final: cancelled [1-9]", out)
    assert web.stats.count("example.com") >= 2
    assert web.stats.count("en.wikipedia.org") > 0
