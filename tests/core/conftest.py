from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aesoperator import Aesoperator


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aesop-shared")


@pytest.fixture(scope="session")
def aesop(shared_dir: Path) -> Iterator[Aesoperator]:
    """One process-isolated client per test process: its warm pool is shared by the tests."""
    client = Aesoperator(data_dir=shared_dir, pool_size=2)
    client.warmup()
    yield client
    client.close()


@pytest.fixture
def inline(tmp_path: Path) -> Iterator[Aesoperator]:
    client = Aesoperator(data_dir=tmp_path, isolation="inline")
    yield client
    client.close()
