"""Discovery: turn a topic into seed URLs through search providers, all via ``ctx.web``.

Generic providers work on any site (its search page, then sitemap.xml, then its home page);
named ones speak a public API or HTML format (Wikipedia, arXiv, DuckDuckGo's HTML results).
Every provider has a configurable base URL, and every request passes the task's policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from ...errors import FetchError, PageLimitExceeded, PolicyViolation
from ._inputs import SearchSpec

if TYPE_CHECKING:
    from ...runtime.context import TaskContext
    from ...web import Page
    from ...web.extract import Link

_LOC = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.I)
_SEARCH_PATH = "/search?q={query}"  # the most common convention; configurable per provider


@dataclass
class Seed:
    """A URL to read, with a prior score (0..1) and what a provider already knows of it."""

    url: str
    score: float
    hub: bool = False  # a page to mine for links rather than to cite
    title: str | None = None
    date: str | None = None
    text: str | None = None  # text already known (an API's abstract): no fetch needed
    links: list[Link] | None = None  # a hub already fetched here: only its links are left
    via: str = ""


@dataclass
class Discovery:
    seeds: list[Seed] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    pages: int = 0


async def _get(ctx: TaskContext, url: str, found: Discovery) -> Page | None:
    try:
        page = await ctx.web.fetch(url, mode="http")
    except (FetchError, PolicyViolation) as exc:
        found.errors.append(exc)
        ctx.emit("research_discovery_error", url=url, error=f"{type(exc).__name__}: {exc}")
        return None
    found.pages += 1
    return page


async def discover(
    ctx: TaskContext, spec: SearchSpec, query: str, limit: int, *, home: bool = True
) -> Discovery:
    """Seeds for ``query`` from one provider. Failures are collected, not raised."""
    found = Discovery()
    try:
        async with ctx.action("search", provider=spec.provider, base_url=spec.base_url):
            if spec.provider == "wikipedia":
                await _wikipedia(ctx, spec, query, limit, found)
            elif spec.provider == "arxiv":
                await _arxiv(ctx, spec, query, limit, found)
            elif spec.provider == "duckduckgo":
                await _duckduckgo(ctx, spec, query, found)
            else:
                await _site(ctx, spec, query, found, home)
    except PageLimitExceeded:
        pass  # the budget ends discovery; whatever was found is used
    return found


async def _site(
    ctx: TaskContext, spec: SearchSpec, query: str, found: Discovery, home: bool
) -> None:
    from ...web.extract import extract_links

    base = spec.base_url
    if spec.provider == "site":
        paths = [spec.search_path or _SEARCH_PATH]
        for path in paths:
            url = base + path.replace("{query}", quote_plus(query))
            page = await _get(ctx, url, found)
            if page is not None and page.ok and page.content_type in ("text/html", ""):
                links = extract_links(page.text, page.url)
                # A results page is a hub: its links are scored by the crawler like any other.
                found.seeds.append(Seed(page.url, 1.0, hub=True, links=links, via="site-search"))
                if home:
                    found.seeds.append(Seed(base + "/", 0.2, hub=True, via="home"))
                return
            if page is None and found.errors and getattr(found.errors[-1], "status", 0) is None:
                return  # the host is unreachable: sitemap and home page would fail the same way
    page = await _get(ctx, base + "/sitemap.xml", found)
    if page is not None and page.ok:
        for loc in _LOC.findall(page.text)[:5000]:
            found.seeds.append(Seed(loc, 0.0, via="sitemap"))
    found.seeds.append(Seed(base + "/", 0.2, hub=True, via="home"))


async def _wikipedia(
    ctx: TaskContext, spec: SearchSpec, query: str, limit: int, found: Discovery
) -> None:
    url = (
        f"{spec.base_url}/w/api.php?action=query&list=search&format=json&srlimit={limit}"
        f"&srsearch={quote_plus(query)}"
    )
    page = await _get(ctx, url, found)
    if page is None or not page.ok:
        return
    try:
        hits = json.loads(page.body)["query"]["search"]
    except (ValueError, KeyError, TypeError):
        found.errors.append(FetchError(f"{url}: not a MediaWiki search response", url=url))
        return
    for rank, hit in enumerate(hits):
        title = str(hit.get("title", ""))
        if title:
            path = quote(title.replace(" ", "_"), safe="()_,-.:'")
            found.seeds.append(
                Seed(
                    f"{spec.base_url}/wiki/{path}",
                    1.0 - rank / (2 * max(1, len(hits))),
                    title=title,
                    via="wikipedia",
                )
            )


async def _arxiv(
    ctx: TaskContext, spec: SearchSpec, query: str, limit: int, found: Discovery
) -> None:
    from lxml import etree

    terms = "+AND+".join(f"all:{quote_plus(w)}" for w in query.split()[:6])
    url = (
        f"{spec.base_url}/api/query?search_query={terms}&start=0&max_results={limit}"
        "&sortBy=relevance"
    )
    page = await _get(ctx, url, found)
    if page is None or not page.ok:
        return
    ns = {"a": "http://www.w3.org/2005/Atom"}
    try:
        root = etree.fromstring(page.body, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        found.errors.append(FetchError(f"{url}: not an arXiv Atom feed", url=url))
        return
    entries = root.findall("a:entry", ns)
    for rank, entry in enumerate(entries):
        abs_url = (entry.findtext("a:id", default="", namespaces=ns) or "").strip()
        title = " ".join((entry.findtext("a:title", default="", namespaces=ns) or "").split())
        summary = " ".join((entry.findtext("a:summary", default="", namespaces=ns) or "").split())
        published = (entry.findtext("a:published", default="", namespaces=ns) or "")[:10] or None
        if abs_url:
            found.seeds.append(
                Seed(
                    abs_url,
                    1.0 - rank / (2 * max(1, len(entries))),
                    title=title or None,
                    date=published,
                    text=summary or None,
                    via="arxiv",
                )
            )


async def _duckduckgo(ctx: TaskContext, spec: SearchSpec, query: str, found: Discovery) -> None:
    from ...web.extract import extract_links

    page = await _get(ctx, f"{spec.base_url}/html/?q={quote_plus(query)}", found)
    if page is None or not page.ok:
        return
    results: list[str] = []
    for link in extract_links(page.text, page.url):
        target = link.url
        parts = urlsplit(target)
        if parts.path.startswith("/l/"):  # redirect wrapper: the real URL is in ?uddg=
            target = parse_qs(parts.query).get("uddg", [""])[0]
        elif parts.netloc == urlsplit(page.url).netloc:
            continue  # the engine's own navigation
        if not target.startswith(("http://", "https://")):
            continue
        if target not in results:
            results.append(target)
    for rank, target in enumerate(results):
        found.seeds.append(Seed(target, 1.0 - rank / (2 * max(1, len(results))), via="duckduckgo"))
