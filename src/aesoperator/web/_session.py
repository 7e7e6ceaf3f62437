"""``WebSession``: ``ctx.web`` — fetch, crawl, extract and screenshot under the task's policy.

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
import heapq
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

import httpx

from ..errors import FetchError, PageLimitExceeded, PolicyViolation, UserError
from ._decode import BadEncoding, Decoder, TooLarge
from ._http import make_client
from ._limits import HostGate, RateLimiter
from .extract import Extracted, Link, decode_body, decode_text, extract_links, extract_page
from .policy import Policy, normalise_url, refusal

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Request, Route, WebSocketRoute
    from playwright.async_api import Page as Tab

    from ..runtime.context import TaskContext

__all__ = ["Page", "WebSession"]

Mode = Literal["auto", "http", "browser"]
DEFAULT_USER_AGENT = "Aesoperator/0.1 (+https://github.com/aesoperator/aesoperator)"
_MAX_REDIRECTS = 20
_DNS_TTL = 300.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml",
               "application/javascript", "application/ld+json", "application/rss+xml",
               "application/atom+xml")  # fmt: skip
# Requests that count against requests_per_second in browser mode.
_COUNTED_TYPES = frozenset({"document", "fetch", "xhr", "eventsource", "other"})
_BLOCK_PATTERNS = {
    "image": tuple(f"*.{x}*" for x in ("png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp")),
    "font": tuple(f"*.{x}*" for x in ("woff", "woff2", "ttf", "otf", "eot")),
    "media": tuple(f"*.{x}*" for x in ("mp4", "webm", "mp3", "ogg", "wav", "m4a", "mov")),
}
_CACHED_TYPES = frozenset({"stylesheet", "script", "font", "image"})
_TAGS = re.compile(r"<script\b.*?</script>|<style\b.*?</style>|<[^>]+>", re.S | re.I)


@dataclass(frozen=True)
class Page:
    """A fetched page.

    ``url`` is the final URL after redirects, ``requested_url`` the one asked for;
    ``headers`` have lower-case names; ``content_type`` is the bare media type
    (``"text/html"``); ``text`` is the decoded body (``encoding`` says how), empty for
    non-text content; ``fetched_with`` is ``"http"`` or ``"browser"`` (in the browser,
    ``text`` is the DOM after scripts ran). ``charset_refused`` is the declared charset that
    was not used (``utf-7``, ``unicode_escape``, a name no browser knows): it is ignored, as
    browsers ignore it, and ``text`` decoded as if none were declared (HTTP mode; Chromium
    does the same by itself).
    """

    url: str
    requested_url: str
    status: int
    headers: dict[str, str]
    content_type: str
    encoding: str | None
    body: bytes
    text: str
    fetched_with: Literal["http", "browser"]
    elapsed_ms: float
    charset_refused: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Response:
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class _Redirected:
    """Our fetch's navigation was redirected to ``url`` (every hop checked)."""

    url: str


# What became of a document navigation: its status and headers, the error, or a redirect.
_NavOutcome = tuple[int, list[tuple[str, str]]] | BaseException | _Redirected


@dataclass
class _Cached:
    """A static subresource as it is given to the page again (headers ready to fulfil)."""

    status: int
    headers: dict[str, str]
    body: bytes


def _storable(resp: _Response) -> bool:
    """May this subresource be reused within the execution (a private, short-lived cache)?"""
    if len(resp.body) > 2 * 1024 * 1024:
        return False
    control = ",".join(v for k, v in resp.headers if k.lower() == "cache-control").lower()
    return "no-store" not in control and "no-cache" not in control


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].split('?', 1)[0].lower()}"


def _mime(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _is_text(mime: str) -> bool:
    return mime == "" or mime.startswith(_TEXT_TYPES) or mime.endswith(("+xml", "+json"))


def _retry_after(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` value asks for: delay-seconds or an HTTP-date (RFC 9110).
    None for anything else (negative, fractional, garbage): the usual backoff applies. An
    absurd value is kept (even ``inf``): the host gate refuses to wait longer than time left."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    from datetime import UTC
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # an HTTP-date is always GMT
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def needs_browser(page: Page) -> bool:
    """The ``auto`` rule: does this HTTP response look like it needs scripts to show content?"""
    if page.content_type not in ("text/html", "application/xhtml+xml") or not page.ok:
        return False
    lower = page.text.lower()
    script, noscript = "<script" in lower, "<noscript" in lower
    if not (script or noscript):
        return False  # nothing a browser would run: no need to measure the visible text
    visible = len(" ".join(_TAGS.sub(" ", page.text).split()))
    return (script and visible < 200) or (noscript and visible < 1000)


class _Robots:
    """robots.txt per origin (protego); fetched once, through the same gate as any request."""

    def __init__(self) -> None:
        self.parsers: dict[str, Any] = {}
        self.locks: dict[str, asyncio.Lock] = {}


class WebSession:
    """``ctx.web``: every request of an execution goes through this session's policy.

    Created lazily by the runtime as ``WebSession(ctx)`` and closed with ``ctx.aclose()``.
    """

    def __init__(self, ctx: TaskContext) -> None:
        self._ctx = ctx
        cfg = ctx.config
        self._cfg = cfg
        self.policy = Policy.from_config(cfg)
        self._rate = RateLimiter(cfg.requests_per_second)
        self._sem = asyncio.Semaphore(cfg.concurrent_requests)
        self._hosts = HostGate()
        self._robots = _Robots()
        self._dns: dict[tuple[str, int], tuple[float, list[str] | PolicyViolation]] = {}
        self._user_agent = cfg.user_agent or DEFAULT_USER_AGENT
        self._client: httpx.AsyncClient | None = None
        self._browser_client: httpx.AsyncClient | None = None
        self._context: BrowserContext | None = None
        self._context_lock = asyncio.Lock()
        self._refused_seen: set[tuple[str, str]] = set()
        self._url_checks: dict[tuple[str, bool], str | PolicyViolation] = {}
        self._closed = False
        self._bg: set[asyncio.Future[Any]] = set()
        self._final_urls: dict[str, str] = {}
        self._idle_tabs: list[Any] = []
        # Our fetch tabs: "expect" (our navigation is on its way) or "active" (loaded; any
        # further main-frame navigation is the page's own and costs a page); absent = idle.
        self._own_tabs: set[Any] = set()
        self._tab_state: dict[Any, str] = {}
        # Static subresources (CSS, scripts, fonts, images) already fetched in this execution.
        self._subresources: dict[str, _Cached] = {}
        # What became of each document navigation the route saw: a status, the error, or the
        # final URL of a redirect followed for one of our fetches.
        self._nav_outcome: dict[str, _NavOutcome] = {}
        # The final response of such a redirect, by final URL, kept for the tab's second
        # navigation (to that URL), which the route answers from here without sending again.
        self._replies: dict[str, _Response] = {}
        # Per tab: its WebSockets are routed to us (done before the tab loads anything).
        self._ws_routed: dict[Any, asyncio.Future[None]] = {}
        self._websockets: set[Any] = set()  # open server connections relayed to a page

    # -- plumbing -----------------------------------------------------------------------------
    async def _resolve(self, host: str, port: int) -> list[str]:
        # An answer is kept for _DNS_TTL: the check and the connections made meanwhile use the
        # same addresses, so DNS cannot change in between; a new answer is checked again.
        key = (host, port)
        now = time.monotonic()
        entry = self._dns.get(key)
        if entry is None or entry[0] < now:
            try:
                answer: list[str] | PolicyViolation = await self.policy.resolve(host, port)
            except PolicyViolation as exc:
                answer = exc  # a name that does not resolve (FetchError) is not remembered
            entry = (now + _DNS_TTL, answer)
            self._dns[key] = entry
        cached = entry[1]
        if isinstance(cached, PolicyViolation):
            raise PolicyViolation(str(cached), url=cached.url, rule=cached.rule)
        return cached

    def _http(self, browser: bool = False) -> httpx.AsyncClient:
        if self._closed:
            raise UserError("this web session is closed")
        if browser:
            if self._browser_client is None:
                self._browser_client = make_client(
                    self._resolve,
                    max_connections=max(8, self._cfg.concurrent_requests),
                    timeout=self._cfg.request_timeout_seconds,
                )
            return self._browser_client
        if self._client is None:
            self._client = make_client(
                self._resolve,
                max_connections=self._cfg.concurrent_requests,
                timeout=self._cfg.request_timeout_seconds,
            )
        return self._client

    def _check_url(self, url: str, navigation: bool) -> str:
        """``policy.check_url``, remembered per URL: the policy of a session never changes, and
        a page asks for the same URLs again and again (its stylesheet on every page)."""
        key = (url, navigation)
        known = self._url_checks.get(key)
        if known is None:
            try:
                known = self.policy.check_url(url, navigation=navigation)
            except PolicyViolation as exc:
                known = exc
            if len(self._url_checks) >= 50_000:
                self._url_checks.clear()
            self._url_checks[key] = known
        if isinstance(known, PolicyViolation):
            raise PolicyViolation(str(known), url=known.url, rule=known.rule)
        return known

    def _refused(self, url: str, exc: PolicyViolation, **extra: Any) -> None:
        key = (url, exc.rule or "")
        if key in self._refused_seen:
            return
        self._refused_seen.add(key)
        self._ctx.emit("policy_refused", url=url, rule=exc.rule, message=str(exc), **extra)

    async def _check(self, url: str, *, navigation: bool, robots: bool) -> str:
        """Policy (scheme, domains, address) and robots.txt for one hop. Raises when refused."""
        norm = self._check_url(url, navigation)
        scheme, host, port = self.policy.host_port(norm)
        await self._resolve(host, port)
        if robots and self._cfg.respect_robots_txt:
            await self._robots_allow(scheme, host, port, norm)
        return norm

    async def _robots_allow(self, scheme: str, host: str, port: int, url: str) -> None:
        shown = f"[{host}]" if ":" in host else host
        default = {"http": 80, "https": 443}.get(scheme)
        origin = f"{scheme}://{shown}" + ("" if port == default else f":{port}")
        parser = self._robots.parsers.get(origin)
        if parser is None:
            lock = self._robots.locks.setdefault(origin, asyncio.Lock())
            async with lock:
                parser = self._robots.parsers.get(origin)
                if parser is None:
                    parser = await self._load_robots(origin, host)
                    self._robots.parsers[origin] = parser
        if parser is False:
            return
        if not parser.can_fetch(url, self._user_agent):
            raise refusal(
                f"refused {url!r}: robots.txt of {origin} disallows it "
                "(set TaskConfig(respect_robots_txt=False) to ignore robots.txt)",
                url=url,
                rule="robots_txt",
            )

    async def _load_robots(self, origin: str, host: str) -> Any:
        from protego import Protego

        url = origin + "/robots.txt"
        try:
            resp = await self._send_hops(url, navigation=False, robots=False, browser=False)
        except (FetchError, PolicyViolation):
            return False  # unreachable robots.txt: nothing is disallowed
        if resp.status != 200:
            return False
        text, _ = decode_body(resp.body, dict(resp.headers).get("content-type"))
        parser = Protego.parse(text)
        delay = parser.crawl_delay(self._user_agent)
        if delay:
            self._hosts.set_delay(host, float(delay))
            # Said once here; the waits it causes between requests are not each recorded.
            self._ctx.emit("crawl_delay", host=host, seconds=float(delay))
        return parser

    async def _send_once(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        count: bool = True,
        browser: bool = False,
    ) -> _Response:
        """One request on the wire, within concurrency and rate limits (the host gate passed)."""
        cfg = self._cfg
        async with self._sem:
            slot = await self._rate.acquire() if count else None
            self._ctx.check_cancelled()

            async def trace(event: str, info: Any) -> None:
                if event.endswith("send_request_headers.started"):
                    RateLimiter.mark_sent(slot)

            hdrs = {"user-agent": self._user_agent}
            if headers:
                hdrs.update(headers)
            client = self._http(browser)
            timeout = min(cfg.request_timeout_seconds, max(0.1, self._ctx.budget.time_left))
            try:
                async with asyncio.timeout(timeout):
                    # The trace hook (awaited at every step of the request) only matters
                    # when there is a rate slot to start counting.
                    ext = {"trace": trace} if slot is not None else None
                    req = client.build_request(
                        method, url, headers=hdrs, content=content, extensions=ext
                    )
                    resp = await client.send(req, stream=True)
                    try:
                        declared = resp.headers.get("content-length", "")
                        if declared.isdigit() and int(declared) > cfg.max_response_bytes:
                            raise TooLarge(url)
                        # Decoded here, not by httpx: each layer of Content-Encoding in
                        # bounded pieces, every layer counted (see _decode).
                        decoder = Decoder(
                            resp.headers.get_list("content-encoding", split_commas=True),
                            cfg.max_response_bytes,
                        )
                        chunks: list[bytes] = []
                        async for raw in resp.aiter_raw():
                            chunks.extend(decoder.feed(raw))
                        chunks.extend(decoder.finish())
                    finally:
                        await resp.aclose()
            except TimeoutError:
                raise FetchError(
                    f"{url}: no response within request_timeout_seconds={timeout:g}",
                    url=url,
                    transient=True,
                ) from None
            except TooLarge:
                raise FetchError(
                    f"{url}: response larger than max_response_bytes={cfg.max_response_bytes}; "
                    "raise TaskConfig.max_response_bytes to read it",
                    url=url,
                ) from None
            except BadEncoding as exc:
                raise FetchError(f"{url}: {exc}", url=url) from None
            except httpx.TransportError as exc:
                raise FetchError(
                    f"{url}: {type(exc).__name__}: {exc}", url=url, transient=True
                ) from exc
        got = list(resp.headers.multi_items())
        return _Response(str(resp.url), resp.status_code, got, b"".join(chunks))

    async def _wait_for_host(self, url: str, host: str) -> None:
        """The host gate, failing fast when the wait it asks for outlasts the execution."""

        def too_long(wait: float, why: str) -> None:
            left = self._ctx.budget.time_left
            if wait >= left:
                raise FetchError(
                    f"{url}: not sent: {host} asks to wait {wait:,.0f} s more ({why}), "
                    f"but {left:,.1f} s of max_duration_seconds="
                    f"{self._cfg.max_duration_seconds:g} are left",
                    url=url,
                )
            if why.startswith("Retry-After"):  # crawl-delay waits are steady: said once
                self._ctx.emit("host_wait", url=url, host=host, seconds=round(wait, 3),
                               reason=why)  # fmt: skip

        await self._hosts.wait(host, too_long)

    async def _send_retrying(
        self,
        url: str,
        *,
        navigation: bool,
        robots: bool,
        browser: bool,
        sent: list[int] | None,
        **kw: Any,
    ) -> tuple[str, _Response]:
        """One hop: checked (policy, address, robots.txt), then sent; a transient failure of
        either (a name that does not resolve, a refused connection, a 5xx) is retried.
        Returns the URL as checked and the response."""
        cfg = self._cfg
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            header: str | None = None
            last: _Response | None = None
            try:
                try:
                    norm = await self._check(url, navigation=navigation, robots=robots)
                except PolicyViolation as exc:
                    self._refused(url, exc, source="browser" if browser else "http")
                    raise
                # Before the page counts as spent: a wait that cannot be waited out gives it back.
                await self._wait_for_host(norm, self.policy.host_port(norm)[1])
                if sent is not None:
                    sent[0] += 1
                resp = await self._send_once(norm, browser=browser, **kw)
            except FetchError as exc:
                if not exc.transient or attempt > cfg.max_retries:
                    raise
                error = str(exc)
            else:
                if resp.status not in _RETRY_STATUSES:
                    return norm, resp
                header = dict(resp.headers).get("retry-after")
                retry_after = _retry_after(header)
                if retry_after is not None and resp.status in (429, 503):
                    why = f"Retry-After: {header}"[:120]
                    self._hosts.back_off(self.policy.host_port(norm)[1], retry_after, why)
                if attempt > cfg.max_retries:
                    return norm, resp
                last = resp
                error = f"HTTP {resp.status}"
            delay = cfg.retry_delay_seconds * (2 ** (attempt - 1)) * (0.8 + 0.4 * random.random())
            if retry_after is not None:
                delay = max(delay, retry_after)
            if delay > self._ctx.budget.time_left:
                if last is not None:
                    return norm, last  # the server's own answer beats a time-out of ours
                raise FetchError(f"{url}: {error}; no time left to retry", url=url, transient=True)
            extra = {} if header is None else {"retry_after": header[:100]}
            self._ctx.emit("retry", url=url, attempt=attempt, delay=round(delay, 3), error=error,
                           **extra)  # fmt: skip
            await self._ctx.sleep(delay)

    async def _send_hops(
        self,
        url: str,
        *,
        navigation: bool,
        robots: bool,
        browser: bool,
        sent: list[int] | None = None,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        count: bool = True,
    ) -> _Response:
        """Follow redirects ourselves so that every hop passes the policy."""
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            current, resp = await self._send_retrying(
                current, navigation=navigation, robots=robots, browser=browser, sent=sent,
                method=method, headers=headers, content=content, count=count,
            )  # fmt: skip
            location = dict(resp.headers).get("location")
            if resp.status in (301, 302, 303, 307, 308) and location:
                if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                    method, content = "GET", None
                following = urljoin(current, location)
                if headers and _origin(following) != _origin(current):
                    # The page's cookies and credentials were for the first origin only.
                    headers = {k: v for k, v in headers.items()
                               if k.lower() not in ("cookie", "authorization")}  # fmt: skip
                current = following
                continue
            return resp
        raise FetchError(f"{url}: more than {_MAX_REDIRECTS} redirects", url=url)

    # -- public actions -----------------------------------------------------------------------
    async def fetch(
        self,
        url: str,
        *,
        mode: Mode | None = None,
        wait_until: Literal["load", "domcontentloaded", "networkidle"] = "load",
    ) -> Page:
        """Fetch one page (one unit of ``max_pages``, redirects included) and record it.

        ``mode`` defaults to ``TaskConfig.fetch_mode``. ``wait_until`` applies in the browser:
        ``"networkidle"`` also waits for the page's own requests (XHR, late navigations).

        Raises ``PolicyViolation`` when the policy refuses the URL or a redirect hop,
        ``PageLimitExceeded`` when the budget is spent, ``FetchError`` when the network fails.
        """
        mode = mode or self._cfg.fetch_mode
        if mode not in ("auto", "http", "browser"):
            raise UserError(f"fetch(mode=...): got {mode!r}; use 'auto', 'http' or 'browser'")
        self._admit(url, "fetch")
        sent = [0]
        with self._ctx.action("fetch", url=url, mode=mode):
            try:
                if mode == "browser":
                    page = await self._browser_fetch(url, sent, wait_until)
                else:
                    page = await self._http_fetch(url, sent)
                    if mode == "auto" and needs_browser(page):
                        self._ctx.emit("auto_browser", url=url, reason="page needs scripts")
                        page = await self._browser_fetch(url, sent, wait_until)
            except BaseException:
                if sent[0] == 0:
                    self._ctx.budget.release_page()
                raise
        self._ctx.page_visited(page.url, page.status, fetched_with=page.fetched_with)
        return page

    async def _http_fetch(self, url: str, sent: list[int]) -> Page:
        start = time.perf_counter()
        resp = await self._send_hops(url, navigation=True, robots=True, browser=False, sent=sent)
        headers = {k.lower(): v for k, v in resp.headers}
        mime = _mime(headers)
        text, encoding, refused = "", None, None
        if _is_text(mime):
            text, encoding, refused = decode_text(resp.body, headers.get("content-type"))
        elapsed = (time.perf_counter() - start) * 1000
        return Page(url=resp.url, requested_url=url, status=resp.status, headers=headers,
                    content_type=mime, encoding=encoding, body=resp.body, text=text,
                    fetched_with="http", elapsed_ms=elapsed,
                    charset_refused=refused)  # fmt: skip

    async def extract(self, page: Page) -> Extracted:
        """Main text, title, date, language, links and markdown, computed off the event loop.

        Runs in the process-wide warm pool of extraction processes (see ``_extract_pool``), so
        extraction uses both cores and overlaps with fetching; if the pool fails, on a thread.
        """
        from ._extract_pool import ExtractFailed, shared_pool

        content_type = page.headers.get("content-type", page.content_type)
        with self._ctx.action("extract", url=page.url):
            try:
                return await shared_pool().extract(page.body, page.url, content_type)
            except ExtractFailed:
                return await asyncio.to_thread(extract_page, page.body, page.url, content_type)

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
        """
        if strategy not in ("bfs", "best_first"):
            raise UserError(f"crawl(strategy=...): got {strategy!r}; use 'bfs' or 'best_first'")
        if strategy == "best_first" and score is None:
            raise UserError("crawl(strategy='best_first') needs score=, a function of a Link")
        if isinstance(start_urls, str):
            raise UserError(f"crawl(start_urls=...): got a string {start_urls!r}; pass a list")
        async for page in _Crawl(self, start_urls, strategy, score, max_pages, max_depth,
                                 same_host, follow).run():  # fmt: skip
            yield page

    # -- browser ------------------------------------------------------------------------------
    async def _browser_context(self) -> BrowserContext:
        async with self._context_lock:
            if self._context is None:
                from ._browser import get_browser

                browser = await get_browser()
                cfg = self._cfg
                ctx_kw: dict[str, Any] = {
                    "viewport": {"width": cfg.viewport_width, "height": cfg.viewport_height},
                    "service_workers": "block",
                    "accept_downloads": False,
                }
                if cfg.user_agent:
                    ctx_kw["user_agent"] = cfg.user_agent
                context = await browser.new_context(**ctx_kw)
                await context.route("**/*", self._route)
                context.on("page", self._on_page)
                self._context = context
            return self._context

    def _on_page(self, page: Any) -> None:
        page.on("websocket", self._on_websocket)
        # Every tab's WebSockets come to _route_websocket; ours wait for this before loading.
        self._ws_routed[page] = asyncio.ensure_future(self._route_websockets_of(page))
        # Popups and new tabs: their requests pass the same route; we never keep them open.
        task = asyncio.ensure_future(self._close_popup(page))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _route_websockets_of(self, page: Any) -> None:
        with contextlib.suppress(Exception):
            await page.route_web_socket(
                lambda _url: True, functools.partial(self._route_websocket, page)
            )

    async def _tab_ready(self, tab: Any) -> None:
        ready = self._ws_routed.get(tab)
        if ready is None:  # the "page" event not seen yet: route it here
            ready = self._ws_routed[tab] = asyncio.ensure_future(self._route_websockets_of(tab))
        await ready

    async def _close_popup(self, page: Any) -> None:
        with contextlib.suppress(Exception):
            if await page.opener() is None:
                return  # a tab we opened ourselves
            self._ctx.emit("popup_closed", url=page.url)
            await page.close()

    def _on_websocket(self, ws: Any) -> None:
        # A WebSocket that bypassed _route_websocket (one from a worker, or opened before
        # the tab was routed) goes to the dead proxy and fails; record what was tried.
        try:
            self.policy.check_url(ws.url, navigation=False)
        except PolicyViolation as exc:
            self._refused(ws.url, exc, source="browser", resource_type="websocket")
        else:
            self._ctx.emit("websocket_unsupported", url=ws.url,
                           reason="this WebSocket was not routed (a worker's?)")  # fmt: skip

    async def _route_websocket(self, tab: Any, ws: WebSocketRoute) -> None:
        """A page's WebSocket: checked like any request, then connected by us and relayed.

        Playwright answers the page's ``new WebSocket`` itself; nothing connects until we
        do. The handshake is one request of the gate (policy, pinned address, host gate,
        ``concurrent_requests``, ``requests_per_second``); the open connection holds no slot.
        """
        from ._browser import relay_websocket

        url = ws.url
        try:
            server = await self._open_websocket(url, ws.protocols, tab)
        except PolicyViolation as exc:
            self._refused(url, exc, source="browser", resource_type="websocket")
            await _quiet(ws.close(code=1008, reason=f"refused by policy ({exc.rule})"))
            return
        except Exception as exc:
            self._ctx.emit("websocket_failed", url=url, error=f"{type(exc).__name__}: {exc}"[:300])
            await _quiet(ws.close(code=1011, reason="connection failed"))
            return
        self._websockets.add(server)
        task = asyncio.ensure_future(
            relay_websocket(ws, server, lambda: self._websockets.discard(server))
        )
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _open_websocket(self, url: str, protocols: list[str], tab: Any) -> Any:
        from ._browser import open_pinned_websocket

        norm = self.policy.check_url(url, navigation=False)
        scheme, host, port = self.policy.host_port(norm)
        ips = await self._resolve(host, port)  # the pinned answer, checked for private ranges
        secure = scheme == "wss"
        # What Chromium would send: the page's origin and the session's cookies for the host.
        headers: dict[str, str] = {}
        with contextlib.suppress(Exception):
            page_url = tab.url
            if page_url.startswith(("http://", "https://")):
                headers["origin"] = _origin(page_url)
        # Chromium's jar has the servers' cookies and the ones scripts wrote (one round trip,
        # once per WebSocket).
        http_url = ("https" if secure else "http") + norm[len(scheme) :]
        with contextlib.suppress(Exception):
            jar = await tab.context.cookies(http_url)
            if jar:
                headers["cookie"] = "; ".join(f"{c['name']}={c['value']}" for c in jar)
        await self._wait_for_host(norm, host)
        async with self._sem:
            slot = await self._rate.acquire()
            self._ctx.check_cancelled()
            RateLimiter.mark_sent(slot)
            timeout = min(self._cfg.request_timeout_seconds,
                          max(0.1, self._ctx.budget.time_left))  # fmt: skip
            return await open_pinned_websocket(
                norm, host, port, ips, secure=secure, timeout=timeout, protocols=protocols,
                headers=headers, user_agent=self._user_agent,
                max_size=self._cfg.max_response_bytes,
            )  # fmt: skip

    async def _route(self, route: Route, request: Request) -> None:
        url = request.url
        rtype = request.resource_type
        if rtype in _CACHED_TYPES:
            # A static subresource fetched before in this execution: it passed the gate then
            # and the policy has not changed; answer it without the rest of the machinery.
            cached = self._subresources.get(url)
            if cached is not None and request.method == "GET":
                if rtype in self._cfg.block_resources:
                    await _quiet(route.abort("blockedbyclient"))
                else:
                    await _quiet(route.fulfill(status=cached.status, headers=cached.headers,
                                               body=cached.body))  # fmt: skip
                return
        navigation = request.is_navigation_request()
        try:
            self._check_url(url, navigation)
        except PolicyViolation as exc:
            await self._refuse_routed(route, url, exc, rtype, navigation)
            return
        if rtype in self._cfg.block_resources:
            await _quiet(route.abort("blockedbyclient"))
            return
        extra = False
        kind = "other"
        if navigation:
            kind = self._main_frame_navigation(request)
            if kind == "idle":
                await _quiet(route.abort("aborted"))
                return
            if kind == "extra":
                # The page navigates by itself (a script, a meta refresh): a new page of the
                # budget, reserved before it leaves, so max_pages stays exact.
                if not self._ctx.budget.try_reserve_page():
                    limit = refusal(f"refused {url!r}: max_pages={self._ctx.budget.max_pages} "
                                    "reached", url=url, rule="max_pages")  # fmt: skip
                    self._refused(url, limit, source="browser", resource_type=rtype)
                    await _quiet(route.abort("blockedbyclient"))
                    return
                extra = True
        from ._browser import forwardable_headers, fulfil_headers

        cacheable = request.method == "GET" and rtype in _CACHED_TYPES
        reply = self._replies.pop(normalise_url(url), None) if kind == "ours" else None
        try:
            headers = request.headers  # no round trip to the driver (cookies: see module doc)
            resp = reply or await self._browser_hop(
                url, request.method, forwardable_headers(headers), request.post_data_buffer,
                navigation=navigation, count=rtype in _COUNTED_TYPES,
            )  # fmt: skip
        except PolicyViolation as exc:
            await self._refuse_routed(route, url, exc, rtype, navigation)
            return
        except Exception as exc:
            if navigation:
                self._nav_outcome[normalise_url(url)] = exc
            await _quiet(route.abort("failed"))
            return
        if kind == "ours" and resp.url != url and request.method == "GET":
            # Our fetch was redirected. Answering the first URL with the final page would
            # leave the page at the wrong URL (its origin, location, relative fetches), and a
            # redirect answer would send Chromium to the network for the next hop. So: stop
            # here; _browser_fetch navigates the tab to the final URL, answered from _replies.
            self._replies[normalise_url(resp.url)] = resp
            self._nav_outcome[normalise_url(url)] = _Redirected(resp.url)
            await _quiet(route.abort("aborted"))
            return
        if navigation:
            self._nav_outcome[normalise_url(url)] = (resp.status, resp.headers)
        if extra:
            self._ctx.page_visited(resp.url, resp.status, fetched_with="browser")
        answer = fulfil_headers(resp.headers)
        if cacheable and resp.status == 200 and _storable(resp):
            self._subresources[url] = _Cached(resp.status, answer, resp.body)
        body = resp.body
        if navigation and resp.url != url:
            # A page's own navigation (a form post answered with 303...) that was redirected:
            # the document stays at the first URL, its relative links resolve to the final one.
            body = _with_base(body, resp.url)
        await _quiet(route.fulfill(status=resp.status, headers=answer, body=body))

    async def _refuse_routed(
        self, route: Route, url: str, exc: PolicyViolation, rtype: str, navigation: bool
    ) -> None:
        """A page's request the policy refused: recorded, remembered for ``fetch`` when it was
        the document, and never sent."""
        self._refused(url, exc, source="browser", resource_type=rtype)
        if navigation:
            self._nav_outcome[normalise_url(url)] = exc
        await _quiet(route.abort("blockedbyclient"))

    async def _browser_hop(
        self, url: str, method: str, headers: dict[str, str], body: bytes | None, *,
        navigation: bool, count: bool,
    ) -> _Response:  # fmt: skip
        # Chromium does not route the hops of a redirect it follows itself, so redirects are
        # followed here (each hop checked) and the final response is given to the page (or,
        # for our own fetch, kept for the tab's navigation to the final URL: see _route).
        headers = dict(headers)
        headers.setdefault("user-agent", self._user_agent)
        resp = await self._send_hops(
            url, navigation=navigation, robots=navigation, browser=True, method=method,
            headers=headers, content=body, count=count,
        )  # fmt: skip
        if resp.url != url:
            self._final_urls[url] = resp.url
        return resp

    async def _take_tab(self) -> Any:
        # Tabs are kept for the next fetch: opening one costs more than loading a small page.
        context = await self._browser_context()
        while self._idle_tabs:
            tab = self._idle_tabs.pop()
            if not tab.is_closed():
                return tab
        tab = await self._new_tab()
        self._own_tabs.add(tab)
        await self._block_by_extension(context, tab)
        return tab

    async def _new_tab(self) -> Tab:
        """A tab of this execution's context whose WebSockets are routed, before it loads."""
        tab = await (await self._browser_context()).new_page()
        await self._tab_ready(tab)
        return tab

    async def _goto(self, tab: Any, url: str, wait_until: Any) -> Any:
        """``tab.goto`` within the request timeout and what is left of the task's time."""
        left = min(self._cfg.request_timeout_seconds, self._ctx.budget.time_left)
        return await tab.goto(url, wait_until=wait_until, timeout=max(100.0, left * 1000))

    async def _block_by_extension(self, context: BrowserContext, tab: Any) -> None:
        # Blocked resource types would cost a full route each (driver, Request and Route
        # objects, then abort). A CDP session of the tab pauses only URLs with the obvious
        # extensions (*.png, *.woff2...) and fails them: one small event each, none for any
        # other request (Network.setBlockedURLs needs Network events for every request, ~5%
        # of text-page throughput). The route stays the authority for whatever these miss.
        patterns = [p for kind in self._cfg.block_resources for p in _BLOCK_PATTERNS.get(kind, ())]
        if not patterns:
            return
        with contextlib.suppress(Exception):
            cdp = await context.new_cdp_session(tab)

            def paused(event: dict[str, Any]) -> None:
                fail = {"requestId": event["requestId"], "errorReason": "BlockedByClient"}
                task = asyncio.ensure_future(_quiet(cdp.send("Fetch.failRequest", fail)))
                self._bg.add(task)
                task.add_done_callback(self._bg.discard)

            cdp.on("Fetch.requestPaused", paused)
            await cdp.send("Fetch.enable", {"patterns": [{"urlPattern": p} for p in patterns]})

    async def _give_back_tab(self, tab: Any, reusable: bool) -> None:
        self._tab_state.pop(tab, None)  # idle: the page may not navigate any more
        if (
            reusable
            and not tab.is_closed()
            and len(self._idle_tabs) < self._cfg.concurrent_requests
        ):
            self._idle_tabs.append(tab)
            return
        self._own_tabs.discard(tab)
        with contextlib.suppress(Exception):
            await tab.close()

    def _main_frame_navigation(self, request: Request) -> str:
        """``"ours"``, ``"extra"`` (a page's own navigation), ``"idle"`` or ``"other"``."""
        try:
            frame = request.frame
            if frame.parent_frame is not None:
                return "other"
            tab = frame.page
        except Exception:
            return "other"
        if tab not in self._own_tabs:
            return "other"  # a popup, or a tab someone else drives (open_page)
        state = self._tab_state.get(tab)
        if state == "expect":
            self._tab_state[tab] = "active"
            return "ours"
        return "extra" if state == "active" else "idle"

    async def _browser_fetch(self, url: str, sent: list[int], wait_until: Any = "load") -> Page:
        from playwright.async_api import Error as PlaywrightError

        start = time.perf_counter()
        tab = await self._take_tab()
        self._tab_state[tab] = "expect"
        sent[0] += 1  # the navigation may leave from now on; the page stays spent
        reusable = False
        try:
            status: int | None = None
            headers: dict[str, str] = {}
            target = url
            self._nav_outcome.pop(normalise_url(url), None)  # only this navigation's counts
            try:
                try:
                    resp = await self._goto(tab, url, wait_until)
                except PlaywrightError:
                    redirected = self._nav_outcome.get(normalise_url(url))
                    if not isinstance(redirected, _Redirected):
                        raise
                    # Redirected (every hop checked): load the final URL, answered from what
                    # the hops already fetched; still the same page of the budget.
                    target = redirected.url
                    if "#" in url and "#" not in target:
                        target += url[url.index("#") :]  # a redirect keeps the fragment
                    self._tab_state[tab] = "expect"
                    resp = await self._goto(tab, target, wait_until)
            except PlaywrightError as exc:
                self._replies.pop(normalise_url(target), None)
                outcome = self._nav_outcome.get(normalise_url(target))
                if isinstance(outcome, BaseException):
                    raise outcome from None  # the policy or the network stopped the document
                if outcome is None or isinstance(outcome, _Redirected):
                    raise FetchError(
                        f"{url}: browser navigation failed: {exc.message}",
                        url=url,
                        transient="Timeout" in type(exc).__name__,
                    ) from None
                # The document arrived; the page then navigated away (a form, a script) and
                # that navigation was refused or interrupted: keep what we have.
                self._ctx.emit("navigation_interrupted", url=url, error=exc.message[:300])
                status = outcome[0]
                headers = {k.lower(): v for k, v in outcome[1]}
            else:
                status = resp.status if resp is not None else 200
                # The headers we answered the document with: no round trip to the driver.
                known = self._nav_outcome.get(normalise_url(target))
                if isinstance(known, tuple):
                    headers = {k.lower(): v for k, v in known[1]}
                elif resp is not None:
                    headers = await resp.all_headers()
            html = await _content(tab)
            final = self._final_urls.get(tab.url, tab.url)
            reusable = True
        finally:
            await self._give_back_tab(tab, reusable)
        body = html.encode("utf-8")
        return Page(url=final, requested_url=url, status=status, headers=headers,
                    content_type=_mime(headers) or "text/html", encoding="utf-8", body=body,
                    text=html, fetched_with="browser",
                    elapsed_ms=(time.perf_counter() - start) * 1000)  # fmt: skip

    async def open_page(self) -> Any:
        """A new Playwright tab in this execution's browser context, for code that drives a page.

        Every request of the tab passes the same route as ``fetch`` (policy, DNS pinning,
        rate limit, robots.txt). Page budgeting of its navigations is the caller's: reserve with
        ``ctx.budget.try_reserve_page()``. Close the tab when done (``aclose`` also does).
        """
        return await self._new_tab()

    def _admit(self, url: str, action: str) -> None:
        """What every navigation the task asks for needs first: not cancelled, allowed by the
        policy (a refusal is recorded), and one page of the budget reserved."""
        self._ctx.check_cancelled()
        try:
            self.policy.check_url(url)
        except PolicyViolation as exc:
            self._refused(url, exc, source=action)
            raise
        if not self._ctx.budget.try_reserve_page():
            raise PageLimitExceeded(
                f"max_pages={self._ctx.budget.max_pages} reached; cannot {action} {url}"
            )

    async def screenshot(self, url: str, *, full_page: bool = False) -> bytes:
        """A PNG of ``url`` rendered in the browser (counts as one page)."""
        self._admit(url, "screenshot")
        with self._ctx.action("screenshot", url=url):
            tab = await self._new_tab()
            try:
                resp = await self._goto(tab, url, "load")
                png = await tab.screenshot(full_page=full_page, type="png")
            finally:
                with contextlib.suppress(Exception):
                    await tab.close()
        self._ctx.page_visited(url, resp.status if resp else None, fetched_with="browser")
        return png

    async def aclose(self) -> None:
        """Close the HTTP clients, the browser context and the extraction pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._bg):
            task.cancel()
        for server in list(self._websockets):
            with contextlib.suppress(Exception):
                await server.close()
        for client in (self._client, self._browser_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        if self._context is not None:
            with contextlib.suppress(Exception):
                await self._context.close()
            self._context = None


_HEAD = re.compile(rb"<head\b[^>]*>", re.I)


def _with_base(body: bytes, url: str) -> bytes:
    """Make relative links of a redirected document resolve against its final URL."""
    if b"<base" in body[:8192].lower():
        return body
    tag = b'<base href="' + url.replace('"', "%22").encode() + b'">'
    match = _HEAD.search(body[:8192])
    if match is None:
        return tag + body
    return body[: match.end()] + tag + body[match.end() :]


async def _content(tab: Any) -> str:
    """The tab's HTML; if a script or form is navigating it away, wait for that to settle."""
    from playwright.async_api import Error as PlaywrightError

    for _ in range(5):
        try:
            return str(await tab.content())
        except PlaywrightError as exc:
            if "navigating" not in exc.message:
                raise
            with contextlib.suppress(PlaywrightError):
                await tab.wait_for_load_state("load", timeout=2000)
    return str(await tab.content())


def _hrefs(html: str, url: str) -> list[str]:
    """Absolute http(s) link targets of a page, fast: what a breadth-first crawl needs.

    ``extract_links`` also collects anchor text and context, which only ``best_first`` uses.
    """
    import lxml.html
    from lxml.etree import ParserError

    if html.lstrip()[:5].lower() == "<?xml":
        html = html.split("?>", 1)[-1]
    try:
        tree = lxml.html.document_fromstring(html)
    except (ParserError, ValueError):
        return []
    base = url
    for node in tree.iterfind(".//base[@href]"):
        with contextlib.suppress(ValueError):
            base = urljoin(url, (node.get("href") or "").strip())
        break
    scheme, _, rest = base.partition("://")
    origin = f"{scheme}://{rest.split('/', 1)[0]}"
    out: list[str] = []
    for href in tree.xpath("//a/@href"):
        href = str(href).strip()
        if not href or href[0] == "#":
            continue
        if href[0] == "/" and href[:2] != "//":
            out.append(origin + href.split("#", 1)[0])  # the common case, without urljoin
            continue
        try:
            absolute = urljoin(base, href).split("#", 1)[0]
        except ValueError:
            continue
        if absolute.startswith(("http://", "https://")):
            out.append(absolute)
    return out


async def _quiet(awaitable: Any) -> None:
    # The page may be gone (closed tab, finished navigation): nothing left to answer.
    with contextlib.suppress(Exception):
        await awaitable


class _Crawl:
    def __init__(
        self,
        session: WebSession,
        start_urls: list[str],
        strategy: str,
        score: Callable[[Link], float] | None,
        max_pages: int | None,
        max_depth: int | None,
        same_host: bool,
        follow: Callable[[str], bool] | None,
    ) -> None:
        self.s = session
        self.strategy = strategy
        self.score = score
        self.limit = max_pages
        self.max_depth = max_depth
        self.same_host = same_host
        self.follow = follow
        self.heap: list[tuple[float, int, str, int]] = []
        self.seen: set[str] = set()
        self.raw_seen: set[str] = set()
        self.seq = 0
        self.taken = 0
        self.inflight = 0
        self.stop = False
        self.changed = asyncio.Event()
        self.out: asyncio.Queue[Page | None] = asyncio.Queue()
        self.hosts: set[str] = set()
        for url in start_urls:
            self._push(url, 0, None, start=True)

    def _push(self, url: str, depth: int, link: Link | None, start: bool = False) -> None:
        # Most links on a site are repeats: drop them before any parsing.
        if url in self.raw_seen:
            return
        self.raw_seen.add(url)
        policy = self.s.policy
        try:
            norm = policy.check_url(url)
        except PolicyViolation as exc:
            if start or not self.same_host:
                self.s._refused(url, exc, source="crawl")
            return
        host = policy.host_port(norm)[1]
        if start:
            self.hosts.add(host)
        elif self.same_host and host not in self.hosts:
            return
        if norm in self.seen:
            return
        if not start and self.follow is not None and not self.follow(norm):
            return
        self.seen.add(norm)
        if self.strategy == "best_first" and link is not None and self.score is not None:
            prio = -float(self.score(link))
        else:
            prio = float(depth)
        self.seq += 1
        heapq.heappush(self.heap, (prio, self.seq, norm, depth))

    async def _worker(self) -> None:
        s = self.s
        while not self.stop:
            if not self.heap:
                if self.inflight == 0:
                    self.stop = True
                    self.changed.set()
                    return
                self.changed.clear()
                await self.changed.wait()
                continue
            if self.limit is not None and self.taken >= self.limit:
                self.stop = True
                self.changed.set()
                return
            _, _, url, depth = heapq.heappop(self.heap)
            self.taken += 1
            self.inflight += 1
            try:
                page = await s.fetch(url)
            except PageLimitExceeded:
                self.stop = True
                self.taken -= 1
                self.inflight -= 1
                self.changed.set()
                return
            except (PolicyViolation, FetchError) as exc:
                self.taken -= 1  # nothing counted against this crawl's own limit
                s._ctx.emit("crawl_skipped", url=url, error=f"{type(exc).__name__}: {exc}")
                self.inflight -= 1
                self.changed.set()
                continue
            if (
                (self.max_depth is None or depth < self.max_depth)
                and page.text
                and page.content_type in ("text/html", "application/xhtml+xml")
            ):
                if self.strategy == "bfs":
                    for href in _hrefs(page.text, page.url):
                        self._push(href, depth + 1, None)
                else:
                    for link in extract_links(page.text, page.url):
                        self._push(link.url, depth + 1, link)
            self.inflight -= 1
            self.changed.set()
            await self.out.put(page)

    async def run(self) -> AsyncIterator[Page]:
        n = max(1, self.s._cfg.concurrent_requests)
        with self.s._ctx.action("crawl", strategy=self.strategy, max_pages=self.limit):
            workers = [asyncio.create_task(self._worker()) for _ in range(n)]
            done = asyncio.ensure_future(asyncio.gather(*workers))
            done.add_done_callback(lambda _f: self.out.put_nowait(None))
            try:
                while True:
                    page = await self.out.get()
                    if page is None:
                        break
                    yield page
                while not self.out.empty():
                    page = self.out.get_nowait()
                    if page is not None:
                        yield page
                await done  # re-raise a worker's unexpected error
            finally:
                self.stop = True
                self.changed.set()
                for w in workers:
                    w.cancel()
                with contextlib.suppress(BaseException):
                    await done
