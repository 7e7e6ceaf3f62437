"""Keeps a browser task under ``max_memory_mb`` by shedding load before the limit's kill.

In a worker process the runtime's watchdog sums the PSS of the worker's whole process tree
(the worker, Playwright's driver, Chromium and its renderers) and kills the execution past
``max_memory_mb``. Four tabs of large real pages can cross the default limit where one at a
time fits, so the guard samples that same measure and, when it nears the limit:

* above ``SHED_AT``: lowers the number of pages loading at once and closes idle tabs (their
  renderers hold the last page they showed); an event ``browser_memory_shed`` says so;
* above ``EVICT_AT`` with several pages loading: stops the youngest and loads it again once
  the others are done (the same page of the budget);
* above ``EVICT_AT`` with one page loading: that page cannot fit; it fails with
  ``MemoryLimitExceeded`` saying by how much, before the kill would end the whole task;
* below ``RECOVER_AT``: one more page at a time, up to ``concurrent_requests``.

Only where the limit is enforced (a worker process: the runtime sets ``AESOP_MEMORY_TREE``);
inline, the process is the caller's and its memory is not the task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import MemoryLimitExceeded

T = TypeVar("T")

SHED_AT = 0.75
EVICT_AT = 0.9
RECOVER_AT = 0.6
SAMPLE_S = 0.05  # the watchdog samples every 0.15 s: we must see the rise first
MB = 1024 * 1024


def enforced() -> bool:
    """Is this process's tree what ``max_memory_mb`` counts (a worker process)?"""
    return os.environ.get("AESOP_MEMORY_TREE") == "1"


def tree_pss() -> int:
    """The PSS sum of this process and its descendants, as the watchdog measures it."""
    import psutil

    me = psutil.Process()
    try:
        procs = [me, *me.children(recursive=True)]
    except psutil.Error:
        procs = [me]
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error, AttributeError):
            total += proc.memory_full_info().pss
    return total


@dataclass(eq=False)
class _Loading:
    url: str
    task: asyncio.Future[Any]
    evicted: bool = False
    too_big: MemoryLimitExceeded | None = None
    started: int = field(default=0)


class MemoryGuard:
    """Admits browser page loads while the execution's memory leaves room for them."""

    def __init__(
        self,
        limit_mb: int,
        max_pages: int,
        emit: Callable[..., None],
        close_idle: Callable[[], Awaitable[int]],
        sample: Callable[[], int] = tree_pss,
    ) -> None:
        self._limit = limit_mb * MB
        self._limit_mb = limit_mb
        self._max = max_pages
        self._allowed = max_pages
        self._emit = emit
        self._close_idle = close_idle
        self._sample = sample
        self._loading: list[_Loading] = []
        self._changed = asyncio.Condition()
        self._sampler: asyncio.Task[None] | None = None
        self._idle_floor = 0  # memory with no page loading: what a page is measured against
        self._seq = 0
        self._over = 0  # samples in a row over EVICT_AT
        self.peak = 0

    async def load(self, url: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` (one page load) when memory allows; again if it was evicted."""
        if self._sampler is None:
            self._sampler = asyncio.ensure_future(self._watch())
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._loading) < self._allowed)
                self._seq += 1
                entry = _Loading(url, asyncio.ensure_future(make()), started=self._seq)
                self._loading.append(entry)
            try:
                # wait(), not await: an eviction cancels the load, not us.
                await asyncio.wait({entry.task})
            except BaseException:
                entry.task.cancel()
                with contextlib.suppress(BaseException):
                    await entry.task
                raise
            finally:
                async with self._changed:
                    self._loading.remove(entry)
                    self._changed.notify_all()
            if entry.too_big is not None:
                raise entry.too_big
            if not entry.evicted:
                return entry.task.result()  # type: ignore[no-any-return]

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SAMPLE_S)
            try:
                used = await loop.run_in_executor(None, self._sample)
            except Exception:
                continue
            self.peak = max(self.peak, used)
            async with self._changed:
                await self._act(used)

    async def _act(self, used: int) -> None:
        loading = [e for e in self._loading if not e.evicted and e.too_big is None]
        if not loading and self._seq:
            self._idle_floor = used if not self._idle_floor else min(self._idle_floor, used)
        closed = 0
        if used > SHED_AT * self._limit:
            closed = await self._close_idle()  # first: idle renderers hold their last page
            lower = max(1, min(self._allowed, len(loading)) - 1)
            if lower < self._allowed or closed:
                self._allowed = lower
                self._shed(used, "fewer pages at once", closed_tabs=closed)
        elif used < RECOVER_AT * self._limit and self._allowed < self._max:
            self._allowed += 1
            self._changed.notify_all()
        over = used > EVICT_AT * self._limit
        self._over = self._over + 1 if over and not closed else 0
        if not over:
            return
        if len(loading) > 1:
            youngest = max(loading, key=lambda e: e.started)
            youngest.evicted = True
            youngest.task.cancel()
            self._shed(used, "stopped a page loading, to load it again after the others",
                       url=youngest.url)  # fmt: skip
        elif len(self._loading) == 1 and loading and self._over >= 3:
            # Alone, nothing left to free, and still over after a few samples: it cannot fit.
            page = loading[0]
            floor = self._idle_floor
            need = (used - floor) / MB if floor else used / MB
            alone = f" (the browser alone ~{floor / MB:.0f} MB)" if floor else ""
            page.too_big = MemoryLimitExceeded(
                f"{page.url}: one page needs more than ~{need:.0f} MB in the browser; the "
                f"execution reached {used / MB:.0f} MB of max_memory_mb={self._limit_mb}"
                f"{alone}; raise max_memory_mb above {used / MB * 1.5:.0f}"
            )
            page.task.cancel()
            self._emit("browser_memory_page_too_big", url=page.url, need_mb=round(need),
                       used_mb=round(used / MB), max_memory_mb=self._limit_mb)  # fmt: skip

    def _shed(self, used: int, what: str, **data: Any) -> None:
        self._emit("browser_memory_shed", action=what, used_mb=round(used / MB),
                   max_memory_mb=self._limit_mb, pages_at_once=self._allowed,
                   **data)  # fmt: skip

    async def aclose(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(BaseException):
                await self._sampler
            self._sampler = None
