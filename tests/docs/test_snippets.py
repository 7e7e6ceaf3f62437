"""The Python in the README and in docs/ type-checks as a user's code would, and links resolve.

One ``mypy --strict`` run over every snippet, written to a temporary directory: each document
becomes one module (its snippets in order, as a reader pastes them), plus a module that
touches every public method of the client through the module (``aesoperator.<name>``), which
pins the typed declarations of the module-level client. mypy runs without the pydantic
plugin, as in a user's project.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from aesoperator import Aesoperator, TaskConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# TASKS.md is a copy of the shared contract and cannot change: its functions carry no
# annotations and it rebinds `result` to `status.result` (Optional). Everything our types
# decide (constructor arguments, attributes, argument types) is still checked there.
CONFIG = """\
[mypy]
strict = True
warn_unused_configs = False

[mypy-tasks_md]
disallow_untyped_defs = False
disallow_untyped_calls = False
disable_error_code = assignment
"""


def documents() -> dict[str, Path]:
    docs = {"readme": ROOT / "README.md", "tasks_md": DOCS / "TASKS.md"}
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "TASKS.md":
            docs[page.stem.replace("-", "_")] = page
    return docs


def test_every_snippet_type_checks_with_mypy_strict(tmp_path: Path) -> None:
    modules = []
    for module, path in documents().items():
        snippets = SNIPPET.findall(path.read_text(encoding="utf-8"))
        assert snippets, path
        prelude = "import time\nimport aesoperator as aesop\n" if module == "tasks_md" else ""
        (tmp_path / f"{module}.py").write_text(prelude + "\n".join(snippets))
        modules.append(f"{module}.py")
    methods = sorted(
        n for n, v in vars(Aesoperator).items() if not n.startswith("_") and callable(v)
    )
    surface = "import aesoperator\n\n" + "".join(f"print(aesoperator.{m})\n" for m in methods)
    surface += "print(aesoperator.memory.keys())\n"
    (tmp_path / "surface.py").write_text(surface)
    (tmp_path / "mypy.ini").write_text(CONFIG)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-incremental",
         "--cache-dir", str(tmp_path / ".cache"), *modules, "surface.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_names_on_the_module_are_type_errors(tmp_path: Path) -> None:
    # The check above would pass for anything if mypy saw a module __getattr__.
    (tmp_path / "typo.py").write_text("import aesoperator\naesoperator.execute_tsak\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / ".cache"), "typo.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert 'Module has no attribute "execute_tsak"' in proc.stdout


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in DOCS.glob("*.md"))])
def test_relative_links_resolve(page: str) -> None:
    path = ROOT / page if page == "README.md" else DOCS / page
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        if target.startswith("reference/"):  # generated at build time (scripts/docs_hooks.py)
            continue
        assert (path.parent / target).exists(), f"{page} links to {target}, which is missing"


def test_the_api_page_names_every_field() -> None:
    page = (DOCS / "task-api.md").read_text(encoding="utf-8")
    missing = [f for f in TaskConfig.model_fields if f"`{f}`" not in page]
    assert missing == [], f"docs/task-api.md does not mention {missing}"


def test_the_monitor_example_leaves_nothing_in_the_working_directory(tmp_path: Path) -> None:
    script = ROOT / "examples" / "monitor_website.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--seconds", "3"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []
    report = Path(proc.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file() and not report.is_relative_to(tmp_path)
    report.unlink()
