"""Keeps a browser task under ``max_memory_mb`` by shedding load before the limit's kill.

In a worker process the runtime's watchdog sums the PSS of the worker's whole process tree
(the worker, Playwright's driver, Chromium and its renderers) and kills the execution past
``max_memory_mb``. Four tabs of large real pages can cross the default limit where one at a
time fits, and a page can take 100 MB between two samples, so the guard mostly acts *before*
a page starts: it samples that same measure (cheaply, ``TreeMemory``) and

* admits a page only if memory plus what the pages loading may still take plus what one
  of the last pages took at most stays under ``ADMIT_AT`` (``FIRST_PAGE_MB`` until a page
  is seen: far from the limit the first pages start together, near it the first alone); a
  page that does not fit alone gets the idle tabs closed first (their renderers hold the
  last page they showed); each is said by an event ``browser_memory_shed``;
* above ``EVICT_AT``: closes idle tabs or, with several pages loading, stops the youngest and
  loads it again later (the same page of the budget);
* above ``EVICT_AT`` with one page loading, growing while it loads alone: that page cannot
  fit; it fails with ``MemoryLimitExceeded`` saying by how much, before the kill would end
  the whole task.

After a tab is closed or a load stopped, a renderer gives its memory back over a while: until
memory stops falling nothing starts and nothing is judged, so no page is blamed for another's.

Only where the limit is enforced (a worker process: the runtime sets ``AESOP_MEMORY_TREE``);
inline, the process is the caller's and its memory is not the task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import MemoryLimitExceeded

T = TypeVar("T")

FIRST_PAGE_MB = 100  # what a page is taken to need before one is seen: a tab's renderer too
FREE_AT = 0.6  # below: samples are sparser
ADMIT_AT = 0.85
EXACT_AT = 0.8  # over: memory is PSS read every sample, not estimated from RSS
EVICT_AT = 0.9
GROWING_SAMPLES = 2  # a lone page over EVICT_AT that grew this often cannot fit
SAMPLE_S = 0.05  # the watchdog samples every 0.15 s: we must see the rise first
FREE_SAMPLE_S = 0.1
PSS_EVERY = 1.0
MB = 1024 * 1024


def enforced() -> bool:
    """Is this process's tree what ``max_memory_mb`` counts (a worker process)?"""
    return os.environ.get("AESOP_MEMORY_TREE") == "1"


def _pss(pid: int) -> int:
    # smaps_rollup walks the process's page tables: ~ms for a renderer, the cost to save.
    with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
        for line in f:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class TreeMemory:
    """The PSS sum of this process and its descendants, as the watchdog measures it, cheaply.

    PSS costs ~17 ms of CPU for a browser's tree; RSS (statm) a fraction of one. Between
    two PSS readings the sum is taken as the last PSS plus how much the RSS sum changed: a
    page growing adds private memory, which both count alike, so the rise is not missed; a
    fall is scaled by PSS/RSS (shared pages freed count less in PSS). PSS is read again when
    the processes changed (a renderer started or ended), near the limit, and at least every
    ``PSS_EVERY`` seconds.
    """

    def __init__(self, exact_over: int) -> None:
        self._exact_over = exact_over
        self._pids: frozenset[int] = frozenset()
        self._pss = self._rss = 0
        self._at = -PSS_EVERY

    def __call__(self) -> int:
        import time

        import psutil

        me = psutil.Process()
        try:
            pids = frozenset([me.pid, *(p.pid for p in me.children(recursive=True))])
        except psutil.Error:
            pids = frozenset([me.pid])
        rss = self._sum(_rss, pids)
        now = time.monotonic()
        grown = rss - self._rss
        used = self._pss + (grown if grown > 0 else grown * self._pss // max(self._rss, 1))
        if pids != self._pids or used > self._exact_over or now - self._at >= PSS_EVERY:
            self._pids, self._rss, self._at = pids, rss, now
            self._pss = used = self._sum(_pss, pids) or rss
        return used

    @staticmethod
    def _sum(read: Callable[[int], int], pids: frozenset[int]) -> int:
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError, ValueError):
                total += read(pid)
        return total


@dataclass(eq=False)
class _Loading:
    url: str
    task: asyncio.Future[Any]
    fresh: bool  # it opens a new tab
    expect: float  # what it was expected to take
    grown: float = 0.0  # its share of the growth since it started (shared with the others)
    peak: float = 0.0  # the most ``grown`` reached
    seen: bool = False  # loading across a sample (a quicker page says nothing of its growth)
    growing: int = 0  # samples alone over EVICT_AT in which memory grew
    evicted: bool = False
    too_big: MemoryLimitExceeded | None = None


class MemoryGuard:
    """Admits browser page loads while the execution's memory leaves room for them."""

    def __init__(
        self,
        limit_mb: int,
        max_pages: int,
        emit: Callable[..., None],
        close_idle: Callable[[], Awaitable[int]],
        sample: Callable[[], int] | None = None,
        open_tabs: Callable[[], int] = lambda: 0,
    ) -> None:
        self._limit = limit_mb * MB
        self._limit_mb = limit_mb
        self._max = max_pages
        self._emit = emit
        self._close_idle = close_idle
        self._open_tabs = open_tabs
        self._sample = sample or TreeMemory(int(EXACT_AT * self._limit))
        self._loading: list[_Loading] = []  # in the order they started
        self._changed = asyncio.Condition()
        self._sampler: asyncio.Task[None] | None = None
        self._sampled = asyncio.Event()
        self._used = 0  # the last sample
        # What the last pages took, in a new tab (its renderer starts too) or in a kept one.
        self._took = {fresh: deque[float](maxlen=max_pages) for fresh in (True, False)}
        self._settling = False  # memory was freed and is still falling
        self._noted = max_pages  # the fewest pages at once an event has said so far

    def _held(self) -> str | None:
        """Why no page may start now: ``"busy"``, ``"memory"``, or None (it may)."""
        if self._settling or len(self._loading) >= self._max:
            return "busy"
        still = sum(max(0.0, e.expect - e.grown) for e in self._loading)
        fits = self._used + still + self._expect(self._fresh()) <= ADMIT_AT * self._limit
        return None if fits else "memory"

    def _fresh(self) -> bool:
        """Will the next page need a new tab (none of the open ones is free)?"""
        return len(self._loading) >= self._open_tabs()

    def _expect(self, fresh: bool) -> float:
        """The most one of the last pages took (a new tab's until a kept tab's is seen)."""
        took = self._took[fresh] or self._took[True]
        return max(took, default=FIRST_PAGE_MB * MB)

    async def load(self, url: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` (one page load) when memory allows; again if it was evicted."""
        if self._sampler is None:
            self._sampler = asyncio.ensure_future(self._watch())
        await self._sampled.wait()  # no page is admitted on memory not yet measured
        while True:
            async with self._changed:
                while (why := self._held()) is not None:
                    if why == "memory":
                        if not self._loading and (closed := await self._close_idle()):
                            self._settling = True
                            self._shed("closed idle tabs", closed_tabs=closed)
                            continue
                        if not self._loading:
                            break  # a page is always tried: alone, it can be judged
                        if len(self._loading) < self._noted:
                            self._noted = len(self._loading)
                            self._shed("fewer pages at once", pages_at_once=self._noted)
                    await self._changed.wait()
                fresh = self._fresh()
                entry = _Loading(url, asyncio.ensure_future(make()), fresh, self._expect(fresh))
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
                    if entry.seen and entry.too_big is None:  # (too big: says nothing of others)
                        self._took[entry.fresh].append(entry.peak)
                    self._changed.notify_all()
            if entry.too_big is not None:
                raise entry.too_big
            if not entry.evicted:
                return entry.task.result()  # type: ignore[no-any-return]

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                used = await loop.run_in_executor(None, self._sample)
            except Exception:
                used = None
            if used is not None:
                async with self._changed:
                    await self._act(used)
                    self._changed.notify_all()
            self._sampled.set()
            await asyncio.sleep(SAMPLE_S if self._used > FREE_AT * self._limit else FREE_SAMPLE_S)

    async def _act(self, used: int) -> None:
        prev, self._used = self._used, used
        if self._settling and used >= prev:
            self._settling = False  # what was freed is given back: memory means pages again
        loading = [e for e in self._loading if not e.evicted and e.too_big is None]
        for entry in loading if prev else ():
            entry.grown += (used - prev) / len(loading)
            entry.peak, entry.seen = max(entry.peak, entry.grown), True
        over = used > EVICT_AT * self._limit
        if over and not self._settling and (closed := await self._close_idle()):
            self._settling = True
            self._shed("closed idle tabs", used=used, closed_tabs=closed)
        if not over or self._settling:
            for entry in loading:
                entry.growing = 0
            return
        if len(loading) > 1:
            youngest = loading[-1]
            youngest.evicted = True
            youngest.task.cancel()
            self._settling = True
            self._shed("stopped a page loading, to load it again after the others",
                       used=used, url=youngest.url)  # fmt: skip
        elif len(self._loading) == 1 and loading:
            page = loading[0]
            if used > prev:
                page.growing += 1
            if page.growing >= GROWING_SAMPLES:
                self._too_big(page, used)

    def _too_big(self, page: _Loading, used: int) -> None:
        # Alone, over EVICT_AT and still growing: it would take the whole task with it.
        need, rest = page.grown / MB, (used - page.grown) / MB
        page.too_big = MemoryLimitExceeded(
            f"{page.url}: one page needs more than ~{need:.0f} MB in the browser; the "
            f"execution reached {used / MB:.0f} MB of max_memory_mb={self._limit_mb} (~"
            f"{rest:.0f} MB without the page); raise max_memory_mb above {rest + need * 2:.0f}"
        )
        page.task.cancel()
        self._settling = True
        self._emit("browser_memory_page_too_big", url=page.url, need_mb=round(need),
                   used_mb=round(used / MB), max_memory_mb=self._limit_mb)  # fmt: skip

    def _shed(self, what: str, used: int | None = None, **data: Any) -> None:
        used = self._used if used is None else used
        self._emit("browser_memory_shed", action=what, used_mb=round(used / MB),
                   max_memory_mb=self._limit_mb, **data)  # fmt: skip

    async def aclose(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(BaseException):
                await self._sampler
            self._sampler = None
