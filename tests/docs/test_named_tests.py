"""The security page names the tests behind each promise: every name must be a real test.

A renamed or deleted test would otherwise leave a promise backed by nothing, silently.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_security_page_names_exists() -> None:
    page = (ROOT / "docs" / "task-security.md").read_text()
    named = set(re.findall(r"`(test_\w+)`", page))
    assert len(named) >= 20, "the page should name the tests behind its promises"
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
    assert sorted(named - defined) == []
