"""The reading path of browser mode: ``fetch(mode="browser")`` on a Chromium we drive ourselves.

Why not Playwright here: on real documentation pages, Playwright's route (a Request and a
Route object per request, its driver in between, Chromium's cache off) cost more than the
gate's own work, and a reading loop on Playwright could not reach 1.5x a raw Playwright loop
(issue 15). This path speaks the DevTools protocol to its own Chromium over a pipe
(``_cdp``): one browser per worker (event loop), one browser context per execution, its tabs
reused. ``open_page`` and ``screenshot`` stay on Playwright (``_tabs``): they hand out or
drive a Playwright page.

The gate is the same, and Chromium still has no network of its own (the dead proxy, no name
resolution): every request of a tab, of its frames (cross-site ones are their own targets,
auto-attached and paused before they run) and of its workers (their requests pause on the
page's session) is paused in the Fetch domain and answered from Python: policy → blocked
resource types → the execution's subresource cache → the gate, one hop at a time (a redirect
is answered as a redirect; Chromium follows it and the next hop is paused and checked again,
so the page lands at the final URL with Chromium's own cookie rules per hop). Popups are
paused at birth, their requests pass the same checks, and they are closed. WebSockets are
answered by a script (``_reader_ws``) and connected by the gate. Downloads are denied and
dialogs dismissed. Cookies live in the context's jar (paused requests carry them; a
``Set-Cookie`` we answer with is kept) and are copied to and from the Playwright context of
the same execution when both exist, so one execution has one set of cookies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import FetchError, PolicyViolation, UserError
from ._cdp import CDPError, Chromium, launch
from ._memory_guard import MemoryGuard, enforced
from ._page import Page, mime_of
from ._reader_ws import BINDING, SHIM, PageSockets
from ._subresources import CACHED_TYPES, Cached, SubresourceCache, storable
from .policy import refusal

if TYPE_CHECKING:
    from ._gate import Gate
    from ._host import WebHost

__all__ = ["ReadingTabs", "shutdown_reader"]

# New targets (tabs, popups, frames, workers) wait for us before they run anything.
_PAUSED_CHILDREN = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
# The document's HTML as Playwright's ``page.content()`` gives it (doctype, then the root
# element), with the URL it is at, read together.
_CONTENT = """(() => {
  let html = '';
  if (document.doctype) html = new XMLSerializer().serializeToString(document.doctype);
  if (document.documentElement) html += document.documentElement.outerHTML;
  return [location.href, html];
})()"""
# networkidle: after load, no request of the tab in flight for _IDLE_S (Chromium's own
# networkIdle is its main frame's: a cross-site frame's requests would not count).
_LIFECYCLE = {"load": "load", "domcontentloaded": "DOMContentLoaded", "networkidle": "load"}
_IDLE_S = 0.5


# -- the browser of this worker ------------------------------------------------------------------
class _Browser:
    """The reading Chromium of one event loop and the executions' contexts in it."""

    def __init__(self, cdp: Chromium) -> None:
        self.cdp = cdp
        self.contexts: dict[str, ReadingTabs] = {}
        cdp.on("", self._event)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Target.attachedToTarget":
            info = params.get("targetInfo") or {}
            owner = self.contexts.get(str(info.get("browserContextId", "")))
            session = str(params.get("sessionId", ""))
            if owner is not None and info.get("type") == "page":
                owner._attached(session, info)
                return
            # Not a page of an execution (the startup tab, Chromium's own UI targets): let
            # it run and leave it; none of them is ours to load anything. (One attached by a
            # command of ours is not waiting: left alone.)
            if params.get("waitingForDebugger"):
                self.cdp.post("Runtime.runIfWaitingForDebugger", {}, session)
                self.cdp.post("Target.detachFromTarget", {"sessionId": session})
        elif method == "Target.detachedFromTarget":
            session = str(params.get("sessionId", ""))
            for owner in list(self.contexts.values()):
                owner._detached(session)


_browsers: dict[asyncio.AbstractEventLoop, _Browser] = {}
_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def _executable() -> str:
    from ._browser import INSTALL_HINT, chromium_path

    path = chromium_path()
    if path is not None:
        return path
    try:  # Playwright's downloaded browser (``playwright install chromium``)
        from playwright.async_api import async_playwright

        pw = await async_playwright().start()
        try:
            path = pw.chromium.executable_path
        finally:
            await pw.stop()
    except Exception:
        path = None
    if not path or not os.path.exists(path):
        raise UserError(INSTALL_HINT)
    return path


async def _get_browser() -> _Browser:
    loop = asyncio.get_running_loop()
    for other in [lp for lp in _browsers if lp.is_closed()]:
        _locks.pop(other, None)
        gone = _browsers.pop(other, None)
        if gone is not None:  # its loop closed without shutdown_reader: end it here
            gone.cdp.kill()
    async with _locks.setdefault(loop, asyncio.Lock()):
        browser = _browsers.get(loop)
        if browser is not None and not browser.cdp.closed:
            return browser
        if browser is not None:  # it died (crashed, killed): reap it, start another
            browser.cdp.kill()
        from ._browser import _small_dev_shm, offline_args

        args = [*offline_args(),
                # Popups are let open so that their requests meet the policy (and are closed).
                "--disable-popup-blocking", "--mute-audio", "--hide-scrollbars",
                "--disable-extensions", "--disable-default-apps",
                "--disable-breakpad", "--password-store=basic", "--use-mock-keychain",
                # Playwright's launch gives its browser these; ours needs them said. The one
                # that counts: a page left is not kept in the back/forward cache (~25 % more
                # pages/s on PostgreSQL's manual); also no throttled background tabs, no
                # field trials, no background services.
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows", "--disable-back-forward-cache",
                "--disable-ipc-flooding-protection", "--disable-hang-monitor",
                "--disable-field-trial-config", "--disable-client-side-phishing-detection",
                "--disable-component-extensions-with-background-pages",
                "--metrics-recording-only", "--no-service-autorun", "--no-default-browser-check",
                # Nobody looks at these pages (screenshots are Playwright's browser's): the
                # compositor on the renderer's main thread saves a thread hop per frame.
                "--disable-threaded-compositing"]  # fmt: skip
        if _small_dev_shm():
            args.append("--disable-dev-shm-usage")
        cdp = await launch(await _executable(), args)
        browser = _Browser(cdp)
        # Every new target waits for us before it runs: a tab, a popup, a frame.
        await cdp.send("Target.setAutoAttach", _PAUSED_CHILDREN)
        _browsers[loop] = browser
        return browser


async def shutdown_reader() -> None:
    """Close this event loop's reading browser (safe when none is running)."""
    browser = _browsers.pop(asyncio.get_running_loop(), None)
    if browser is not None:
        await browser.cdp.close()


# -- tabs ----------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Tab:
    session: str
    target: str  # also its main frame's id
    state: str = "idle"  # "expect" (our navigation is on its way), "active" (loaded), "idle"
    doc_kind: str = "other"  # what the main frame's current navigation chain is
    # Our document's answer (status, headers; the last hop's) or what stopped it.
    outcome: tuple[int, list[tuple[str, str]]] | BaseException | None = None
    loaders: dict[str, set[str]] = field(default_factory=dict)  # loaderId -> lifecycle events
    seen: set[str] = field(default_factory=set)  # loaders seen since our navigation began
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = "about:blank"
    inflight: int = 0  # requests of the tab (its frames, its workers) paused, not yet answered
    active_at: float = 0.0  # when the last one was answered
    closed: bool = False
    popup: bool = False


class ReadingTabs:
    """The execution's reading context: its tabs, and the answers to their every request."""

    def __init__(self, owner: WebHost, gate: Gate) -> None:
        self._owner = owner
        self._cfg = owner.config
        self._gate = gate
        # Static subresources (CSS, scripts, fonts, images) already fetched in this execution.
        self._subresources = SubresourceCache()
        self._browser: _Browser | None = None
        self._context_id: str | None = None
        self._lock = asyncio.Lock()
        self._tabs: dict[str, _Tab] = {}  # session -> tab (frames' sessions map to their tab)
        self._born: dict[str, asyncio.Future[_Tab]] = {}  # targetId -> its tab, once attached
        self._idle: list[_Tab] = []
        self._own = 0  # our tabs, open
        self._bg: set[asyncio.Future[Any]] = set()
        self._sockets = PageSockets(gate, owner.emit, self._post, self._send, self._spawn)
        self.closed = False
        self._guard = None if not enforced() else MemoryGuard(
            self._cfg.max_memory_mb, self._cfg.concurrent_requests, owner.emit,
            self._close_idle_tabs, open_tabs=lambda: self._own)  # fmt: skip

    @property
    def started(self) -> bool:
        return self._context_id is not None

    # -- context and cookies --------------------------------------------------------------------
    async def _context(self) -> tuple[_Browser, str]:
        async with self._lock:
            if self.closed:
                raise UserError("this web session is closed")
            if self._browser is None or self._context_id is None or self._browser.cdp.closed:
                browser = await _get_browser()
                made = await browser.cdp.send(
                    "Target.createBrowserContext", {"disposeOnDetach": True}
                )
                context_id = str(made["browserContextId"])
                browser.contexts[context_id] = self
                self._browser, self._context_id = browser, context_id
                self._tabs.clear()
                self._idle.clear()
                self._own = 0
                browser.cdp.post("Browser.setDownloadBehavior",
                                 {"behavior": "deny", "browserContextId": context_id})  # fmt: skip
            return self._browser, self._context_id

    async def cookies(self) -> list[dict[str, Any]]:
        """The context's cookies (CDP ``Network.Cookie`` objects); none before it exists."""
        if self._browser is None or self._context_id is None or self._browser.cdp.closed:
            return []
        got = await self._browser.cdp.send("Storage.getCookies",
                                           {"browserContextId": self._context_id})  # fmt: skip
        return list(got.get("cookies") or [])

    async def add_cookies(self, cookies: list[dict[str, Any]]) -> None:
        if not cookies:
            return
        browser, context_id = await self._context()
        keep = ("name", "value", "domain", "path", "secure", "httpOnly", "sameSite", "expires")
        params = [{k: c[k] for k in keep if k in c and c[k] is not None} for c in cookies]
        for p in params:
            if p.get("expires", -1) in (-1, None):
                p.pop("expires", None)  # a session cookie
        await browser.cdp.send("Storage.setCookies",
                               {"cookies": params, "browserContextId": context_id})  # fmt: skip

    # -- targets --------------------------------------------------------------------------------
    def _attached(self, session: str, info: dict[str, Any]) -> None:
        """A page target of our context was born, paused: a tab we made, or a popup."""
        target = str(info.get("targetId", ""))
        popup = bool(info.get("openerId"))
        tab = _Tab(session, target, popup=popup)
        self._tabs[session] = tab
        assert self._browser is not None
        self._browser.cdp.on(session, lambda m, p: self._tab_event(tab, session, m, p))
        with contextlib.suppress(CDPError):
            self._set_up(session, frame=False)
        if popup:
            # Its first navigation is paused and checked (a refusal is recorded), never sent;
            # the popup is closed.
            self._owner.emit("popup_closed", url=str(info.get("url") or ""))
            self._spawn(self._close_later(tab))
        else:
            # Ours (its createTarget answer may come after this event): the creator takes it.
            fut = self._born.setdefault(target, asyncio.get_running_loop().create_future())
            if not fut.done():
                fut.set_result(tab)

    async def _close_later(self, tab: _Tab) -> None:
        await asyncio.sleep(0.5)
        await self._close_tab(tab)

    def _set_up(self, session: str, *, frame: bool) -> None:
        """Before the target runs anything: every request paused for us, the events we need,
        the WebSocket script; then it may run. (Commands on the pipe keep their order, so a
        navigation sent after this finds it all in place.)"""
        assert self._browser is not None
        post = self._browser.cdp.post
        post("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session)
        post("Page.enable", {}, session)
        if not frame:
            post("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
            cfg = self._cfg
            post("Emulation.setDeviceMetricsOverride",
                 {"width": cfg.viewport_width, "height": cfg.viewport_height,
                  "deviceScaleFactor": 1, "mobile": False}, session)  # fmt: skip
            if cfg.user_agent:
                post("Emulation.setUserAgentOverride", {"userAgent": cfg.user_agent}, session)
        post("Runtime.enable", {}, session)  # bindings reach a page only with it on
        post("Runtime.addBinding", {"name": BINDING}, session)
        post("Page.addScriptToEvaluateOnNewDocument", {"source": SHIM, "runImmediately": True},
             session)  # fmt: skip
        post("Target.setAutoAttach", _PAUSED_CHILDREN, session)
        post("Runtime.runIfWaitingForDebugger", {}, session)

    def _child(self, tab: _Tab, params: dict[str, Any]) -> None:
        """A frame or worker of ``tab`` was born, paused."""
        assert self._browser is not None
        cdp = self._browser.cdp
        session = str(params.get("sessionId", ""))
        kind = (params.get("targetInfo") or {}).get("type")
        if kind == "iframe":
            # A cross-site frame runs in its own process: its requests pause on its session.
            self._tabs[session] = tab
            cdp.on(session, lambda m, p: self._tab_event(tab, session, m, p))
            with contextlib.suppress(CDPError):
                self._set_up(session, frame=True)
        else:
            # Workers: their requests pause on the page's session (Fetch is not theirs).
            cdp.post("Runtime.runIfWaitingForDebugger", {}, session)

    def _detached(self, session: str) -> None:
        tab = self._tabs.pop(session, None)
        if self._browser is not None:
            self._browser.cdp.off(session)
        if tab is not None and tab.session == session:
            tab.closed = True
            tab.changed.set()

    def _tab_event(self, tab: _Tab, session: str, method: str, params: dict[str, Any]) -> None:
        if method == "Fetch.requestPaused":
            self._paused(tab, session, params)
        elif method == "Page.lifecycleEvent":
            if params.get("frameId") == tab.target:
                name, loader = str(params.get("name")), str(params.get("loaderId"))
                if name == "init":
                    tab.loaders = {loader: set()}
                tab.loaders.setdefault(loader, set()).add(name)
                tab.seen.add(loader)
                tab.changed.set()
        elif method == "Page.frameNavigated":
            frame = params.get("frame") or {}
            if frame.get("id") == tab.target:
                tab.url = str(frame.get("url", ""))
        elif method == "Runtime.bindingCalled":
            if params.get("name") == BINDING:
                self._sockets.called(tab, tab.url, tab.session, session, params)
        elif method == "Page.javascriptDialogOpening":
            # Nobody reads this page's dialogs: dismissed (a beforeunload one lets us leave).
            accept = params.get("type") == "beforeunload"
            self._post("Page.handleJavaScriptDialog", {"accept": accept}, session)
        elif method == "Target.attachedToTarget":
            self._child(tab, params)
        elif method == "Target.detachedFromTarget":
            self._detached(str(params.get("sessionId", "")))
        elif method == "Inspector.targetCrashed":
            tab.closed = True
            tab.changed.set()

    # -- every request ----------------------------------------------------------------------------
    def _paused(self, tab: _Tab, session: str, params: dict[str, Any]) -> None:
        request_id = params["requestId"]
        request = params.get("request") or {}
        tab.inflight += 1  # until answered: what networkidle waits for, frames and workers too
        url = str(request.get("url", ""))
        rtype = str(params.get("resourceType", "Other")).lower()
        navigation = rtype == "document"
        main = navigation and params.get("frameId") == tab.target and session == tab.session
        try:
            self._gate.check_url(url, navigation)  # a cached one too: the policy decides
        except PolicyViolation as exc:
            self._refuse(tab, session, request_id, url, exc, rtype, main)
            return
        if (
            tab.popup
            or rtype in self._cfg.block_resources
            or (rtype == "other" and url.endswith("/favicon.ico"))
        ):
            # A popup loads nothing (it is being closed); blocked types; Chromium's own favicon
            # request after each page (nobody asked for it).
            self._fail(tab, session, request_id, "BlockedByClient")
            return
        method = str(request.get("method", "GET"))
        if rtype in CACHED_TYPES and method == "GET":
            cached = self._subresources.get(url)
            if cached is not None:
                self._fulfil(
                    tab, session, request_id, cached.status, cached.cdp_headers, cached.b64
                )
                return
        extra = False
        if main:
            if params.get("redirectedRequestId"):
                kind = tab.doc_kind  # the next hop of the same navigation: the same page
            else:
                kind = {"expect": "ours", "active": "extra"}.get(tab.state, "idle")
                tab.doc_kind = kind
                if kind == "ours":
                    tab.state = "active"
                elif kind == "idle":
                    self._fail(tab, session, request_id, "Aborted")
                    return
                elif kind == "extra" and not self._owner.budget.try_reserve_page():
                    # The page navigates by itself (a script, a meta refresh, a form): a new
                    # page of the budget, reserved before it leaves, so max_pages stays exact.
                    limit = refusal(
                        f"refused {url!r}: max_pages={self._owner.budget.max_pages} reached",
                        url=url, rule="max_pages",
                    )  # fmt: skip
                    self._refuse(tab, session, request_id, url, limit, rtype, False)
                    return
            extra = tab.doc_kind == "extra"
        self._spawn(self._answer(tab, session, request_id, request, url, method, rtype,
                                 navigation, main, extra))  # fmt: skip

    async def _answer(
        self, tab: _Tab, session: str, request_id: str, request: dict[str, Any], url: str,
        method: str, rtype: str, navigation: bool, main: bool, extra: bool,
    ) -> None:  # fmt: skip
        from ._browser import COUNTED_TYPES, forwardable_headers, fulfil_headers

        body: bytes | None = None
        entries = request.get("postDataEntries")
        if entries:
            body = b"".join(base64.b64decode(e.get("bytes", "")) for e in entries)
        elif request.get("postData") is not None:
            body = str(request["postData"]).encode()
        headers = forwardable_headers({str(k): str(v) for k, v in
                                       (request.get("headers") or {}).items()})  # fmt: skip
        headers.setdefault("user-agent", self._gate.user_agent)
        ours = main and tab.doc_kind == "ours"
        try:
            resp = await self._gate.send(
                url, navigation=navigation, robots=navigation, browser=True, method=method,
                headers=headers, content=body, count=rtype in COUNTED_TYPES, follow=False,
            )  # fmt: skip
        except PolicyViolation as exc:
            self._refuse(tab, session, request_id, url, exc, rtype, main)
            return
        except Exception as exc:
            if ours:
                tab.outcome = exc
            self._fail(tab, session, request_id, "Failed")
            return
        if ours:
            tab.outcome = (resp.status, resp.headers)
        if extra and resp.location is None:
            self._owner.page_visited(resp.url, resp.status, fetched_with="browser")
        answer = fulfil_headers(resp.headers)
        cacheable = method == "GET" and rtype in CACHED_TYPES
        if cacheable and storable(resp.status, resp.headers, resp.body):
            item = Cached(resp.status, answer, resp.body)
            self._subresources.put(url, item)
            cdp_headers, b64 = item.cdp_headers, item.b64
        else:
            cdp_headers = [{"name": k, "value": v} for k, vs in answer.items()
                           for v in vs.split("\n")]  # fmt: skip
            b64 = base64.b64encode(resp.body).decode("ascii")
        self._fulfil(tab, session, request_id, resp.status, cdp_headers, b64)

    def _fulfil(
        self, tab: _Tab, session: str, request_id: str, status: int,
        headers: list[dict[str, str]], b64: str,
    ) -> None:  # fmt: skip
        self._answered(tab)
        answer = {"requestId": request_id, "responseCode": status, "responseHeaders": headers,
                  "body": b64}  # fmt: skip
        self._post("Fetch.fulfillRequest", answer, session)

    def _refuse(
        self, tab: _Tab, session: str, request_id: str, url: str, exc: PolicyViolation,
        rtype: str, main: bool,
    ) -> None:  # fmt: skip
        """A request the policy refused: recorded, remembered when it was our document, and
        never sent."""
        self._gate.refused(url, exc, source="browser", resource_type=rtype)
        if main and tab.doc_kind == "ours":
            tab.outcome = exc
        self._fail(tab, session, request_id, "BlockedByClient")

    def _answered(self, tab: _Tab) -> None:
        tab.inflight -= 1
        tab.active_at = time.monotonic()
        if tab.inflight == 0:
            tab.changed.set()

    def _fail(self, tab: _Tab, session: str, request_id: str, reason: str) -> None:
        self._answered(tab)
        self._post("Fetch.failRequest", {"requestId": request_id, "errorReason": reason}, session)

    async def _send(self, method: str, params: dict[str, Any], session: str) -> dict[str, Any]:
        if self._browser is None:
            raise CDPError("the browser is gone")
        return await self._browser.cdp.send(method, params, session)

    def _post(self, method: str, params: dict[str, Any], session: str) -> None:
        if self._browser is not None:
            with contextlib.suppress(CDPError):
                self._browser.cdp.post(method, params, session)

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(_quiet(awaitable))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    # -- fetch -----------------------------------------------------------------------------------
    async def _new_tab(self) -> _Tab:
        browser, context_id = await self._context()
        made = await browser.cdp.send(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context_id}
        )
        target = str(made["targetId"])
        fut = self._born.setdefault(target, asyncio.get_running_loop().create_future())
        try:
            tab = await asyncio.wait_for(asyncio.shield(fut), 30)
        finally:
            self._born.pop(target, None)
        self._own += 1
        return tab

    async def _take_tab(self) -> _Tab:
        while self._idle:
            tab = self._idle.pop()
            if not tab.closed:
                return tab
            self._own -= 1
        return await self._new_tab()

    async def _give_back(self, tab: _Tab, reusable: bool) -> None:
        tab.state = "idle"
        await self._sockets.close(tab)
        if reusable and not tab.closed and len(self._idle) < self._cfg.concurrent_requests:
            self._idle.append(tab)
            return
        self._own -= 1
        await self._close_tab(tab)

    async def _close_tab(self, tab: _Tab) -> None:
        if self._browser is not None and not tab.closed:
            tab.closed = True
            with contextlib.suppress(CDPError):
                await self._browser.cdp.send("Target.closeTarget", {"targetId": tab.target})

    async def _close_idle_tabs(self) -> int:
        tabs, self._idle = self._idle, []
        for tab in tabs:
            self._own -= 1
            await self._close_tab(tab)
        return len(tabs)

    async def fetch(self, url: str, sent: list[int], wait_until: str = "load") -> Page:
        if self._guard is None:
            return await self._fetch(url, sent, wait_until)
        await self._context()  # started outside: the browser is not a page's growth
        return await self._guard.load(url, lambda: self._fetch(url, sent, wait_until))

    async def _fetch(self, url: str, sent: list[int], wait_until: str) -> Page:
        start = time.perf_counter()
        event = _LIFECYCLE.get(wait_until)
        if event is None:
            raise UserError(f"fetch(wait_until=...): got {wait_until!r}; use one of "
                            + ", ".join(repr(k) for k in _LIFECYCLE))  # fmt: skip
        tab = await self._take_tab()
        assert self._browser is not None
        cdp = self._browser.cdp
        tab.state = "expect"
        tab.outcome = None
        tab.seen = set()
        sent[0] += 1  # the navigation may leave from now on; the page stays spent
        reusable = False
        left = max(0.1, min(self._cfg.request_timeout_seconds, self._owner.budget.time_left))
        try:
            try:
                async with asyncio.timeout(left):
                    nav = await cdp.send("Page.navigate", {"url": url}, tab.session)
                    error = nav.get("errorText")
                    if error:
                        outcome = tab.outcome
                        if isinstance(outcome, BaseException):
                            raise outcome
                        raise FetchError(f"{url}: browser navigation failed: {error}", url=url,
                                         transient=False)  # fmt: skip
                    loader = str(nav.get("loaderId", ""))
                    while event not in tab.loaders.get(loader, ()):
                        if tab.closed:
                            raise FetchError(f"{url}: the tab closed or crashed while loading",
                                             url=url, transient=True)  # fmt: skip
                        if loader in tab.seen and loader not in tab.loaders:
                            break  # the page navigated on by itself: read what it shows
                        tab.changed.clear()
                        await tab.changed.wait()
                    if wait_until == "networkidle":
                        await self._network_idle(tab)
                    href, html = await self._content(tab)
            except TimeoutError:
                with contextlib.suppress(CDPError):
                    cdp.post("Page.stopLoading", {}, tab.session)
                raise FetchError(f"{url}: browser navigation timed out after {left:.1f} s",
                                 url=url, transient=True) from None  # fmt: skip
            except CDPError as exc:  # the tab or the whole browser went away under us
                raise FetchError(f"{url}: the browser failed: {exc}", url=url,
                                 transient=True) from None  # fmt: skip
            reusable = True
        finally:
            await self._give_back(tab, reusable)
        outcome = tab.outcome
        status, headers = 200, dict[str, str]()
        if isinstance(outcome, tuple):
            status, headers = outcome[0], {k.lower(): v for k, v in outcome[1]}
        body = html.encode("utf-8")
        return Page(url=href, requested_url=url, status=status, headers=headers,
                    content_type=mime_of(headers) or "text/html", encoding="utf-8", body=body,
                    text=html, fetched_with="browser",
                    elapsed_ms=(time.perf_counter() - start) * 1000)  # fmt: skip

    async def _network_idle(self, tab: _Tab) -> None:
        while not tab.closed:
            quiet = time.monotonic() - tab.active_at
            if tab.inflight <= 0 and quiet >= _IDLE_S:
                return
            tab.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tab.changed.wait(), max(0.01, _IDLE_S - quiet))

    async def _content(self, tab: _Tab) -> tuple[str, str]:
        """The tab's URL and HTML; if the page is navigating away, once that settles."""
        assert self._browser is not None
        for attempt in range(5):
            try:
                got = await self._browser.cdp.send(
                    "Runtime.evaluate",
                    {"expression": _CONTENT, "returnByValue": True}, tab.session,
                )  # fmt: skip
                value = (got.get("result") or {}).get("value")
                if isinstance(value, list) and len(value) == 2:
                    return str(value[0]), str(value[1])
            except CDPError:
                if tab.closed or attempt == 4:
                    raise
            tab.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tab.changed.wait(), 2)
        raise FetchError(f"{tab.url}: could not read the page's HTML", url=tab.url)

    def stop(self) -> None:
        for task in list(self._bg):
            task.cancel()

    async def aclose(self) -> None:
        """Close the WebSockets and the context (its tabs with it). Idempotent."""
        self.stop()
        self.closed = True
        if self._guard is not None:
            await self._guard.aclose()
        await self._sockets.close()
        browser, context_id = self._browser, self._context_id
        self._browser = self._context_id = None
        if browser is not None and context_id is not None:
            browser.contexts.pop(context_id, None)
            with contextlib.suppress(CDPError):
                await browser.cdp.send("Target.disposeBrowserContext",
                                       {"browserContextId": context_id})  # fmt: skip


async def _quiet(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable
