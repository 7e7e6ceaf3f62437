"""The README's file map and CONTRIBUTING.md name files that exist: they are for finding things."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "aesoperator"
# `path/to/module.py`, `folder/` or `__init__.py` in backticks; `skills/<name>/` is a pattern.
PATH = re.compile(r"`([\w./-]+(?:\.py|/))`")


def _paths(text: str) -> list[str]:
    return [p for p in PATH.findall(text) if "<" not in p]


def test_the_file_map_names_existing_files() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("Where each box lives", 1)[1].split("\n\n", 2)[1]
    paths = _paths(table)
    assert len(paths) > 10
    for path in paths:
        found = PACKAGE / path
        if not found.exists():  # a file named after its folder: `runtime/` (`supervisor.py`)
            found = next(PACKAGE.rglob(path), found)
        assert found.exists(), f"README file map: {path} is not in src/aesoperator"


@pytest.mark.parametrize("page", ["CONTRIBUTING.md"])
def test_contributing_names_existing_files(page: str) -> None:
    for path in _paths((ROOT / page).read_text(encoding="utf-8")):
        candidates = [ROOT / path, PACKAGE.parent / path, PACKAGE / path, *PACKAGE.rglob(path)]
        assert any(c.exists() for c in candidates), f"{page}: {path} does not exist"
