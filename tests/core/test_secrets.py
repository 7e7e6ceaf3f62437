"""Secrets never leave a task, in any encoding, key or value, nor stay in the SQLite files."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task, TaskConfig
from secret_forms import ODD, encoded, leaks, leaks_in_json_lines, random_forms, random_secret
from serving import QuietHandler, running


def _cli(data_dir: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "aesoperator.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "AESOP_POOL_SIZE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _cli_leaks(data_dir: Path, execution_id: str) -> list[str]:
    found = []
    for args in (("events", execution_id, "--json"), ("status", execution_id, "--json"),
                 ("list", "--json")):  # fmt: skip
        found += leaks_in_json_lines(_cli(data_dir, *args), ODD)
    return found


def test_secret_in_keys_values_and_every_encoding_is_redacted(aesop: Aesoperator) -> None:
    forms = encoded(ODD)  # built here: the worker process cannot import this test's helpers

    @aesop.handler("leaks_everywhere")
    def leak(ctx: Any) -> Any:
        pw = ctx.secrets["pw"]
        ctx.emit("leak", **{pw: "a key", f"url-{forms['quote']}": forms, "raw": pw.encode()})
        ctx.log(" ".join(forms.values()))
        with ctx.action(f"login {forms['path_safe']}", **{forms["b64_1"]: [pw, (pw,)]}):
            ctx.progress(50, message=forms["quote_lower_hex"])
        return {pw: forms, forms["b64url_2"]: {"n": 1}, "list": [pw, (forms["html"],)]}

    result = aesop.execute_task(Task(name="leaks_everywhere", secrets={"pw": ODD}))
    assert result.data["[secret:pw]"]["quote"] == "[secret:pw]"  # keys and values both
    assert leaks(result.model_dump(mode="json"), ODD) == []
    events = [e.model_dump(mode="json") for e in aesop.get_events(result.execution_id)]
    leaked = next(e["data"] for e in events if e["kind"] == "leak")
    assert set(leaked) == {"[secret:pw]", "url-[secret:pw]", "raw"}
    assert leaks(events, ODD) == []
    assert _cli_leaks(aesop.data_dir, result.execution_id) == []


class _Echo(QuietHandler):
    def do_GET(self) -> None:
        self.reply(200, f"<html><title>echo</title><body>{self.path}</body></html>")


@pytest.fixture
def echo() -> Iterator[str]:
    with running(ThreadingHTTPServer(("127.0.0.1", 0), _Echo), poll_interval=0.05) as srv:
        yield f"http://127.0.0.1:{srv.server_address[1]}"


def test_secret_in_a_fetched_url_is_redacted_from_the_page_event(
    aesop: Aesoperator, echo: str
) -> None:
    @aesop.handler("fetch_with_secret")
    async def fetch(ctx: Any) -> Any:
        page = await ctx.web.fetch(f"{echo}/login?user=ada&pw={ctx.secrets['pw']}&next=%2F")
        return {"url": page.url, "text": page.text}

    cfg = TaskConfig(allow_private_network=True, allowed_domains=["127.0.0.1"],
                     respect_robots_txt=False)  # fmt: skip
    result = aesop.execute_task(Task(name="fetch_with_secret", config=cfg, secrets={"pw": ODD}))
    assert "pw=[secret:pw]&next" in result.data["url"]
    events = [e.model_dump(mode="json") for e in aesop.get_events(result.execution_id)]
    page = next(e["data"] for e in events if e["kind"] == "page")
    assert page["url"].endswith("/login?user=ada&pw=[secret:pw]&next=%2F")
    assert leaks(events, ODD) == [] and leaks(result.model_dump(mode="json"), ODD) == []
    assert _cli_leaks(aesop.data_dir, result.execution_id) == []


def test_a_sub_task_keeps_its_parents_secret_out_of_its_record(aesop: Aesoperator) -> None:
    @aesop.handler("child_echo")
    def child(ctx: Any, token: str) -> Any:
        ctx.log(f"got {token}")
        return {token: token}

    @aesop.handler("parent_passes_secret")
    async def parent(ctx: Any) -> Any:
        sub = await ctx.run_subtask(Task(name="child_echo", inputs={"token": ctx.secrets["pw"]}))
        return {"child": sub.data, "id": sub.execution_id}

    result = aesop.execute_task(Task(name="parent_passes_secret", secrets={"pw": ODD}))
    assert result.data["child"] == {"[secret:pw]": "[secret:pw]"}  # what the parent got, too
    child_id = result.data["id"]
    status = aesop.get_task_status(child_id).model_dump(mode="json")
    events = [e.model_dump(mode="json") for e in aesop.get_events(child_id)]
    assert leaks([status, events], ODD) == []
    assert _cli_leaks(aesop.data_dir, child_id) == []


def test_session_memory_that_held_a_secret_leaves_no_trace_in_the_sqlite_files(
    tmp_path: Path,
) -> None:
    secret = "s3ss10n-t0ken-Qx7"  # ASCII: the bytes on disk are the value itself
    with Aesoperator(data_dir=tmp_path, isolation="inline") as aesop:

        @aesop.handler("remembers_secret")
        def remember(ctx: Any) -> str:
            ctx.memory.set("token", ctx.secrets["pw"])
            ctx.memory.set(f"key-{ctx.secrets['pw']}", {"again": ctx.secrets["pw"]})
            assert ctx.memory.get("token") == ctx.secrets["pw"]
            return "ok"

        task = Task(name="remembers_secret", memory_scope="session", secrets={"pw": secret})
        assert aesop.execute_task(task).content == "ok"
        files = [tmp_path / "aesoperator.sqlite3", tmp_path / "aesoperator.sqlite3-wal"]
        found = [f.name for f in files if f.exists() and secret.encode() in f.read_bytes()]
        assert found == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_random_secrets_in_mixed_encodings_are_redacted(
    inline: Aesoperator, seed: int
) -> None:
    rng = random.Random(seed)
    secrets = {f"s{i}": random_secret(rng) for i in range(10)}
    forms = {name: random_forms(value, rng) for name, value in secrets.items()}
    # A hostile page's worth of backslashes, escapes and quotes: redaction stays linear.
    noise = "\\" * 50_000 + "%25" * 10_000 + "\\u00" * 5_000

    @inline.handler("fuzzed")
    def fuzzed(ctx: Any) -> Any:
        for name, values in forms.items():
            ctx.emit("forms", name=name, values=values, keyed={v: 1 for v in values})
        ctx.emit("noise", text=noise)
        return forms

    result = inline.execute_task(Task(name="fuzzed", secrets=secrets))
    events = [e.model_dump(mode="json") for e in inline.get_events(result.execution_id)]
    for name, value in secrets.items():
        assert leaks([events, result.model_dump(mode="json")], value) == [], name
    assert all(v == f"[secret:{k}]" for k, vs in result.data.items() for v in vs[:4])


@pytest.mark.parametrize("value", ["12", "x", ""])
def test_a_secret_too_short_to_redact_is_refused_without_echoing_it(value: str) -> None:
    from aesoperator import ValidationError

    with pytest.raises(ValidationError, match=r"secrets\['pin'\] is shorter than 3") as info:
        Task(name="login", secrets={"pin": value})
    assert f"'{value}'" not in str(info.value)


def test_an_invalid_secret_is_never_echoed_even_in_a_traceback() -> None:
    # The pydantic error carries the input; chained under ours it would print it.
    script = "from aesoperator import Task\nTask(name='x', secrets={'pw': 918273645})\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert "ValidationError" in proc.stderr and "secrets.pw" in proc.stderr
    assert "918273645" not in proc.stderr
