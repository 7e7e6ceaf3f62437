"""Secrets never leave a task, in any encoding, key or value, nor stay in the SQLite files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aesoperator import Aesoperator, Task


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
