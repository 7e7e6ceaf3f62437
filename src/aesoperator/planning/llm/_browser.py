"""The planner's browser tab, opened in the web session's policy-gated context.

Every request of the tab passes ``WebSession``'s route (policy, DNS pinning, rate limit,
robots.txt). On top of it, each main-frame navigation reserves one page of ``max_pages``
*before* it leaves, so clicks that navigate count like ``navigate`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Page, Request, Route

    from ...runtime.context import TaskContext
    from ._secrets import Redactor


class Tab:
    """One Playwright page for one execution, with page budgeting."""

    def __init__(self, ctx: TaskContext, redactor: Redactor) -> None:
        self._ctx = ctx
        self._redactor = redactor
        self.page: Page | None = None
        self.limit_hit = False
        # Main-frame navigations seen leaving, and documents committed: while the first is
        # ahead, a navigation is in flight and the page must not be observed yet.
        self.nav_started = 0
        self.nav_committed = 0

    async def open(self) -> Page:
        if self.page is None:
            # The web session's tab: its context routes every request through the policy.
            page = await self._ctx.web.open_page()
            await page.route("**/*", self._route)
            page.on("framenavigated", self._navigated)
            self.page = page
        return self.page

    @property
    def max_pages(self) -> int:
        return self._ctx.budget.max_pages

    async def _route(self, route: Route, request: Request) -> None:
        page = self.page
        if (
            page is not None
            and request.is_navigation_request()
            and request.frame == page.main_frame
        ):
            self.nav_started += 1
            if not self._ctx.budget.try_reserve_page():
                self.limit_hit = True
                await route.abort("blockedbyclient")
                return
        await route.fallback()  # on to the web session's policy-gated route

    def _navigated(self, frame: Any) -> None:
        if self.page is not None and frame == self.page.main_frame:
            self.nav_committed = self.nav_started
            # A secret can end up in a URL (a GET form): the timeline gets the placeholder.
            self._ctx.page_visited(self._redactor.text(frame.url), None, fetched_with="browser")

    async def settled(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) for an in-flight navigation to commit."""
        end = asyncio.get_running_loop().time() + timeout
        while self.nav_started > self.nav_committed:
            if asyncio.get_running_loop().time() >= end:
                return  # a download or a 204: no new document will come
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self.page is not None:
            with contextlib.suppress(Exception):
                await self.page.close()
            self.page = None
