"""TASKS.md a second time, against a served instance: the same script, the same checks, the
client made remote by AESOP_URL/AESOP_TOKEN in the script's environment (``import aesoperator
as aesop`` then talks to the server). The server runs in the script's working directory (the
data task names its CSV files relative to it) with the offline web's environment, and imports
the module where ``run_and_check`` puts any snippet that registers a handler or a function."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
from _remote import make_token, need_service, served
from test_tasks_md import HANDLERS_MODULE, run_and_check


def test_every_snippet_runs_as_written_against_a_served_instance(tmp_path: Path) -> None:
    need_service()

    @contextmanager
    def serve(cwd: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
        data_dir = cwd / "served-data"
        data_dir.mkdir()
        token = make_token(data_dir, "tasks-md", "--scope", "run")
        with served(data_dir, imports=(HANDLERS_MODULE,), cwd=cwd, env=env) as url:
            yield {"AESOP_URL": url, "AESOP_TOKEN": token}

    run_and_check(tmp_path, serve)
