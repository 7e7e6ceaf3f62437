"""The interactive side of browser mode: the Playwright context of ``open_page`` and
``screenshot``, the route that answers every request of its tabs through the gate, and their
WebSockets. (``fetch`` reads pages on the reading browser, ``_reader``.)

Chromium has no network of its own (its proxy is a closed port): every HTTP(S) request of a
tab is intercepted (``context.route``) and sent by the gate, redirects followed there hop by
hop; WebSockets are answered by Playwright and connected by the gate. Cookies: Chromium's jar
holds the servers' cookies and those scripts write, and the ``Cookie`` header it puts on an
intercepted request is passed on (not across origins on a redirect the gate follows).
Navigating such a tab is its driver's business, budget included
(``ctx.budget.try_reserve_page()``). See ``README.md`` (Browser mode) for the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from typing import TYPE_CHECKING, Any

from ..errors import PolicyViolation
from ._gate import origin_of
from ._subresources import CACHED_TYPES, Cached, SubresourceCache, storable

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Request, Route, WebSocketRoute
    from playwright.async_api import Page as Tab

    from ._gate import Gate
    from ._host import WebHost

__all__ = ["BrowserTabs"]


class BrowserTabs:
    """The execution's Playwright context and its tabs, created on first use; every request
    of theirs passes ``gate``."""

    def __init__(self, owner: WebHost, gate: Gate) -> None:
        self._owner = owner
        self._cfg = owner.config
        self._gate = gate
        self._context: BrowserContext | None = None
        self._context_lock = asyncio.Lock()
        self._bg: set[asyncio.Future[Any]] = set()
        # Static subresources (CSS, scripts, fonts, images) already fetched in this execution.
        self._subresources = SubresourceCache()
        # Per tab: its WebSockets are routed to us (done before the tab loads anything).
        self._ws_routed: dict[Any, asyncio.Future[None]] = {}
        self._websockets: set[Any] = set()  # open server connections relayed to a page

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
            await self._refuse_routed(route, url, exc, rtype)
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
        from ._browser import COUNTED_TYPES, forwardable_headers, fulfil_headers

        headers = forwardable_headers(request.headers)  # cookies: see the module doc
        headers.setdefault("user-agent", self._gate.user_agent)
        try:
            # Chromium does not route the hops of a redirect it follows itself, so redirects
            # are followed here, each hop checked, and the final response given to the page.
            resp = await self._gate.send(
                url, navigation=navigation, robots=navigation, browser=True,
                method=request.method, headers=headers, content=request.post_data_buffer,
                count=rtype in COUNTED_TYPES,
            )  # fmt: skip
        except PolicyViolation as exc:
            await self._refuse_routed(route, url, exc, rtype)
            return
        except Exception:
            await _quiet(route.abort("failed"))
            return
        answer = fulfil_headers(resp.headers)
        if (
            request.method == "GET"
            and rtype in CACHED_TYPES
            and storable(resp.status, resp.headers, resp.body)
        ):
            self._subresources.put(url, Cached(resp.status, answer, resp.body))
        body = resp.body
        if navigation and resp.url != url:
            # A redirected navigation: the document stays at the first URL (Chromium asked for
            # that one), its relative links resolve to the final one.
            body = _with_base(body, resp.url)
        await _quiet(route.fulfill(status=resp.status, headers=answer, body=body))

    async def _refuse_routed(
        self, route: Route, url: str, exc: PolicyViolation, rtype: str
    ) -> None:
        """A tab's request the policy refused: recorded and never sent."""
        self._gate.refused(url, exc, source="browser", resource_type=rtype)
        await _quiet(route.abort("blockedbyclient"))

    async def new_tab(self) -> Tab:
        """A tab of this execution's context whose WebSockets are routed, before it loads."""
        tab = await (await self._browser_context()).new_page()
        await self._tab_ready(tab)
        return tab

    async def goto(self, tab: Any, url: str, wait_until: Any) -> Any:
        """``tab.goto`` within the request timeout and what is left of the task's time."""
        left = min(self._cfg.request_timeout_seconds, self._owner.budget.time_left)
        return await tab.goto(url, wait_until=wait_until, timeout=max(100.0, left * 1000))

    def stop(self) -> None:
        """Cancel background work (popup closing, WebSocket relays)."""
        for task in list(self._bg):
            task.cancel()

    async def aclose(self) -> None:
        """Close the relayed WebSocket connections and the browser context. Idempotent."""
        self.stop()
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


async def _quiet(awaitable: Any) -> None:
    # The page may be gone (closed tab, finished navigation): nothing left to answer.
    with contextlib.suppress(Exception):
        await awaitable
