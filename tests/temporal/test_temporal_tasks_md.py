"""TASKS.md once more, on the Temporal backend: the same script and checks
(tests/docs/test_tasks_md.py), its default client made a Temporal one by AESOP_STORE and
AESOP_BACKEND in its environment. One ``aesop worker`` runs in the script's working directory
(the data task names its CSV files relative to it) with the offline web's environment, and
imports the module where ``run_and_check`` puts the snippets that register handlers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from temporal_world import start_worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
from test_tasks_md import HANDLERS_MODULE, run_and_check

pytestmark = pytest.mark.timeout(400)


def test_every_snippet_runs_as_written_on_temporal(
    temporal: object, postgres_url: Callable[[], str], tmp_path: Path
) -> None:
    store = postgres_url()
    backend = temporal.backend(f"q-{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]

    @contextmanager
    def serve(cwd: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
        worker = start_worker(
            backend, store, cwd, pool_size=3, imports=(HANDLERS_MODULE,), env=env, cwd=cwd
        )
        try:
            yield {"AESOP_STORE": store, "AESOP_BACKEND": backend}
        finally:
            worker.stop()

    run_and_check(tmp_path, serve)

    from aesoperator.store import open_store

    shared = open_store(store)
    try:  # the script's executions ran there, on the worker
        names = {s.name for s in shared.list_executions(limit=100)}
    finally:
        shared.close()
    assert {"research_topic", "process_sales_data"} <= names, names
