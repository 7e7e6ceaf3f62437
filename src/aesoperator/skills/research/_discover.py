"""Discovery: turn a topic into seed URLs through search providers, all via ``ctx.web``.

Generic providers work on any site (its search page, then its sitemaps, then its home page);
named ones speak a public API or HTML format (Wikipedia, arXiv, DuckDuckGo's HTML results).
Every provider has a configurable base URL, and every request passes the task's policy.

A named provider is an API client, not a crawler: its requests skip robots.txt (Wikipedia's
disallows ``/w/``, export.arxiv.org's disallows everything, both meant for crawlers) and follow
the API's own terms instead, said in a ``research_api_terms`` event:

- Wikimedia: a descriptive User-Agent with a contact URL (``TaskConfig.user_agent`` or the
  default), serial requests, ``maxlag=5`` (a lagged answer is waited for once, then given up);
- arXiv: at most one request every 3 s from this process, ``Rate exceeded.`` and Atom ``Error``
  entries reported as errors, ``start_date`` sent as a ``submittedDate`` range;
- DuckDuckGo's HTML endpoint: one request; a bot challenge (HTTP 202, ``anomaly-modal``) is
  reported, redirect links are decoded and ads dropped.

The pages a provider's results lead to are crawled under robots.txt as any other page.
Why a provider found nothing is kept in ``Discovery.reason`` for the task's summary.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from ...errors import FetchError, PageLimitExceeded, PolicyViolation
from . import _sitemaps
from ._botwall import challenge, note_wall, walled_hosts
from ._inputs import SearchSpec

if TYPE_CHECKING:
    from ...runtime.context import TaskContext
    from ...web import Page
    from ...web.extract import Link

_SEARCH_PATH = "/search?q={query}"  # the most common convention; configurable per provider
ARXIV_INTERVAL = 3.0  # seconds between two requests to arXiv's API (its terms of use)
_MAXLAG = 5  # seconds of replication lag Wikimedia may have before it asks us to back off
# host -> the monotonic time of the next free slot; process-wide (arXiv counts per client), and
# a thread lock, not an asyncio one: executions run their own event loops, some on threads.
_arxiv_next: dict[str, float] = {}
_arxiv_guard = threading.Lock()
_TERMS = {
    "wikipedia": "API client: robots.txt not consulted for the API; descriptive User-Agent "
    f"with contact, serial requests, maxlag={_MAXLAG}",
    "arxiv": "API client: robots.txt not consulted for the API; at most one request every "
    f"{ARXIV_INTERVAL:g} s, rate-limit and error entries detected",
    "duckduckgo": "API client: robots.txt not consulted for the results page; bot challenges "
    "reported, ads dropped",
}


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
    problems: list[str] = field(default_factory=list)  # answers that were not results
    pages: int = 0

    @property
    def reason(self) -> str:
        """Why there are no seeds, in a sentence (meaningful when ``seeds`` is empty)."""
        if self.problems:
            return self.problems[0]
        if self.errors:
            exc = self.errors[0]
            return f"{type(exc).__name__}: {exc}"
        return "it returned no results for the query"


def _fail(found: Discovery, url: str, message: str) -> None:
    found.errors.append(FetchError(message, url=url))


async def _get(ctx: TaskContext, url: str, found: Discovery, *, api: bool = False) -> Page | None:
    """One page, or None (recorded) when refused, failed or behind a bot wall."""
    walled = walled_hosts(ctx).get(urlsplit(url).netloc.lower())
    if walled is not None:
        found.problems.append(walled)
        return None
    try:
        page = await ctx.web.fetch(url, mode="http", robots=not api)
    except (FetchError, PolicyViolation) as exc:
        found.errors.append(exc)
        ctx.emit("research_discovery_error", url=url, error=f"{type(exc).__name__}: {exc}")
        return None
    found.pages += 1
    kind = challenge(page)
    if kind is not None:
        found.problems.append(note_wall(ctx, page, kind))
        return None
    return page


async def discover(
    ctx: TaskContext,
    spec: SearchSpec,
    query: str,
    limit: int,
    *,
    home: bool = True,
    start_date: str | None = None,
) -> Discovery:
    """Seeds for ``query`` from one provider. Failures are collected, not raised."""
    found = Discovery()
    try:
        async with ctx.action("search", provider=spec.provider, base_url=spec.base_url):
            if spec.provider in _TERMS:
                ctx.emit("research_api_terms", provider=spec.provider, base_url=spec.base_url,
                         terms=_TERMS[spec.provider])  # fmt: skip
            if spec.provider == "wikipedia":
                await _wikipedia(ctx, spec, query, limit, found)
            elif spec.provider == "arxiv":
                await _arxiv(ctx, spec, query, limit, found, start_date)
            elif spec.provider == "duckduckgo":
                await _duckduckgo(ctx, spec, query, found)
            else:
                await _site(ctx, spec, query, found, home, start_date)
    except PageLimitExceeded:
        pass  # the budget ends discovery; whatever was found is used
    return found


async def _site(
    ctx: TaskContext,
    spec: SearchSpec,
    query: str,
    found: Discovery,
    home: bool,
    start_date: str | None,
) -> None:
    from ...web.extract import extract_links

    base = spec.base_url
    if spec.provider == "site":
        url = base + (spec.search_path or _SEARCH_PATH).replace("{query}", quote_plus(query))
        page = await _get(ctx, url, found)
        if page is not None and page.ok and page.content_type in ("text/html", ""):
            links = extract_links(page.text, page.url)
            # A results page is a hub: its links are scored by the crawler like any other.
            found.seeds.append(Seed(page.url, 1.0, hub=True, links=links, via="site-search"))
            if home:
                found.seeds.append(Seed(base + "/", 0.2, hub=True, via="home"))
            return
        if found.problems:
            return  # a bot wall: the sitemap and the home page are behind it too
        if page is None and found.errors and getattr(found.errors[-1], "status", 0) is None:
            return  # the host is unreachable: sitemap and home page would fail the same way
    await _sitemap(ctx, base, found, start_date)
    if not found.problems:
        found.seeds.append(Seed(base + "/", 0.2, hub=True, via="home"))


async def _sitemap(ctx: TaskContext, base: str, found: Discovery, start_date: str | None) -> None:
    robots = await _get(ctx, base + "/robots.txt", found, api=True)
    queue = _sitemaps.declared(robots.text) if robots is not None and robots.ok else []
    queue = queue or [base + "/sitemap.xml"]
    limit = ctx.config.max_response_bytes
    seen: set[str] = set()
    reads = 0
    while queue and reads < _sitemaps.MAX_FILES and len(found.seeds) < _sitemaps.MAX_URLS:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        reads += 1
        page = await _get(ctx, url, found)
        if page is None or not page.ok:
            continue
        try:
            xml = _sitemaps.gunzip(page.body, limit, page.url).decode("utf-8", "replace")
        except FetchError as exc:
            found.errors.append(exc)
            continue
        entries = [e for e in _sitemaps.parse(xml) if _sitemaps.recent(e, start_date)]
        # An index: its newest children first, those unchanged since start_date never read.
        children = sorted((e for e in entries if e.index), key=lambda e: e.lastmod or "",
                          reverse=True)  # fmt: skip
        queue.extend(e.loc for e in children)
        found.seeds.extend(Seed(e.loc, 0.0, via="sitemap") for e in entries if not e.index)


async def _wikipedia(
    ctx: TaskContext, spec: SearchSpec, query: str, limit: int, found: Discovery
) -> None:
    url = (
        f"{spec.base_url}/w/api.php?action=query&list=search&format=json&srlimit={limit}"
        f"&maxlag={_MAXLAG}&srsearch={quote_plus(query)}"
    )
    for attempt in (1, 2):
        page = await _get(ctx, url, found, api=True)
        if page is None:
            return
        if not page.ok:
            _fail(found, url, f"{url}: the MediaWiki API answered HTTP {page.status}")
            return
        try:
            answer = json.loads(page.body)
            error = answer.get("error") if isinstance(answer, dict) else None
            if error is not None:
                code, info = error.get("code", "?"), error.get("info", "")
                if code == "maxlag" and attempt == 1:
                    wait = min(float(page.headers.get("retry-after", "5") or 5), 10.0)
                    ctx.emit("research_api_wait", provider="wikipedia", seconds=wait,
                             reason="maxlag")  # fmt: skip
                    await ctx.sleep(wait)
                    continue
                _fail(found, url, f"{url}: the MediaWiki API refused the query ({code}: {info})")
                return
            hits = answer["query"]["search"]
        except (ValueError, KeyError, TypeError, AttributeError):
            _fail(found, url, f"{url}: not a MediaWiki search response")
            return
        break
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


async def _arxiv_turn(ctx: TaskContext, host: str) -> None:
    """Wait until ``ARXIV_INTERVAL`` has passed since this process last asked ``host``."""
    with _arxiv_guard:  # a slot is reserved here, then waited for outside the lock
        now = time.monotonic()
        slot = max(now, _arxiv_next.get(host, now))
        _arxiv_next[host] = slot + ARXIV_INTERVAL
    if slot > now:
        ctx.emit("research_api_wait", provider="arxiv", seconds=round(slot - now, 3),
                 reason=f"one request every {ARXIV_INTERVAL:g} s")  # fmt: skip
        await ctx.sleep(slot - now)


def arxiv_query(query: str, start_date: str | None, now: datetime | None = None) -> str:
    """The ``search_query`` value: every word, and a submission range from ``start_date``."""
    terms = "+AND+".join(f"all:{quote_plus(w)}" for w in query.split()[:6])
    if start_date:
        end = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M")
        terms += f"+AND+submittedDate:[{start_date.replace('-', '')}0000+TO+{end}]"
    return terms


def _https(url: str) -> str:
    # arXiv's feed names its pages with http://arxiv.org/...; the site serves them over HTTPS.
    parts = urlsplit(url)
    if parts.scheme == "http" and (parts.hostname or "").endswith("arxiv.org"):
        return "https" + url[4:]
    return url


async def _arxiv(
    ctx: TaskContext,
    spec: SearchSpec,
    query: str,
    limit: int,
    found: Discovery,
    start_date: str | None,
) -> None:
    from lxml import etree

    order = "&sortBy=submittedDate&sortOrder=descending" if start_date else "&sortBy=relevance"
    url = (
        f"{spec.base_url}/api/query?search_query={arxiv_query(query, start_date)}"
        f"&start=0&max_results={limit}{order}"
    )
    await _arxiv_turn(ctx, urlsplit(url).hostname or "")
    page = await _get(ctx, url, found, api=True)
    if page is None:
        return
    if b"Rate exceeded" in page.body[:2000]:
        found.problems.append(
            f"arXiv's API answered 'Rate exceeded.' (HTTP {page.status}): it allows one "
            f"request every {ARXIV_INTERVAL:g} s per client; try again later"
        )
        return
    ns = {"a": "http://www.w3.org/2005/Atom"}
    try:
        # A bad query is answered HTTP 400 with an Atom feed whose one entry is the error.
        root = etree.fromstring(page.body, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        status = f"HTTP {page.status}" if not page.ok else "not an Atom feed"
        _fail(found, url, f"{url}: arXiv's API answered {status}")
        return
    entries = root.findall("a:entry", ns)
    for rank, entry in enumerate(entries):
        entry_id = (entry.findtext("a:id", default="", namespaces=ns) or "").strip()
        title = " ".join((entry.findtext("a:title", default="", namespaces=ns) or "").split())
        summary = " ".join((entry.findtext("a:summary", default="", namespaces=ns) or "").split())
        if "/api/errors" in entry_id or title == "Error":
            found.problems.append(f"arXiv's API reported an error: {summary or entry_id}")
            continue
        alternate = next(
            (
                link.get("href", "")
                for link in entry.findall("a:link", ns)
                if link.get("rel", "alternate") == "alternate"
            ),
            "",
        )
        abs_url = _https(alternate or entry_id)
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
    if not page.ok and not found.problems:
        _fail(found, url, f"{url}: arXiv's API answered HTTP {page.status}")


def duckduckgo_results(links: list[Link], page_url: str) -> list[str]:
    """Result URLs of a DuckDuckGo HTML page: redirect links decoded, ads and the engine's own
    links dropped, duplicates removed."""
    own = urlsplit(page_url).hostname or ""
    results: list[str] = []
    for link in links:
        target = link.url
        parts = urlsplit(target)
        host = parts.hostname or ""
        engine = host == own or host == "duckduckgo.com" or host.endswith(".duckduckgo.com")
        if parts.path.startswith("/l/") and "uddg=" in parts.query:  # a redirect wrapper
            target = parse_qs(parts.query).get("uddg", [""])[0]
        elif engine:
            continue  # the engine's navigation, and its ads (/y.js?ad_domain=...)
        if not target.startswith(("http://", "https://")) or "/y.js?" in target:
            continue
        if target not in results:
            results.append(target)
    return results


async def _duckduckgo(ctx: TaskContext, spec: SearchSpec, query: str, found: Discovery) -> None:
    from ...web.extract import extract_links

    page = await _get(ctx, f"{spec.base_url}/html/?q={quote_plus(query)}", found, api=True)
    if page is None:
        return
    if page.status == 202 or "anomaly-modal" in page.text:
        reason = (
            f"DuckDuckGo answered with a bot challenge (HTTP {page.status}, anomaly-modal) "
            "instead of results; give start_urls, allowed_domains with the sites to read, or "
            "another provider (search=['wikipedia'] or ['arxiv'])"
        )
        found.problems.append(reason)
        ctx.emit("research_bot_wall", host=urlsplit(page.url).netloc, url=page.url,
                 status=page.status, kind="DuckDuckGo anomaly-modal", fix=reason)  # fmt: skip
        return
    if not page.ok:
        _fail(found, page.url, f"{page.url}: DuckDuckGo answered HTTP {page.status}")
        return
    results = duckduckgo_results(extract_links(page.text, page.url), page.url)
    for rank, target in enumerate(results):
        found.seeds.append(Seed(target, 1.0 - rank / (2 * max(1, len(results))), via="duckduckgo"))
