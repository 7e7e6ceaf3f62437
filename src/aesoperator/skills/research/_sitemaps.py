"""Sitemaps as a site publishes them: the ``Sitemap:`` lines of its robots.txt (else
``/sitemap.xml``), sitemap index files, gzip-compressed children and ``<lastmod>``.

Every file is one page of the budget, read through ``ctx.web`` (so a ``Content-Encoding`` is
decoded bounded there); a file that is itself gzip (``.xml.gz`` served as application/gzip) is
gunzipped here, bounded by ``max_response_bytes`` the same way.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from html import unescape

from ...errors import FetchError

_SITEMAP_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.I | re.M)
_BLOCK = re.compile(r"<(url|sitemap)\b[^>]*>(.*?)</\1\s*>", re.I | re.S)
_LOC = re.compile(r"<loc>\s*(?:<!\[CDATA\[)?\s*([^<\s\]]+)", re.I)
_LASTMOD = re.compile(r"<lastmod>\s*([^<\s]+)", re.I)
MAX_FILES = 4  # sitemap files read per site (the index counts): each one is a page
MAX_URLS = 5000


@dataclass(frozen=True)
class Entry:
    loc: str
    lastmod: str | None  # ISO date (YYYY-MM-DD) when given
    index: bool  # a child sitemap of an index, not a page


def declared(robots_txt: str) -> list[str]:
    """The sitemap URLs a robots.txt declares, in order, without duplicates."""
    return list(dict.fromkeys(_SITEMAP_LINE.findall(robots_txt)))


def gunzip(body: bytes, limit: int, url: str) -> bytes:
    """``body`` decompressed if it is gzip, never more than ``limit`` bytes."""
    if body[:2] != b"\x1f\x8b":
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise FetchError(f"{url}: not a valid gzip file ({exc})", url=url) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise FetchError(
            f"{url}: gzip sitemap larger than max_response_bytes={limit} once decompressed",
            url=url,
        )
    return out


def parse(xml: str) -> list[Entry]:
    """The entries of a urlset or a sitemap index (a regex scan: sitemaps are flat, and a
    malformed one still yields its well-formed entries)."""
    out: list[Entry] = []
    for kind, body in _BLOCK.findall(xml):
        loc = _LOC.search(body)
        if loc is None:
            continue
        mod = _LASTMOD.search(body)
        lastmod = mod.group(1)[:10] if mod else None
        out.append(Entry(unescape(loc.group(1)), lastmod, kind.lower() == "sitemap"))
        if len(out) >= MAX_URLS:
            break
    return out


def recent(entry: Entry, start_date: str | None) -> bool:
    """False only when a ``<lastmod>`` says the entry has not changed since ``start_date``."""
    return start_date is None or entry.lastmod is None or entry.lastmod >= start_date
