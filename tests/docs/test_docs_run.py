"""Every Python block in docs/ runs, as a reader would paste the page's blocks into one script.

Each page's blocks run in order in one fresh process, in a temporary working directory with a
data directory of its own, against the stand-in web of ``offline_web.py`` (the one TASKS.md's
test uses: example.com, wikipedia.org... answered on 127.0.0.1). docs/TASKS.md is run, and
checked, by ``test_tasks_md.py``. A block that cannot run offline is preceded by
``<!-- no-run: REASON -->``; the reason is required, and such blocks are still type-checked
(``test_snippets.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline_web import offline_web

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BLOCK = re.compile(
    r"(?:^<!--\s*no-run:(?P<why>[^>]*?)-->\n)?^```python\n(?P<code>.*?)^```", re.S | re.M
)
PAGES = sorted(p.name for p in DOCS.glob("*.md") if p.name != "TASKS.md")


def blocks(page: Path) -> list[tuple[str, str | None]]:
    """``(code, reason)`` of each Python block; ``reason`` is None for a block that runs."""
    text = page.read_text(encoding="utf-8")
    return [
        (m["code"], None if m["why"] is None else m["why"].strip()) for m in BLOCK.finditer(text)
    ]


# The pages with a block that runs offline (others, e.g. many-machines.md, need servers).
RUNNABLE = [name for name in PAGES if any(why is None for _, why in blocks(DOCS / name))]


def test_every_page_is_run() -> None:
    assert {"task-api.md", "task-patterns.md", "task-monitoring.md", "task-security.md"} <= set(
        RUNNABLE
    )


@pytest.mark.parametrize("name", PAGES)
def test_a_block_that_does_not_run_says_why(name: str) -> None:
    for code, why in blocks(DOCS / name):
        assert why != "", f"{name}: a no-run block must say why:\n{code}"


@pytest.mark.parametrize("name", RUNNABLE)
def test_the_python_blocks_run(name: str, tmp_path: Path) -> None:
    runnable = [code for code, why in blocks(DOCS / name) if why is None]
    script = "".join(
        f"\n# ---- {name} block {i + 1} ----\n{code}" for i, code in enumerate(runnable)
    )
    (tmp_path / "page.py").write_text(script)
    try:
        web_cm = offline_web(tmp_path)
        web = web_cm.__enter__()
    except (PermissionError, OSError) as exc:
        pytest.skip(f"the web stand-in needs 127.0.0.1:80 and :443 ({exc})")
    try:
        env = {**os.environ, **web.env, "AESOP_DATA_DIR": str(tmp_path / "data")}
        env.pop("AESOP_URL", None)
        # this checkout's package, whichever one the environment has installed
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])
        )
        proc = subprocess.run(
            [sys.executable, "page.py"], cwd=tmp_path, capture_output=True, text=True,
            timeout=120, env=env,
        )  # fmt: skip
    finally:
        web_cm.__exit__(None, None, None)
    assert proc.returncode == 0, f"{name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
