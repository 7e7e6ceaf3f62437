"""What the Temporal backend refuses, before anything is stored: each a ``UserError`` that
names the field and the fix (a real PostgreSQL; no Temporal server needed but for the last)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from temporal_world import Setup

from aesoperator import Aesoperator, Task, TaskState, UserError
from aesoperator.store import open_store
from waiting import eventually


def stored(store_url: str) -> int:
    store = open_store(store_url)
    try:
        return len(store.list_executions(limit=100))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("backend", "says"),
    [
        ("temporl://127.0.0.1:7233", "use temporal://host:7233"),
        ("127.0.0.1:7233", "use temporal://host:7233"),
        ("temporal://127.0.0.1:72x3", "port is not a number"),
        ("temporal://127.0.0.1:7233?taskqueue=q", "unknown parameter(s) ['taskqueue']"),
        ("temporal://127.0.0.1:7233?task_queue=", "give a non-empty name"),
    ],
)
def test_backend_url_typos(postgres_url: object, backend: str, says: str) -> None:
    pytest.importorskip("temporalio")
    store = postgres_url()  # type: ignore[operator]
    with pytest.raises(UserError) as err:
        Aesoperator(store=store, backend=backend)
    message = str(err.value)
    assert message.startswith("backend:"), message
    assert says in message
    assert stored(store) == 0


def test_a_sqlite_store_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("temporalio")
    with pytest.raises(UserError) as err:
        Aesoperator(store=str(tmp_path / "data"), backend="temporal://127.0.0.1:7233")
    message = str(err.value)
    assert "store=" in message and "postgresql://" in message, message
    assert stored(str(tmp_path / "data")) == 0


def test_a_task_with_secrets_is_refused_without_a_payload_key(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AESOP_TEMPORAL_KEY", raising=False)
    client = setup.client()
    task = Task(
        name="t.add", inputs={"a": 1, "b": 2, "log": setup.log}, secrets={"k": "s3cret-value"}
    )
    with pytest.raises(UserError) as err:
        client.execute_task_async(task)
    assert str(err.value).startswith("secrets:"), err.value
    assert "$AESOP_TEMPORAL_KEY" in str(err.value) and "backend='process'" in str(err.value)
    assert client.list_tasks() == []


def test_a_short_payload_key_is_refused(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESOP_TEMPORAL_KEY", "short")
    with pytest.raises(UserError, match=r"^AESOP_TEMPORAL_KEY: 5 characters; give at least 16"):
        setup.client().execute_task_async(Task(name="t.add", secrets={"k": "s3cret-value"}))


def test_an_unreachable_temporal(postgres_url: object) -> None:
    pytest.importorskip("temporalio")
    from serving import free_port

    def runtimes() -> int:
        return sum(t.name == "aesoperator-runtime" for t in threading.enumerate())

    store = postgres_url()  # type: ignore[operator]
    before = runtimes()
    client = Aesoperator(store=store, backend=f"temporal://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(UserError) as err:
            client.execute_task_async(Task(name="t.add", inputs={"a": 1, "b": 2, "log": "-"}))
        assert runtimes() == before  # the runtime that could not start left no thread behind
        message = str(err.value)
        assert message.startswith("backend: cannot reach Temporal at 127.0.0.1:"), message
        assert "fix the address" in message
        assert client.list_tasks() == []
    finally:
        client.close()


def test_a_namespace_that_does_not_exist(postgres_url: object, temporal: object) -> None:
    store = postgres_url()  # type: ignore[operator]
    backend = f"temporal://{temporal.address}?namespace=no-such-ns"  # type: ignore[attr-defined]
    client = Aesoperator(store=store, backend=backend)
    try:
        with pytest.raises(UserError) as err:
            client.execute_task_async(Task(name="t.add", inputs={"a": 1, "b": 2, "log": "-"}))
        message = str(err.value)
        assert "has no namespace 'no-such-ns'" in message, message
        assert "temporal operator namespace create" in message
        assert client.list_tasks() == []
    finally:
        client.close()


def test_the_worker_command_refuses_bad_options(postgres_url: object, tmp_path: Path) -> None:
    import subprocess
    import sys

    from temporal_world import worker_env

    store = postgres_url()  # type: ignore[operator]
    cases = [
        (["--backend", "temporl://127.0.0.1:7233", "--store", store], "--backend"),
        (["--backend", "temporal://127.0.0.1:7233", "--store", str(tmp_path)], "--store"),
    ]
    for args, field in cases:
        done = subprocess.run(
            [sys.executable, "-m", "aesoperator.cli", "worker", *args],
            capture_output=True, text=True, env=worker_env(), timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done
        assert field in done.stderr, done.stderr


def test_a_worker_with_another_payload_key_says_so(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealed with one key, taken by a worker with another: it cannot open the payload, runs
    nothing, and its log names both keys' ids and the fix."""
    import os

    from temporal_world import start_worker

    worker = start_worker(
        setup.backend, setup.store, setup.dir,
        env=dict(os.environ, AESOP_TEMPORAL_KEY="the-workers-key-0123456789"),
    )  # fmt: skip
    setup.workers.append(worker)
    monkeypatch.setenv("AESOP_TEMPORAL_KEY", "the-clients-key-0123456789")
    client = setup.client()
    execution = client.execute_task_async(
        Task(name="t.secret", inputs={"log": setup.log}, secrets={"pw": "s3cret-value"})
    )
    eventually(
        lambda: "cannot be opened here (key " in worker.stderr.read_text(),
        timeout=30, what="the worker logged the key mismatch",
    )  # fmt: skip
    text = worker.stderr.read_text()
    assert "set the same $AESOP_TEMPORAL_KEY on every client and worker" in text
    assert "s3cret-value" not in text
    assert client.get_task_status(execution.id).state is TaskState.PENDING
    assert setup.effects() == []


def test_a_keyless_client_s_tasks_run_on_a_worker_with_a_key(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rolling a key out, workers first: what a client without one sends is not sealed, and
    a worker with a key still runs it (only tasks with secrets need the client's key)."""
    import os

    from temporal_world import start_worker

    setup.workers.append(
        start_worker(setup.backend, setup.store, setup.dir,
                     env=dict(os.environ, AESOP_TEMPORAL_KEY="the-workers-key-0123456789"))
    )  # fmt: skip
    monkeypatch.delenv("AESOP_TEMPORAL_KEY", raising=False)
    result = setup.client().execute_task(
        Task(name="t.add", inputs={"a": 2, "b": 5, "log": setup.log}), timeout=60
    )
    assert result.data == {"sum": 7}
