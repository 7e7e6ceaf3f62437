"""Fixtures of the dashboard tests: a served instance on 127.0.0.1, its tokens, a Chromium.

The server is the real app (``create_app``) on uvicorn in a thread, over a real data
directory; the browser is the system Chromium the package itself uses, driven by Playwright.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from aesoperator import Aesoperator, TaskContext
from aesoperator.service import ServiceSettings
from aesoperator.service.serve import build_app
from aesoperator.store import open_store

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from demo_site.generate import build_site  # noqa: E402
from demo_site.serve import DemoServer  # noqa: E402

from serving import free_port  # noqa: E402


@dataclass
class Served:
    url: str
    client: Aesoperator
    token: str
    other_token: str  # another project's
    admin_token: str  # this project's, for schedules
    site: str  # the demo site research tasks read


async def _steps(ctx: TaskContext, steps: int = 8, pause: float = 0.4) -> dict[str, int]:
    """Moves its progress bar in visible steps; each step a recorded action."""
    for i in range(steps):
        with ctx.action("step", n=i + 1):
            await ctx.sleep(pause)
        ctx.progress((i + 1) * 100 / steps, f"step {i + 1} of {steps}")
    ctx.log("all steps done <img src=x onerror=alert(1)>")
    ctx.add_file("done.png", _PNG)
    return {"steps": steps}


async def _off_limits(ctx: TaskContext, url: str) -> str:
    """Asks for a page the task's allowed_domains exclude: the gate refuses and records it."""
    try:
        await ctx.web.fetch(url)
    except Exception as exc:  # the refusal, as the task sees it
        return f"refused: {type(exc).__name__}"
    return "fetched"


# A 2x2 PNG: a screenshot-like artifact for the page's image strip.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000104944415478"
    "9c6350483800440c100a00208e0501e7d9937b0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("aesop-dash")
    site_root = tmp_path_factory.mktemp("dash-site")
    build_site(site_root, articles=40, seed=5)
    client = Aesoperator(data_dir=data, isolation="inline")
    client.handler("steps")(_steps)
    client.handler("off_limits")(_off_limits)
    store = open_store(data)
    _, token = store.token_create("dash", scope="run")
    _, other = store.token_create("other", scope="run", project="elsewhere")
    _, admin = store.token_create("dash-admin", scope="admin")
    store.close()
    app = build_app(client, ServiceSettings(rate_per_token=None))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    with DemoServer(site_root) as site:
        thread.start()
        while not server.started:
            time.sleep(0.02)
        yield Served(f"http://127.0.0.1:{port}", client, token, other, admin, site.url)
        server.should_exit = True
        thread.join(10)
    client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    from aesoperator.web._browser import chromium_path

    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def shot(page: Any, name: str) -> Path:
    """Save a screenshot, after checking the page shows no JavaScript value as text."""
    text = page.inner_text("body")
    for slip in ("[object ", "undefined", "NaN"):
        assert slip not in text, f"{name}: the page shows {slip!r}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# `aesop serve` as a process of its own, for what a thread cannot show (kill -9, restart).
SLOW_HANDLERS = """
import aesoperator as aesop


@aesop.handler("slow")
async def slow(ctx, seconds=120):
    ctx.progress(5, "sleeping")
    await ctx.sleep(seconds)
    return "woke"
"""


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serve_process(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``aesop serve`` on ``folder/data`` with ``folder/dash_slow.py`` imported, until ready."""
    from waiting import eventually

    (folder / "dash_slow.py").write_text(SLOW_HANDLERS, encoding="utf-8")
    command = [sys.executable, "-m", "aesoperator.cli", "serve", "--port", str(port),
               "--data-dir", str(folder / "data"), "--import", "dash_slow"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=folder, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"aesop serve exited with {proc.returncode}")
            return _ready(url)

        eventually(up, timeout=60, what="aesop serve answers")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
