"""``WebSession``: ``ctx.web`` — fetch, crawl, extract and screenshot under the task's policy.

A thin façade over the parts (see ``README.md``, module map): ``_gate`` (the path every request
takes), ``_fetch_http`` (HTTP pages), ``_tabs`` (browser context, tabs, route, WebSockets),
``crawl`` (the crawler). It asks what it needs of the execution through ``WebHost``.

Layers, outermost first (each request, each redirect hop): policy check → robots.txt →
per-host gate (crawl-delay, ``Retry-After``) → concurrency bound → rate ceiling → pinned
connection. Pages are reserved from the execution's budget *before* the first byte is sent and
given back when nothing was sent, so ``max_pages`` is exact under any concurrency.

Status codes: a final 2xx/3xx/4xx response is returned as a :class:`Page` (``status`` tells);
5xx and 429 are retried (``max_retries``, exponential backoff from ``retry_delay_seconds``,
``Retry-After`` honoured) and, when retries run out, the last response is returned. Connection
errors and time-outs are retried the same way and then raise ``FetchError(transient=True)``.
A policy refusal or a 4xx is never retried.

``auto`` mode: HTTP first; the browser when the HTML response looks script-rendered — under
200 characters of visible text and a ``<script>`` tag, or a ``<noscript>`` element and under
1,000 characters of text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from ..errors import FetchError, PageLimitExceeded, PolicyViolation, UserError
from ._fetch_http import fetch_http
from ._gate import DEFAULT_USER_AGENT, Gate
from ._page import Page, needs_browser
from ._reader import ReadingTabs
from ._tabs import BrowserTabs
from .crawl import Crawler, hrefs
from .extract import Extracted, Link, extract_links, extract_page
from .policy import Policy, is_default_port

if TYPE_CHECKING:
    from playwright.async_api import Page as Tab

    from ._host import WebHost

__all__ = ["DEFAULT_USER_AGENT", "Page", "WebSession", "needs_browser"]

Mode = Literal["auto", "http", "browser"]
_HTML = ("text/html", "application/xhtml+xml")


class WebSession:
    """``ctx.web``: every request of an execution goes through this session's policy.

    Created lazily by the runtime as ``WebSession(ctx)`` (any :class:`WebHost`) and closed
    with ``ctx.aclose()``.
    """

    def __init__(self, owner: WebHost) -> None:
        self._owner = owner
        self._cfg = owner.config
        self._gate = Gate(owner)
        self._tabs = BrowserTabs(owner, self._gate)  # open_page, screenshot (Playwright)
        self._reader = ReadingTabs(owner, self._gate)  # fetch
        self._closed = False

    @property
    def policy(self) -> Policy:
        """The task's policy (``check_url``, ``host_port``...), as every request meets it."""
        return self._gate.policy

    async def fetch(
        self,
        url: str,
        *,
        mode: Mode | None = None,
        wait_until: Literal["load", "domcontentloaded", "networkidle"] = "load",
        robots: bool = True,
    ) -> Page:
        """Fetch one page (one unit of ``max_pages``, redirects included) and record it.

        ``mode`` defaults to ``TaskConfig.fetch_mode``. ``wait_until`` applies in the browser:
        ``"networkidle"`` also waits for the page's own requests (XHR, late navigations).
        ``robots=False`` is for an API client (a search provider), not a crawler: robots.txt
        is not consulted, HTTP only, and every other rule (policy, budget, rate, per-host
        gate) still holds. The caller follows that API's own terms and says so.

        Raises ``PolicyViolation`` when the policy refuses the URL or a redirect hop,
        ``PageLimitExceeded`` when the budget is spent, ``FetchError`` when the network fails.
        """
        mode = mode or self._cfg.fetch_mode
        if mode not in ("auto", "http", "browser"):
            raise UserError(f"fetch(mode=...): got {mode!r}; use 'auto', 'http' or 'browser'")
        if not robots and mode != "http":
            raise UserError("fetch(robots=False) is for API requests: use mode='http'")
        self._admit(url, "fetch")
        sent = [0]
        with self._owner.action("fetch", url=url, mode=mode):
            try:
                if mode == "browser":
                    page = await self._read(url, sent, wait_until)
                else:
                    page = await fetch_http(self._gate, url, sent, robots=robots)
                    if mode == "auto" and needs_browser(page):
                        self._owner.emit("auto_browser", url=url, reason="page needs scripts")
                        page = await self._read(url, sent, wait_until)
            except BaseException:
                if sent[0] == 0:
                    self._owner.budget.release_page()
                raise
        self._owner.page_visited(page.url, page.status, fetched_with=page.fetched_with)
        return page

    async def _read(self, url: str, sent: list[int], wait_until: str) -> Page:
        """A page from the reading browser; one execution has one set of cookies, so where the
        Playwright context of ``open_page``/``screenshot`` exists too, they are copied over."""
        if not self._tabs.started:
            return await self._reader.fetch(url, sent, wait_until)
        await self._reader.add_cookies(await self._tabs.cookies())
        try:
            return await self._reader.fetch(url, sent, wait_until)
        finally:
            with contextlib.suppress(Exception):
                await self._tabs.add_cookies(await self._reader.cookies())

    async def _playwright_tab(self) -> Tab:
        tab = await self._tabs.new_tab()
        if self._reader.started:
            with contextlib.suppress(Exception):
                await self._tabs.add_cookies(await self._reader.cookies())
        return tab

    async def extract(
        self, page: Page, *, markdown: bool = True, listing: bool = False
    ) -> Extracted:
        """Main text, title, date, language, links and markdown, computed off the event loop.

        ``markdown=False`` leaves the markdown unrendered (``Extracted.markdown`` is then the
        plain text): a tenth of the extraction on long pages, for callers that never read it.
        ``listing=True``: a page read for its links only gets no main-content pass (its text
        is the visible text, no blocks): see ``extract_page``.

        Runs in the process-wide warm pool of extraction processes (see ``_extract_pool``), so
        extraction uses both cores and overlaps with fetching; if the pool fails, on a thread.
        """
        from ._extract_pool import ExtractFailed, shared_pool

        content_type = page.headers.get("content-type", page.content_type)
        with self._owner.action("extract", url=page.url):
            try:
                return await shared_pool().extract(
                    page.body, page.url, content_type, markdown, listing
                )
            except ExtractFailed:
                return await asyncio.to_thread(
                    functools.partial(extract_page, markdown=markdown, listing=listing),
                    page.body,
                    page.url,
                    content_type,
                )

    async def crawl(
        self,
        start_urls: list[str],
        *,
        strategy: Literal["bfs", "best_first"] = "bfs",
        score: Callable[[Link], float] | None = None,
        max_pages: int | None = None,
        max_depth: int | None = None,
        same_host: bool = True,
        follow: Callable[[str], bool] | None = None,
    ) -> AsyncIterator[Page]:
        """Crawl from ``start_urls``, yielding pages as they arrive.

        ``concurrent_requests`` pages are fetched at once. ``bfs`` goes level by level;
        ``best_first`` fetches the highest ``score(link)`` first. Never more pages than
        ``max_pages`` (this crawl) nor than the execution's budget. Links the policy refuses
        are recorded and never requested; pages that fail are recorded and skipped.
        ``same_host``: only links to the start URLs' hosts, where a port other than the
        scheme's default makes another host (``127.0.0.1:8000`` is not ``127.0.0.1:8602``).
        """
        if strategy not in ("bfs", "best_first"):
            raise UserError(f"crawl(strategy=...): got {strategy!r}; use 'bfs' or 'best_first'")
        if strategy == "best_first" and score is None:
            raise UserError("crawl(strategy='best_first') needs score=, a function of a Link")
        if isinstance(start_urls, str):
            raise UserError(f"crawl(start_urls=...): got a string {start_urls!r}; pass a list")
        policy = self.policy
        hosts: set[str] = set()
        starting = True
        out: asyncio.Queue[Page | None] = asyncio.Queue()
        joined: dict[tuple[str, str], str] = {}  # relative hrefs resolved, for this crawl

        def to_fetch(url: str) -> str | None:
            try:
                norm = policy.check_url(url)
            except PolicyViolation as exc:
                if starting or not same_host:
                    self._gate.refused(url, exc, source="crawl")
                return None
            scheme, name, port = policy.host_port(norm)
            # A port of its own is another server (docs link to a development server on
            # :8000); http and https on their default ports are the same host.
            host = name if is_default_port(scheme, port) else f"{name}:{port}"
            if starting:
                hosts.add(host)
                return norm
            if same_host and host not in hosts:
                return None
            return norm if follow is None or follow(norm) else None

        def on_page(page: Page, depth: int, _via: str) -> None:
            if (
                (max_depth is None or depth < max_depth)
                and page.text
                and page.content_type in _HTML
            ):
                push, below = crawler.push, depth + 1
                if score is None or strategy == "bfs":
                    level = -float(below)  # bfs: the shallower first
                    for href in hrefs(page.text, page.url, joined):
                        push(href, level, below)
                else:
                    for link in extract_links(page.text, page.url):
                        push(link.url, float(score(link)), below)
            out.put_nowait(page)

        def on_error(url: str, exc: PolicyViolation | FetchError) -> None:
            self._owner.emit("crawl_skipped", url=url, error=f"{type(exc).__name__}: {exc}")

        crawler = Crawler(self._owner, self.fetch, on_page=on_page, follow=to_fetch,
                          on_error=on_error, max_pages=max_pages, max_depth=max_depth)  # fmt: skip
        for url in start_urls:
            crawler.push(url, -0.0, 0)  # bfs: by depth; best_first: starts, then by score
        starting = False
        with self._owner.action("crawl", strategy=strategy, max_pages=max_pages):
            done = asyncio.ensure_future(crawler.run(self._cfg.concurrent_requests))
            done.add_done_callback(lambda _f: out.put_nowait(None))
            try:
                while (page := await out.get()) is not None:
                    yield page
                await done  # re-raise a worker's unexpected error
            finally:
                done.cancel()
                with contextlib.suppress(BaseException):
                    await done

    async def open_page(self) -> Any:
        """A new Playwright tab in this execution's browser context, for code that drives a page.

        Every request of the tab passes the same route as ``fetch`` (policy, DNS pinning,
        rate limit, robots.txt). Page budgeting of its navigations is the caller's: reserve with
        ``ctx.budget.try_reserve_page()``. Close the tab when done (``aclose`` also does).
        """
        return await self._playwright_tab()

    def _admit(self, url: str, action: str) -> None:
        """What every navigation the task asks for needs first: not cancelled, allowed by the
        policy (a refusal is recorded), and one page of the budget reserved."""
        self._owner.check_cancelled()
        try:
            # The gate's remembered check: the gate checks the same URL again on sending.
            self._gate.check_url(url, navigation=True)
        except PolicyViolation as exc:
            self._gate.refused(url, exc, source=action)
            raise
        if not self._owner.budget.try_reserve_page():
            raise PageLimitExceeded(
                f"max_pages={self._owner.budget.max_pages} reached; cannot {action} {url}"
            )

    async def screenshot(self, url: str, *, full_page: bool = False) -> bytes:
        """A PNG of ``url`` rendered in the browser (counts as one page)."""
        self._admit(url, "screenshot")
        with self._owner.action("screenshot", url=url):
            tab = await self._playwright_tab()
            try:
                resp = await self._tabs.goto(tab, url, "load")
                png = await tab.screenshot(full_page=full_page, type="png")
            finally:
                with contextlib.suppress(Exception):
                    await tab.close()
        self._owner.page_visited(url, resp.status if resp else None, fetched_with="browser")
        return png

    async def aclose(self) -> None:
        """Close the HTTP clients, the browser context and the extraction pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._tabs.stop()
        self._reader.stop()
        await self._gate.aclose()
        await self._tabs.aclose()
        await self._reader.aclose()
