"""The crawler: one best-first frontier and ``workers`` fetching from it, with hooks.

``WebSession.crawl`` (breadth-first or best-first by a ``score`` of links) and the research
skill (relevance to a topic, pages extracted as they arrive) both run this engine; what they
differ in is given as hooks:

* ``follow(url)``: the URL to fetch for a link, or None to drop it. Judged once per URL seen,
  so the links every page repeats (navigation, sidebars, footers) cost one dict lookup.
* ``key(url)``: two URLs with the same key are one page (default: the URL itself).
* ``score(link, parent_score, depth)``: a link's priority, for :meth:`Crawler.push_links`.
* ``on_page(page, depth, via)``: a fetched page; it pushes the links it wants followed.
* ``on_error(url, exc)``: a fetch refused by the policy or failed (``PolicyViolation``,
  ``FetchError``); the crawl goes on.
* ``skip(url, depth)``: a last word before fetching a popped URL (e.g. pages already read).

The highest score is fetched first (ties: first pushed); a URL pushed again with a higher
score moves up; each key is fetched once. The crawl ends when the frontier is empty and
nothing is in flight, after ``max_pages`` fetches of its own (a fetch that fails gives its
place back, even at the limit), when the execution's page budget is spent, or after
``window`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from ..errors import FetchError, PageLimitExceeded, PolicyViolation

if TYPE_CHECKING:
    from ._host import WebHost
    from ._page import Page
    from .extract import Link

__all__ = ["Crawler", "hrefs"]


_DROP = "\x00drop"  # the key of what follow() turned down
_NEW, _HAD = -math.inf, math.inf


def _same(url: str) -> str:
    return url


class Crawler:
    """A best-first crawl of one execution (``owner``) fetching with ``fetch``."""

    def __init__(
        self,
        owner: WebHost,
        fetch: Callable[[str], Awaitable[Page]],
        *,
        on_page: Callable[[Page, int, str], Awaitable[None] | None],
        follow: Callable[[str], str | None],
        key: Callable[[str], str] = _same,
        score: Callable[[Link, float, int], float] | None = None,
        on_error: Callable[[str, PolicyViolation | FetchError], None] | None = None,
        skip: Callable[[str, int], bool] | None = None,
        max_pages: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        self._owner = owner
        self._fetch = fetch
        self._on_page = on_page
        self._follow = follow
        self._key = key
        self._score = score
        self._on_error = on_error
        self._skip = skip
        self.max_pages = max_pages
        self.max_depth = max_depth
        self.taken = 0  # fetches of this crawl that counted (a failed one is given back)
        self._heap: list[tuple[float, int, str, int, str]] = []
        # Per key: the best score pushed, or _HAD once taken (or marked seen): one lookup
        # turns down the links every page repeats.
        self._best: dict[str, float] = {}
        self._best[_DROP] = _HAD
        self._seen: set[str] = set()  # keys taken from the frontier (or marked seen)
        self._judged: dict[str, str] = {}  # url -> its key, or _DROP
        self._targets: dict[str, str] = {}  # url -> the URL to fetch, when follow() changed it
        self._seq = 0
        self._inflight = 0
        self._wake = asyncio.Event()
        self._done = False
        self._held = 0  # while > 0 no worker takes from the frontier (it is being reordered)

    # -- the frontier -----------------------------------------------------------------------
    def push(self, url: str, score: float, depth: int, via: str = "") -> None:
        """Offer ``url`` at ``score`` (higher first) and ``depth``; ``via`` is passed on."""
        key = self._judged.get(url)
        if key is None:
            key = self._judge(url)
        if self._best.get(key, _NEW) >= score:
            return  # turned down, fetched, or waiting with at least this score
        if self.max_depth is not None and depth > self.max_depth:
            return
        self._best[key] = score
        self._seq += 1
        target = self._targets.get(url, url)
        heapq.heappush(self._heap, (-score, self._seq, target, depth, via))
        self._wake.set()

    def _judge(self, url: str) -> str:
        target = self._follow(url)
        if target is None:
            key = self._judged[url] = _DROP
            return key
        if target != url:
            self._targets[url] = target
        key = self._judged[url] = self._key(target)
        return key

    def push_links(self, links: list[Link], parent_score: float, depth: int) -> None:
        """Push each link at ``score(link, parent_score, depth)``."""
        score = self._score
        if score is None:
            raise TypeError("Crawler.push_links needs a score= hook")
        push = self.push
        for link in links:
            push(link.url, score(link, parent_score, depth), depth)

    def mark_seen(self, url: str) -> None:
        """``url``'s page is had (e.g. the final URL of a redirect): never fetch it."""
        key = self._key(url)
        self._seen.add(key)
        self._best[key] = _HAD

    def peek(self, n: int) -> list[tuple[str, float, int]]:
        """The ``n`` best URLs waiting in the frontier (url, score, depth), best first."""
        out: list[tuple[str, float, int]] = []
        keys: set[str] = set()
        for neg, _, url, depth, _ in sorted(self._heap):
            key = self._key(url)
            if key in self._seen or key in keys or self._best.get(key) != -neg:
                continue  # taken, or a stale entry of a URL pushed again with a better score
            keys.add(key)
            out.append((url, -neg, depth))
            if len(out) >= n:
                break
        return out

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """No new fetch starts inside this block (fetches in flight go on): a caller that
        reorders the frontier (a model choosing pages) decides before the next one is taken."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            self._wake.set()

    def _pop(self) -> tuple[str, int, str] | None:
        while self._heap:
            _, _, url, depth, via = heapq.heappop(self._heap)
            key = self._key(url)
            if key in self._seen:
                continue  # a lower-scored duplicate of a key already taken
            self._seen.add(key)
            self._best[key] = _HAD
            return url, depth, via
        return None

    # -- the workers ------------------------------------------------------------------------
    async def run(self, workers: int, window: float | None = None) -> bool:
        """Crawl with ``workers`` concurrent fetches until done; True if ``window`` seconds
        ran out first (fetches still in flight are abandoned). A worker's error (cancelled,
        out of time) is raised."""
        tasks = [asyncio.create_task(self._worker()) for _ in range(max(1, workers))]
        try:
            done, pending = await asyncio.wait(
                tasks, timeout=window, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                task.result()  # re-raise a worker's failure (cancellation, limits)
            if pending:
                self._finish()
                return True
            return False
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _finish(self) -> None:
        self._done = True
        self._wake.set()

    async def _worker(self) -> None:
        owner = self._owner
        while not self._done:
            owner.check_cancelled()
            spent = owner.budget.pages_left <= 0 or (
                self.max_pages is not None and self.taken >= self.max_pages
            )
            # At the limit, a fetch still in flight may fail and give its page back (a dead
            # server after its retries): wait for it, then fetch another in its place.
            item = None if spent or self._held else self._pop()
            if item is None:
                if self._inflight == 0 and not self._held:
                    self._finish()
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.2)
                continue
            url, depth, via = item
            if self._skip is not None and self._skip(url, depth):
                continue
            self._inflight += 1
            self.taken += 1
            try:
                await self._visit(url, depth, via)
            finally:
                self._inflight -= 1
                self._wake.set()

    async def _visit(self, url: str, depth: int, via: str) -> None:
        try:
            page = await self._fetch(url)
        except PageLimitExceeded:
            self.taken -= 1
            self._finish()
            return
        except (PolicyViolation, FetchError) as exc:
            self.taken -= 1  # nothing counted against this crawl's own limit
            if self._on_error is not None:
                self._on_error(url, exc)
            return
        handled = self._on_page(page, depth, via)
        if handled is not None:
            await handled


def hrefs(html: str, url: str, joined: dict[tuple[str, str], str] | None = None) -> list[str]:
    """Absolute http(s) link targets of a page, fast (a tokenizer, no tree; see ``_hrefs``):
    what a breadth-first crawl needs. ``extract_links`` also collects anchor text and
    context, for scoring. ``joined``: a crawl's memo of path-relative hrefs resolved against
    a directory (pages of one directory share their navigation's hrefs: each is joined once).
    """
    from ._hrefs import raw_hrefs

    base_href, found = raw_hrefs(html)
    base = url
    if base_href is not None:
        with contextlib.suppress(ValueError):
            base = urljoin(url, base_href.strip())
    scheme, _, rest = base.partition("://")
    origin = f"{scheme}://{rest.split('/', 1)[0]}"
    # A path-relative href ("../ref/x.html") resolves against the base's directory alone.
    path = base.split("?", 1)[0].split("#", 1)[0]
    folder = path[: path.rfind("/") + 1]
    if joined is None:
        joined = {}
    elif len(joined) > _JOINED_MAX:
        joined.clear()  # bounded: a crawl of many directories starts the memo over
    out: list[str] = []
    for href in found:
        href = href.strip()
        if not href or href[0] == "#":
            continue
        if href[0] == "/" and href[:2] != "//":
            out.append(origin + href.split("#", 1)[0])  # the common case, without urljoin
            continue
        relative = href[0] != "?" and ":" not in href.split("/", 1)[0]
        key = (folder, href.split("#", 1)[0])  # "x.html#a" and "x.html#b": one target
        absolute = joined.get(key) if relative else None
        if absolute is None:
            try:
                absolute = urljoin(base, href).split("#", 1)[0]
            except ValueError:
                continue
            if relative:
                joined[key] = absolute
        if absolute.startswith(("http://", "https://")):
            out.append(absolute)
    return out


_JOINED_MAX = 50_000  # memo entries one crawl keeps
