"""The HTTP fetcher: one page through the gate, decoded as a browser would decode it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._page import Page, is_text, mime_of
from .extract import decode_text

if TYPE_CHECKING:
    from ._gate import Gate

__all__ = ["fetch_http"]


async def fetch_http(gate: Gate, url: str, sent: list[int], *, robots: bool = True) -> Page:
    """GET ``url`` (redirects followed, every hop checked; robots.txt too unless ``robots`` is
    False, an API request). ``sent[0]`` counts the requests that left, so the caller knows
    whether the page of the budget was spent."""
    start = time.perf_counter()
    resp = await gate.send(url, navigation=True, robots=robots, browser=False, sent=sent)
    headers = {k.lower(): v for k, v in resp.headers}
    mime = mime_of(headers)
    text, encoding, refused = "", None, None
    if is_text(mime):
        text, encoding, refused = decode_text(resp.body, headers.get("content-type"))
    elapsed = (time.perf_counter() - start) * 1000
    return Page(url=resp.url, requested_url=url, status=resp.status, headers=headers,
                content_type=mime, encoding=encoding, body=resp.body, text=text,
                fetched_with="http", elapsed_ms=elapsed, charset_refused=refused)  # fmt: skip
