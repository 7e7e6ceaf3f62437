"""Puts ``tests/`` on ``sys.path`` (conftest files are not importable under importlib mode),
the fixtures of a real PostgreSQL server, and a headless Chromium."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)  # for the shared helpers in ``serving``


# -- a real PostgreSQL server (tests/pgserver.py), one per test session (per xdist worker) -----

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A running PostgreSQL server; skipped (failed under CI) where none is installed."""
    from pgserver import pg_bindir, pg_server

    if pg_bindir() is None:
        why = "PostgreSQL is not installed: run scripts/install_postgresql.sh (make setup does)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with pg_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: object, tmp_path: Path) -> Callable[[], str]:
    """Make a fresh, empty database; its store URL (artifacts under the test's tmp_path)."""
    from pgserver import PgServer

    assert isinstance(postgres, PgServer)

    def make() -> str:
        name = f"t{os.getpid()}_{next(_databases)}"
        postgres.create_database(name)
        return f"{postgres.url(name)}?artifacts={tmp_path / 'artifacts'}"

    return make


# -- a headless Chromium, one per test module --------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system Chromium the package itself uses, driven by Playwright; skipped without it.

    Per module, not per session: Playwright's sync API keeps an event loop running in the
    main thread while it is open, and every later ``asyncio.run`` in the session would fail.
    """
    playwright = pytest.importorskip("playwright.sync_api")
    from aesoperator.web._browser import chromium_path

    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield chromium
        chromium.close()
