"""``open_store(url)``: which URLs open which store, and what a wrong one says."""

from __future__ import annotations

from pathlib import Path

import pytest

from aesoperator import Aesoperator, UserError
from aesoperator.store import open_store
from aesoperator.store.memory import Memory


def test_a_sqlite_url_and_a_plain_path_open_the_same_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Aesoperator(data_dir=data, isolation="inline") as client:
        client.memory.set("k", "v")
    for url in (f"sqlite://{data}", str(data), data):
        store = open_store(url)
        try:
            assert Memory(store, "global").get("k") == "v"
            assert store.artifacts_dir("e1") == data / "artifacts" / "e1"
        finally:
            store.close()
    assert (data / "aesoperator.sqlite3").is_file()


def test_a_sqlite_url_may_name_the_database_file(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path / 'db' / 'ops.sqlite3'}")
    try:
        Memory(store, "global").set("k", 1)
        assert store.artifacts_dir("e1") == tmp_path / "db" / "artifacts" / "e1"
    finally:
        store.close()
    assert (tmp_path / "db" / "ops.sqlite3").is_file()
    assert not (tmp_path / "db" / "aesoperator.sqlite3").exists()


def test_the_default_is_the_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESOP_DATA_DIR", str(tmp_path / "env"))
    open_store().close()
    assert (tmp_path / "env" / "aesoperator.sqlite3").is_file()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://localhost/0", "unknown scheme 'redis://'; known: sqlite://, postgresql://"),
        ("sqlite://", "no path"),
        ("", "give a data directory"),
    ],
)
def test_an_unknown_or_empty_url_is_a_user_error(url: str, says: str) -> None:
    with pytest.raises(UserError, match="store") as info:
        open_store(url)
    assert says in str(info.value)
    if url:
        assert repr(url) in str(info.value)


def test_a_database_that_is_not_one_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(UserError, match="is not a readable Aesoperator database"):
        open_store(f"sqlite://{bad}")
    assert bad.read_bytes() == b"not a database" * 100  # left as it was
