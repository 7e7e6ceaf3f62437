"""No Chromium outlives its execution's worker, however the execution ends."""

from __future__ import annotations

import os
import time
import uuid

import psutil
import pytest

from aesoperator import Aesoperator, Task, TaskCancelled, TimeLimitExceeded

pytestmark = pytest.mark.browser


def _browsers(tag: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(f"--aesop-tag={tag}" in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_gone(tag: str, alive_roots: set[int], timeout: float = 15.0) -> list[psutil.Process]:
    """Tagged browser processes not below a live worker, after waiting for them to exit."""
    end = time.monotonic() + timeout
    while True:
        orphans = []
        for proc in _browsers(tag):
            try:
                ancestors = {p.pid for p in proc.parents()}
            except psutil.NoSuchProcess:
                continue
            if not ancestors & alive_roots:
                orphans.append(proc)
        if not orphans or time.monotonic() > end:
            return orphans
        time.sleep(0.2)


def _workers() -> set[int]:
    me = psutil.Process()
    return {c.pid for c in me.children(recursive=False) if c.is_running()}


@pytest.fixture
def tagged(monkeypatch, tmp_path):
    tag = uuid.uuid4().hex[:12]
    monkeypatch.setenv("AESOP_BROWSER_TAG", tag)
    aesop = Aesoperator(data_dir=tmp_path, isolation="process", pool_size=1)
    yield aesop, tag
    aesop.close()
    assert _wait_gone(tag, set()) == []


def _page_then(ctx, url, then):
    import asyncio
    import os as _os

    async def go():
        await ctx.web.fetch(url, mode="browser")
        ctx.log("browser up")
        if then == "sleep":
            await asyncio.sleep(60)
        elif then == "crash":
            _os._exit(3)
        elif then == "hog":
            blob = [bytearray(10 * 1024 * 1024) for _ in range(100)]  # noqa: F841
            await asyncio.sleep(60)
        return "done"

    return go()


def _task(url, then, **cfg):
    from aesoperator import TaskConfig

    cfg.setdefault("max_memory_mb", 4096)
    config = TaskConfig(allow_private_network=True, respect_robots_txt=False, **cfg)
    return Task(name="browse", inputs={"url": url, "then": then}, config=config)


def test_no_orphan_browser_after_each_way_an_execution_ends(tagged, allowed, kit):
    aesop, tag = tagged
    allowed.routes["/p"] = kit.html("<p>hello</p>")
    url = f"http://127.0.0.1:{allowed.port}/p"

    @aesop.handler("browse")
    async def browse(ctx, url, then):
        return await _page_then(ctx, url, then)

    # completed
    assert aesop.execute_task(_task(url, "return")).content == "done"
    assert _browsers(tag), "the browser should have run in the worker"
    assert _wait_gone(tag, _workers()) == []

    # cancelled
    execution = aesop.execute_task_async(_task(url, "sleep"))
    _wait_for_log(aesop, execution.id)
    execution.cancel()
    with pytest.raises(TaskCancelled):
        execution.result(timeout=60)
    assert _wait_gone(tag, _workers()) == []

    # timed out
    with pytest.raises(TimeLimitExceeded):
        aesop.execute_task(_task(url, "sleep", max_duration_seconds=4))
    assert _wait_gone(tag, _workers()) == []

    # crashed worker
    with pytest.raises(Exception) as info:
        aesop.execute_task(_task(url, "crash"))
    assert "Crash" in type(info.value).__name__ or "crash" in str(info.value).lower()
    assert _wait_gone(tag, _workers()) == []

    # memory limit (the browser counts in the execution's tree)
    with pytest.raises(Exception) as info:
        aesop.execute_task(_task(url, "hog", max_memory_mb=1200))
    assert "Memory" in type(info.value).__name__
    assert _wait_gone(tag, _workers()) == []


def _wait_for_log(aesop, execution_id, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(e.kind == "log" for e in aesop.get_events(execution_id)):
            return
        time.sleep(0.1)
    raise AssertionError("the handler never reached the browser")


_ = os
