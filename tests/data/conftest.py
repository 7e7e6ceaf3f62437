"""Fixtures for the data skill's tests: an in-process client and a process-isolated one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aesoperator import Aesoperator

sys.path.insert(0, str(Path(__file__).parent))  # for _datahelpers (tests use importlib mode)


@pytest.fixture(scope="session")
def inline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aesoperator]:
    """An in-process client (fast); tests give absolute paths or chdir into their tmp_path."""
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("data-inline"), isolation="inline")
    yield client
    client.close()


@pytest.fixture(scope="session")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aesoperator]:
    """A process-isolated client, as users run it (memory limit, hard cancel)."""
    client = Aesoperator(data_dir=tmp_path_factory.mktemp("data-pool"), pool_size=1)
    client.warmup()
    yield client
    client.close()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path
