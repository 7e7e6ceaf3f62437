"""A browser task keeps under max_memory_mb: it sheds load, and a page that cannot fit fails
alone, saying by how much.

In a worker process (where the runtime's watchdog enforces the limit on the worker's whole
tree, the browser included): pages heavy in the renderer (each holds ~64 MB of script data)
loaded 4 at a time would cross the limit, so the session loads fewer at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aesoperator import Aesoperator, MemoryLimitExceeded, Task, TaskConfig
from serving import QuietHandler, site

pytestmark = pytest.mark.browser

# ~64 MB the renderer must keep (a filled array the page holds on to).
_HEAVY = "<script>window.keep = new Float64Array(8e6).fill(1.5);</script>"
# Grows by 2 MB every 20 ms and never finishes loading (its script never arrives).
_GROWING = (
    "<script>window.keep = []; setInterval(() => "
    "window.keep.push(new Float64Array(262144).fill(1.5)), 20);</script>"
    '<script src="/never.js"></script>'
)


class _Pages(QuietHandler):
    release: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/never.js":
            self.release.wait(30)
            return self.reply(200, "", "text/javascript")
        if path == "/slow.js":  # keeps a page loading a moment: pages overlap
            self.release.wait(0.3)
            return self.reply(200, "", "text/javascript")
        if path.startswith("/heavy/"):
            body = f"<html><body><p>{path}</p>{_HEAVY}<script src='/slow.js'></script></body>"
            return self.reply(200, body + "</html>")
        if path == "/light":
            return self.reply(200, "<html><body><p>light</p></body></html>")
        if path == "/growing":
            return self.reply(200, f"<html><body>{_GROWING}</body></html>")
        self.reply(404, "no")


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    _Pages.release.clear()
    with site(_Pages) as url:
        yield url
    _Pages.release.set()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aesoperator]:
    # A worker process: the memory limit is enforced on its tree (inline it is not).
    with Aesoperator(data_dir=Path(tmp_path_factory.mktemp("mem")), pool_size=1) as client:
        yield client


def _config(limit: int) -> TaskConfig:
    return TaskConfig(max_memory_mb=limit, concurrent_requests=4, allow_private_network=True,
                      allowed_domains=["127.0.0.1"], max_retries=0,
                      request_timeout_seconds=20)  # fmt: skip


def test_heavy_pages_four_at_a_time_complete_by_shedding(workers: Aesoperator, base: str) -> None:
    @workers.handler("heavy_pages")
    async def heavy_pages(ctx: Any, urls: list[str]) -> int:
        pages = await asyncio.gather(*(ctx.web.fetch(u, mode="browser") for u in urls))
        return sum(1 for p in pages if p.status == 200)

    urls = [f"{base}/heavy/{i}" for i in range(12)]
    execution = workers.execute_task_async(
        Task(name="heavy_pages", inputs={"urls": urls}, config=_config(700))
    )
    result = execution.result(timeout=120)
    assert result.data == 12
    shed = [e for e in workers.get_events(execution.id) if e.kind == "browser_memory_shed"]
    assert shed, "no shedding event: the pages fit without it, make them heavier"
    assert all(e.data["max_memory_mb"] == 700 for e in shed)
    assert any(e.data.get("pages_at_once", 4) < 4 for e in shed), [e.data for e in shed]


def test_a_page_that_cannot_fit_fails_alone_saying_by_how_much(
    workers: Aesoperator, base: str
) -> None:
    @workers.handler("one_big_page")
    async def one_big_page(ctx: Any, url: str) -> dict[str, str]:
        try:
            await ctx.web.fetch(url, mode="browser")
        except MemoryLimitExceeded as exc:
            # The task lives on: only the page failed; an ordinary page loads after it.
            page = await ctx.web.fetch(base + "/light", mode="browser")
            return {"out": f"{page.status} {exc}"}
        return {"out": "fitted"}

    execution = workers.execute_task_async(
        Task(name="one_big_page", inputs={"url": base + "/growing"}, config=_config(600))
    )
    out = execution.result(timeout=120).data["out"]
    assert out.startswith("200 "), out
    assert "/growing: one page needs more than ~" in out
    assert "max_memory_mb=600" in out and "raise max_memory_mb above" in out
    kinds = [e.kind for e in workers.get_events(execution.id)]
    assert "browser_memory_page_too_big" in kinds
