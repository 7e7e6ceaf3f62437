"""The documentation site builds with ``mkdocs build --strict`` and works offline in a browser.

The build runs once per test session into a temporary directory (the same command as
``make docs``); any warning (a broken link, a reference that does not resolve) fails it. The
built pages are then opened from the file system in headless Chromium: navigation, search and
code highlighting must work, and no request may leave for anything but a ``file:`` URL (no CDN
font, script or stylesheet). Screenshots go to ``build/screenshots/docs-*.png`` for a person
to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mkdocs")

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
PAGES = ("index", "task-api", "task-patterns", "task-monitoring", "task-security")
REFERENCE = ("reference/cli", "reference/rest-api")
# The content column holds 79 characters of code at the 1280-pixel viewport below (both
# sidebars shown); a longer line scrolls sideways.
CODE_WIDTH = 79
FENCE = re.compile(r"^ *```[^\n]*\n(.*?)^ *```", re.S | re.M)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    warnings = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert warnings == [], "\n".join(warnings)
    return out


def test_the_strict_build_makes_every_page(site: Path) -> None:
    for page in (*PAGES, "TASKS", "many-machines", "reference/cli", "reference/rest-api"):
        assert (site / f"{page}.html").is_file(), page
    api = (site / "task-api.html").read_text(encoding="utf-8")
    # mkdocstrings rendered the reference, and the field tables were generated
    for name in ("Aesoperator", "execute_task_async", "TaskContext", "PageLimitExceeded"):
        assert name in api, name
    assert "PageLimitExceeded" in api and "The supervisor samples it" in api
    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "aesop run" in cli and "--watch" in cli
    rest = (site / "reference" / "rest-api.html").read_text(encoding="utf-8")
    assert "/v1/tasks" in rest and "TaskStatus" in rest


def test_code_blocks_fit_the_content_column() -> None:
    # TASKS.md is a copy of the shared contract; the browser test below still measures it.
    long = [
        f"{page.name}: {line!r} ({len(line)})"
        for page in sorted((ROOT / "docs").glob("*.md"))
        if page.name != "TASKS.md"
        for block in FENCE.findall(page.read_text(encoding="utf-8"))
        for line in block.splitlines()
        if len(line) > CODE_WIDTH
    ]
    assert long == [], f"code lines over {CODE_WIDTH} characters:\n" + "\n".join(long)


class _Requests:
    """Every request a page makes; those to anything but file: are the failures."""

    def __init__(self, page: Any) -> None:
        self.outside: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        url = str(request.url)
        if not url.startswith(("file:", "data:", "blob:", "about:")) and not url.startswith(
            ("http://127.0.0.1", "http://localhost")
        ):
            self.outside.append(url)


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    file = f"docs-{name.replace('/', '-')}.png"
    page.screenshot(path=str(SHOTS / file), full_page=False)


# Code boxes whose text is wider than the box (a sideways scroll bar), with their widest line.
OVERFLOWING = """() => [...document.querySelectorAll("pre > code")]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => e.innerText.split("\\n").reduce((a, b) => (b.length > a.length ? b : a), ""))"""


@pytest.mark.browser
def test_the_pages_work_offline_in_a_browser(site: Path, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Nothing may leave the machine: any request that is not to a file is refused and counted.
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(("file:", "data:", "blob:"))
            else route.abort()
        ),
    )
    page = context.new_page()
    requests = _Requests(page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    wide: list[str] = []
    for name in (*PAGES, "TASKS", "many-machines", *REFERENCE):
        page.goto((site / f"{name}.html").as_uri())
        page.wait_for_load_state("load")
        assert page.locator("h1").first.is_visible()
        wide += [f"{name}: {line}" for line in page.evaluate(OVERFLOWING)]
        if name in PAGES or name in REFERENCE:
            _shot(page, name)
    assert wide == [], "code that scrolls sideways:\n" + "\n".join(wide)

    # Navigation: the sidebar links to every page; following one lands on it.
    page.goto((site / "index.html").as_uri())
    page.locator("nav.md-nav--primary a.md-nav__link", has_text="Task Security").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("task-security.html")
    assert "Task Security" in page.locator("h1").first.inner_text()

    # Highlighting: Python blocks are tokenised by Pygments at build time (spans with classes).
    page.goto((site / "task-patterns.html").as_uri())
    code = page.locator("div.highlight pre code").first
    assert code.locator("span.kn, span.k").count() > 0  # keywords got their own class
    color = code.locator("span.kn, span.k").first.evaluate("e => getComputedStyle(e).color")
    text_color = code.evaluate("e => getComputedStyle(e).color")
    assert color != text_color, "keywords are not coloured"
    page.locator("div.highlight").first.scroll_into_view_if_needed()
    _shot(page, "highlighting")

    # Search: the built-in index (in the built files) answers a word typed in the box.
    page.goto((site / "index.html").as_uri())
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("robots", delay=40)
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15_000)
    assert results.count() > 0
    assert "robots" in page.locator(".md-search-result").inner_text().lower()
    _shot(page, "search")

    assert errors == [], errors
    assert requests.outside == [], f"requests left the machine: {requests.outside}"
    context.close()
