"""The execution's cache of static subresources (stylesheets, scripts, fonts, images).

Real pages of one site ask for the same stylesheets and scripts on every page; with every
request routed through the gate, Chromium's own HTTP cache is off (Playwright disables it while
requests are intercepted), so without this each page would send them again. The cache belongs
to one execution (its ``BrowserTabs``) and dies with it; it is bounded in bytes (least recently
used out first). A hit is still a request of the page: the caller checks its URL against the
policy first, exactly like a miss. Nothing a server asked not to reuse is kept: ``no-store``,
``no-cache``, a ``Set-Cookie`` (replaying it would set the cookie again), ``Vary`` on anything
but the encoding (the answer may depend on the request).
"""

from __future__ import annotations

import base64
import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CACHED_TYPES", "Cached", "SubresourceCache", "TabAnswers", "storable"]

CACHED_TYPES = frozenset({"stylesheet", "script", "font", "image"})
MAX_ENTRY_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Cached:
    """A subresource as it is given to the page again (headers ready to fulfil)."""

    status: int
    headers: dict[str, str]
    body: bytes

    @functools.cached_property
    def cdp_headers(self) -> list[dict[str, str]]:
        return [{"name": k, "value": v} for k, vs in self.headers.items() for v in vs.split("\n")]

    @functools.cached_property
    def b64(self) -> str:
        """The body as Fetch.fulfillRequest takes it, encoded once (counted in the cache)."""
        return base64.b64encode(self.body).decode("ascii")

    @property
    def size(self) -> int:
        return len(self.body) * 7 // 3  # the body and its base64 form


def storable(status: int, headers: list[tuple[str, str]], body: bytes) -> bool:
    """May this response be given again to a later page of the same execution?"""
    if status != 200 or len(body) > MAX_ENTRY_BYTES:
        return False
    control: list[str] = []
    for key, value in headers:
        k = key.lower()
        if k == "set-cookie":
            return False
        if k == "cache-control":
            control.append(value.lower())
        elif k == "vary" and any(
            v.strip() not in ("", "accept-encoding") for v in value.lower().split(",")
        ):
            return False
    directives = ",".join(control)
    return not any(d in directives for d in ("no-store", "no-cache"))


class SubresourceCache:
    """URL -> ``Cached``, at most ``max_bytes`` of bodies, least recently used out first."""

    def __init__(self, max_bytes: int = MAX_TOTAL_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[str, Cached] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, url: str) -> Cached | None:
        item = self._items.get(url)
        if item is not None:
            self._items.move_to_end(url)
        return item

    def put(self, url: str, item: Cached) -> None:
        if item.size > self.max_bytes:
            return
        old = self._items.pop(url, None)
        if old is not None:
            self.size -= old.size
        self._items[url] = item
        self.size += item.size
        while self.size > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.size -= dropped.size

    def clear(self) -> None:
        self._items.clear()
        self.size = 0


_CDP_TYPES = {"stylesheet": "Stylesheet", "script": "Script", "font": "Font", "image": "Image"}


def _escape(url: str) -> str:
    # A CDP urlPattern treats * and ? as wildcards, backslash escapes them.
    return url.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


class TabAnswers:
    """Answers a tab's cached subresources in Chromium's Fetch domain, before the route.

    Through ``context.route`` each answer costs the driver a Request and a Route object, the
    body is base64-encoded again and the API wrapper runs: on a documentation page with a dozen
    stylesheets and scripts that is most of the Python side. A CDP session per tab pauses only
    the URLs this cache holds (as the type they were stored as) and the blocked extensions: a
    cached one is answered with its body encoded once, after ``allow(url)`` (the policy, with
    the refusal recorded) says yes; anything else it paused and cannot answer goes on to the
    route, which stays the authority. ``block`` are the urlPatterns failed outright.
    """

    def __init__(
        self,
        cache: SubresourceCache,
        block: list[str],
        allow: Callable[[str, str], bool],
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self._cache = cache
        self._block = block
        self._allow = allow
        self._spawn = spawn
        self._sessions: list[Any] = []
        self._types: dict[str, str] = {}  # cached URL -> the CDP resource type it is paused as

    def _patterns(self) -> list[dict[str, str]]:
        cached = [{"urlPattern": _escape(u), "resourceType": t} for u, t in self._types.items()]
        return [{"urlPattern": p} for p in self._block] + cached

    async def attach(self, cdp: Any) -> None:
        cdp.on("Fetch.requestPaused", lambda event: self._paused(cdp, event))
        self._sessions.append(cdp)
        await cdp.send("Fetch.enable", {"patterns": self._patterns()})

    def stored(self, url: str, rtype: str) -> None:
        """``url`` was put in the cache as ``rtype``: pause it from now on in every tab."""
        kind = _CDP_TYPES.get(rtype)
        if kind is None or url in self._types:
            return
        self._types[url] = kind
        patterns = {"patterns": self._patterns()}
        for cdp in list(self._sessions):
            self._spawn(cdp.send("Fetch.enable", patterns))

    def _paused(self, cdp: Any, event: dict[str, Any]) -> None:
        request_id = event["requestId"]
        request = event.get("request") or {}
        url = str(request.get("url", ""))
        if url in self._types:
            item = self._cache.get(url)
            if item is None or request.get("method") != "GET":
                self._spawn(cdp.send("Fetch.continueRequest", {"requestId": request_id}))
                return
            if not self._allow(url, str(event.get("resourceType", "")).lower()):
                fail = {"requestId": request_id, "errorReason": "BlockedByClient"}
                self._spawn(cdp.send("Fetch.failRequest", fail))
                return
            answer = {"requestId": request_id, "responseCode": item.status,
                      "responseHeaders": item.cdp_headers, "body": item.b64}  # fmt: skip
            self._spawn(cdp.send("Fetch.fulfillRequest", answer))
            return
        fail = {"requestId": request_id, "errorReason": "BlockedByClient"}
        self._spawn(cdp.send("Fetch.failRequest", fail))
