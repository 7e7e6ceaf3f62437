"""The execution's cache of static subresources (stylesheets, scripts, fonts, images).

Real pages of one site ask for the same stylesheets and scripts on every page; with every
request answered through the gate, Chromium's own HTTP cache never sees them (a request paused
and answered by us is not stored; Playwright turns the cache off while it routes), so without
this each page would send them again. The cache belongs to one execution (its reading
context, or its Playwright context) and dies with it; it is bounded in bytes (least recently
used out first). A hit is still a request of the page: the caller checks its URL against the
policy first, exactly like a miss. Nothing a server asked not to reuse is kept: ``no-store``,
``no-cache``, a ``Set-Cookie`` (replaying it would set the cookie again), ``Vary`` on anything
but the encoding (the answer may depend on the request).
"""

from __future__ import annotations

import base64
import functools
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["CACHED_TYPES", "Cached", "SubresourceCache", "storable"]

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
