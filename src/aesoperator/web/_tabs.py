"""The browser side of a session: one Chromium context per execution, its tabs, the route
that answers every request of a page through the gate, and the page's WebSockets.

Chromium has no network of its own (its proxy is a closed port): every HTTP(S) request of a
page is intercepted (``context.route``) and sent by the gate, hop by hop; WebSockets are
answered by Playwright and connected by the gate. Tabs are reused between fetches; a page's own
later navigations spend pages of the budget. See ``README.md`` (Browser mode) for the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import FetchError, PolicyViolation
from ._gate import Response, origin_of
from ._memory_guard import MemoryGuard, enforced
from ._page import Page, mime_of
from ._subresources import CACHED_TYPES, Cached, SubresourceCache, TabAnswers, storable
from .policy import normalise_url, refusal

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Request, Route, WebSocketRoute
    from playwright.async_api import Page as Tab

    from ._gate import Gate
    from ._host import WebHost

__all__ = ["BrowserTabs"]

# Requests that count against requests_per_second in browser mode.
_COUNTED_TYPES = frozenset({"document", "fetch", "xhr", "eventsource", "other"})
_BLOCK_PATTERNS = {
    "image": tuple(f"*.{x}*" for x in ("png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp")),
    "font": tuple(f"*.{x}*" for x in ("woff", "woff2", "ttf", "otf", "eot")),
    "media": tuple(f"*.{x}*" for x in ("mp4", "webm", "mp3", "ogg", "wav", "m4a", "mov")),
}


@dataclass(frozen=True)
class _Redirected:
    """Our fetch's navigation was redirected to ``url`` (every hop checked)."""

    url: str


# What became of a document navigation: its status and headers, the error, or a redirect.
_NavOutcome = tuple[int, list[tuple[str, str]]] | BaseException | _Redirected


class BrowserTabs:
    """The execution's browser context and tabs, created on first use; every request of
    theirs passes ``gate``."""

    def __init__(self, owner: WebHost, gate: Gate) -> None:
        self._owner = owner
        self._cfg = owner.config
        self._gate = gate
        self._context: BrowserContext | None = None
        self._context_lock = asyncio.Lock()
        self._bg: set[asyncio.Future[Any]] = set()
        self._final_urls: dict[str, str] = {}
        self._idle_tabs: list[Any] = []
        # Our fetch tabs: "expect" (our navigation is on its way) or "active" (loaded; any
        # further main-frame navigation is the page's own and costs a page); absent = idle.
        self._own_tabs: set[Any] = set()
        self._tab_state: dict[Any, str] = {}
        # Static subresources (CSS, scripts, fonts, images) already fetched in this execution.
        self._subresources = SubresourceCache()
        block = [p for kind in self._cfg.block_resources for p in _BLOCK_PATTERNS.get(kind, ())]
        self._answers = TabAnswers(self._subresources, block, self._allow_cached, self._spawn)
        # What became of each document navigation the route saw: a status, the error, or the
        # final URL of a redirect followed for one of our fetches.
        self._nav_outcome: dict[str, _NavOutcome] = {}
        # The final response of such a redirect, by final URL, kept for the tab's second
        # navigation (to that URL), which the route answers from here without sending again.
        self._replies: dict[str, Response] = {}
        # Per tab: its WebSockets are routed to us (done before the tab loads anything).
        self._ws_routed: dict[Any, asyncio.Future[None]] = {}
        self._websockets: set[Any] = set()  # open server connections relayed to a page
        # Where max_memory_mb is enforced, page loads are admitted by memory (_memory_guard).
        self._guard = None if not enforced() else MemoryGuard(
            self._cfg.max_memory_mb, self._cfg.concurrent_requests, owner.emit,
            self._close_idle_tabs, open_tabs=lambda: len(self._own_tabs))  # fmt: skip

    @property
    def started(self) -> bool:
        return self._context is not None

    async def cookies(self) -> list[dict[str, Any]]:
        """The context's cookies, as Playwright gives them."""
        if self._context is None:
            return []
        return [dict(c) for c in await self._context.cookies()]

    async def add_cookies(self, cookies: list[dict[str, Any]]) -> None:
        """Cookies in the DevTools protocol's shape (the reading browser's) into this context."""
        keep = ("name", "value", "domain", "path", "expires", "httpOnly", "secure", "sameSite")
        out = []
        for c in cookies:
            item = {k: c[k] for k in keep if c.get(k) is not None}
            if item.get("sameSite") not in ("Strict", "Lax", "None"):
                item.pop("sameSite", None)
            out.append(item)
        if out:
            await (await self._browser_context()).add_cookies(out)  # type: ignore[arg-type]

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
            self._owner.emit("popup_closed", url=page.url)
            await page.close()

    def _on_websocket(self, ws: Any) -> None:
        # A WebSocket that bypassed _route_websocket (one from a worker, or opened before
        # the tab was routed) goes to the dead proxy and fails; record what was tried.
        try:
            self._gate.policy.check_url(ws.url, navigation=False)
        except PolicyViolation as exc:
            self._gate.refused(ws.url, exc, source="browser", resource_type="websocket")
        else:
            self._owner.emit("websocket_unsupported", url=ws.url,
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
            self._gate.refused(url, exc, source="browser", resource_type="websocket")
            await _quiet(ws.close(code=1008, reason=f"refused by policy ({exc.rule})"))
            return
        except Exception as exc:
            self._owner.emit(
                "websocket_failed", url=url, error=f"{type(exc).__name__}: {exc}"[:300]
            )
            await _quiet(ws.close(code=1011, reason="connection failed"))
            return
        self._websockets.add(server)
        task = asyncio.ensure_future(
            relay_websocket(ws, server, lambda: self._websockets.discard(server))
        )
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _open_websocket(self, url: str, protocols: list[str], tab: Any) -> Any:
        async def page_headers(http_url: str) -> dict[str, str]:
            # What Chromium would send: the page's origin and its cookies for the host.
            headers: dict[str, str] = {}
            with contextlib.suppress(Exception):
                page_url = tab.url
                if page_url.startswith(("http://", "https://")):
                    headers["origin"] = origin_of(page_url)
            # Chromium's jar has the servers' cookies and the ones scripts wrote (one round
            # trip, once per WebSocket).
            with contextlib.suppress(Exception):
                jar = await tab.context.cookies(http_url)
                if jar:
                    headers["cookie"] = "; ".join(f"{c['name']}={c['value']}" for c in jar)
            return headers

        return await self._gate.open_websocket(url, protocols, page_headers)

    async def _route(self, route: Route, request: Request) -> None:
        url = request.url
        rtype = request.resource_type
        navigation = request.is_navigation_request()
        try:
            self._gate.check_url(url, navigation)  # a cached one too: the policy decides
        except PolicyViolation as exc:
            await self._refuse_routed(route, url, exc, rtype, navigation)
            return
        if rtype in self._cfg.block_resources:
            await _quiet(route.abort("blockedbyclient"))
            return
        if rtype in CACHED_TYPES and request.method == "GET":
            # Fetched before in this execution (through the gate): answered from memory.
            cached = self._subresources.get(url)
            if cached is not None:
                await _quiet(route.fulfill(status=cached.status, headers=cached.headers,
                                           body=cached.body))  # fmt: skip
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
                if not self._owner.budget.try_reserve_page():
                    limit = refusal(f"refused {url!r}: max_pages={self._owner.budget.max_pages} "
                                    "reached", url=url, rule="max_pages")  # fmt: skip
                    self._gate.refused(url, limit, source="browser", resource_type=rtype)
                    await _quiet(route.abort("blockedbyclient"))
                    return
                extra = True
        from ._browser import forwardable_headers, fulfil_headers

        cacheable = request.method == "GET" and rtype in CACHED_TYPES
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
            self._owner.page_visited(resp.url, resp.status, fetched_with="browser")
        answer = fulfil_headers(resp.headers)
        if cacheable and storable(resp.status, resp.headers, resp.body):
            self._subresources.put(url, Cached(resp.status, answer, resp.body))
            self._answers.stored(url, rtype)
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
        self._gate.refused(url, exc, source="browser", resource_type=rtype)
        if navigation:
            self._nav_outcome[normalise_url(url)] = exc
        await _quiet(route.abort("blockedbyclient"))

    async def _browser_hop(
        self, url: str, method: str, headers: dict[str, str], body: bytes | None, *,
        navigation: bool, count: bool,
    ) -> Response:  # fmt: skip
        # Chromium does not route the hops of a redirect it follows itself, so redirects are
        # followed here (each hop checked) and the final response is given to the page (or,
        # for our own fetch, kept for the tab's navigation to the final URL: see _route).
        headers = dict(headers)
        headers.setdefault("user-agent", self._gate.user_agent)
        resp = await self._gate.send(
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
        tab = await self.new_tab()
        self._own_tabs.add(tab)
        await self._block_by_extension(context, tab)
        return tab

    async def new_tab(self) -> Tab:
        """A tab of this execution's context whose WebSockets are routed, before it loads."""
        tab = await (await self._browser_context()).new_page()
        await self._tab_ready(tab)
        return tab

    async def goto(self, tab: Any, url: str, wait_until: Any) -> Any:
        """``tab.goto`` within the request timeout and what is left of the task's time."""
        left = min(self._cfg.request_timeout_seconds, self._owner.budget.time_left)
        return await tab.goto(url, wait_until=wait_until, timeout=max(100.0, left * 1000))

    async def _block_by_extension(self, context: BrowserContext, tab: Any) -> None:
        # Blocked resource types would cost a full route each (driver, Request and Route
        # objects, then abort), and so would a stylesheet answered from the cache. A CDP
        # session of the tab pauses only URLs with the obvious blocked extensions (*.png,
        # *.woff2...) and the cached URLs, and answers those itself (see TabAnswers): one small
        # event each, none for any other request. The route stays the authority for the rest.
        with contextlib.suppress(Exception):
            await self._answers.attach(await context.new_cdp_session(tab))

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(_quiet(awaitable))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _allow_cached(self, url: str, rtype: str) -> bool:
        try:
            self._gate.check_url(url, False)
        except PolicyViolation as exc:
            self._gate.refused(url, exc, source="browser", resource_type=rtype)
            return False
        return rtype not in self._cfg.block_resources

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

    async def _close_idle_tabs(self) -> int:
        """Close the idle tabs: each holds the last page it showed in a renderer."""
        tabs, self._idle_tabs = self._idle_tabs, []
        for tab in tabs:
            self._own_tabs.discard(tab)
            with contextlib.suppress(Exception):
                await tab.close()
        return len(tabs)

    async def fetch(self, url: str, sent: list[int], wait_until: Any = "load") -> Page:
        if self._guard is None:
            return await self._fetch(url, sent, wait_until)
        await self._browser_context()  # started outside: the browser is not a page's growth
        return await self._guard.load(url, lambda: self._fetch(url, sent, wait_until))

    async def _fetch(self, url: str, sent: list[int], wait_until: Any) -> Page:
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
                    resp = await self.goto(tab, url, wait_until)
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
                    resp = await self.goto(tab, target, wait_until)
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
                self._owner.emit("navigation_interrupted", url=url, error=exc.message[:300])
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
                    content_type=mime_of(headers) or "text/html", encoding="utf-8", body=body,
                    text=html, fetched_with="browser",
                    elapsed_ms=(time.perf_counter() - start) * 1000)  # fmt: skip

    def stop(self) -> None:
        """Cancel background work (popup closing, CDP answers, WebSocket relays)."""
        for task in list(self._bg):
            task.cancel()

    async def aclose(self) -> None:
        """Close the relayed WebSocket connections and the browser context. Idempotent."""
        self.stop()
        if self._guard is not None:
            await self._guard.aclose()
        for server in list(self._websockets):
            with contextlib.suppress(Exception):
                await server.close()
        self._websockets.clear()
        self._subresources.clear()
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


async def _quiet(awaitable: Any) -> None:
    # The page may be gone (closed tab, finished navigation): nothing left to answer.
    with contextlib.suppress(Exception):
        await awaitable
