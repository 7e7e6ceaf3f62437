"""``Page``, the record every fetch returns, and the small rules about its content type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Page", "is_text", "mime_of", "needs_browser"]

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml",
               "application/javascript", "application/ld+json", "application/rss+xml",
               "application/atom+xml")  # fmt: skip
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


def mime_of(headers: dict[str, str]) -> str:
    """The bare media type of lower-cased ``headers`` (``"text/html"``)."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def is_text(mime: str) -> bool:
    return mime == "" or mime.startswith(_TEXT_TYPES) or mime.endswith(("+xml", "+json"))


def needs_browser(page: Page) -> bool:
    """The ``auto`` rule: does this HTTP response look like it needs scripts to show content?"""
    if page.content_type not in ("text/html", "application/xhtml+xml") or not page.ok:
        return False
    lower = page.text.lower()
    script, noscript = "<script" in lower, "<noscript" in lower
    if not (script or noscript):
        return False  # nothing a browser would run: no need to measure the visible text
    limit = 1000 if noscript else 200
    visible = _visible_length(page.text, limit)
    return (script and visible < 200) or (noscript and visible < 1000)


def _visible_length(html: str, limit: int) -> int:
    """``len(" ".join(_TAGS.sub(" ", html).split()))``, counted only up to ``limit``: a real
    page passes that within its first screens, so the rest (often most of it) is not scanned."""
    total = 0  # each word's length plus the one space after it
    at = 0
    for match in _TAGS.finditer(html):
        words = html[at : match.start()].split()
        if words:
            total += sum(map(len, words)) + len(words)
            if total - 1 >= limit:
                return total - 1
        at = match.end()
    words = html[at:].split()
    if words:
        total += sum(map(len, words)) + len(words)
    return max(0, total - 1)
