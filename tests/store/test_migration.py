"""A data directory of the version before projects and tokens opens and keeps its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aesoperator.store import open_store
from aesoperator.store.memory import Memory, namespace_for
from aesoperator.store.sqlite import _SCHEMA, DB_FILE, SCHEMA_VERSION


def test_a_data_dir_of_the_previous_version_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old = sqlite3.connect(data / DB_FILE)  # exactly what the previous version created
    old.executescript(_SCHEMA)
    old.execute(
        "INSERT INTO executions (id, name, task_json, state, created_at) VALUES"
        " ('old1', 'job', '{}', 'completed', '2026-01-01T00:00:00+00:00')"
    )
    old.execute("INSERT INTO memory VALUES ('task:job', 'k', '[1]', '2026-01-01T00:00:00+00:00')")
    old.commit()
    assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    old.close()

    store = open_store(data)
    try:
        status = store.status("old1", project="default")
        assert (status.name, status.state.value) == ("job", "completed")
        assert Memory(store, namespace_for("job", "permanent", "x")).get("k") == [1]
        assert [s.id for s in store.list_page(project="default")[0]] == ["old1"]
        store.token_create("after-migration")
        assert (
            store.step_put("old1", "fetch#1", "[1]") and store.step_get("old1", "fetch#1") == "[1]"
        )
    finally:
        store.close()
    again = open_store(data)  # a second open migrates nothing and loses nothing
    try:
        assert again.status("old1").name == "job"
        version = sqlite3.connect(data / DB_FILE).execute("PRAGMA user_version").fetchone()[0]
        assert version == SCHEMA_VERSION
    finally:
        again.close()


def test_permanent_memory_of_a_project_is_its_own() -> None:
    assert namespace_for("job", "permanent", "e1") == "task:job"  # default: as before
    assert namespace_for("job", "permanent", "e1", "acme") == "project:acme/task:job"
    assert namespace_for("job", "session", "e1", "acme") == "exec:e1"
