"""Best-first reading under the page budget, on the web layer's crawler.

A frontier of links scored by relevance to the topic and focus areas (anchor text, URL words,
surrounding text, and how relevant the linking page was); ``concurrent_requests`` workers fetch
the best link, extract it in the web layer's process pool (so extraction uses every core and
overlaps with fetching), score the page by its text and push its links. Low-value pages (logins,
legal pages, assets) never enter the frontier; index-like pages are read for links only.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...errors import FetchError, PolicyViolation, TaskError
from ...text._tokens import STOPWORDS, stem, terms, words
from ._botwall import challenge, note_wall, walled_hosts
from ._discover import Seed

if TYPE_CHECKING:
    from ...runtime.context import TaskContext
    from ...web import Page
    from ...web.extract import Extracted, Link
    from ._llm import ResearchModel

_SKIP_PATH = re.compile(
    r"/(?:log-?in|log-?out|sign-?in|sign-?up|register|account|cart|checkout|password|"
    r"privacy|terms|cookies?|contact|subscribe|share|print|feed|rss|wp-admin|wp-login)"
    r"(?:[/.?#]|$)|\.(?:css|js|png|jpe?g|gif|svg|webp|ico|woff2?|ttf|mp[34]|zip|gz|exe|dmg)$",
    re.I,
)
_HUB_PATH = re.compile(
    r"/(?:tags?|topics?|categor(?:y|ies)|archives?|page/\d+|authors?|index)\b", re.I
)
# Pages that list or index other pages, or show source code: they guide the crawl, never cited
# (_report.py). Read for their links only, without a main-content pass.
NOT_CITED = re.compile(
    r"/(?:genindex|py-modindex|modindex|bookindex|search|sitemap|contents|toc)(?:-[\w-]+)?"
    r"\.html?$|/_modules/|/_sources/",
    re.I,
)
_ISO_DAY = re.compile(r"(?<!\d)(?:19|20)\d\d-\d\d-\d\d(?!\d)")
_URL_WORDS = re.compile(r"[a-z0-9]+")


def _forms(term: str) -> tuple[str, ...]:
    """The term and the form the light stemmer gives its relatives: it maps "caching" and
    "cached" to ``cach`` but "cache" to ``cache``, "indexes" to ``indexe`` but "index" to
    ``index``; a query counts both as one concept."""
    if len(term) < 4:
        return (term,)
    return (term, term[:-1]) if term.endswith("e") else (term, term + "e")


@dataclass
class Query:
    """Weighted query terms: the topic's count fully, focus areas a little less.

    ``concepts`` maps each query term to its weight; ``weights`` holds every form of each
    (for BM25), ``forms`` the forms of each concept (for coverage).
    """

    weights: dict[str, float]
    start_date: str | None = None
    cache: dict[Link, float] = field(default_factory=dict, repr=False)
    concepts: dict[str, float] = field(default_factory=dict)
    forms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # How many distinct link texts seen so far carry each word: "data" or "function" in a link
    # text says little on a site where hundreds of link texts carry it, "LISTEN" a lot.
    anchor_df: dict[str, int] = field(default_factory=dict, repr=False)
    anchors_seen: set[str] = field(default_factory=set, repr=False)
    _weights_at: tuple[int, list[tuple[tuple[str, ...], float]], float] | None = field(
        default=None, repr=False
    )

    @classmethod
    def build(cls, topic: str, focus_areas: list[str], start_date: str | None = None) -> Query:
        concepts: dict[str, float] = {}
        for term in terms(topic):
            concepts[term] = 1.0
        for area in focus_areas:
            for term in terms(area):
                concepts.setdefault(term, 0.6)
        concepts = concepts or {t: 1.0 for t in topic.lower().split()}
        forms = {t: _forms(t) for t in concepts}
        weights: dict[str, float] = {}
        for term, w in concepts.items():
            for form in forms[term]:
                weights[form] = max(w, weights.get(form, 0.0))
        return cls(weights, start_date, concepts=concepts, forms=forms)

    @property
    def total(self) -> float:
        return sum(self.concepts.values()) or 1.0

    def note_links(self, links: list[Link]) -> None:
        """Count the words of link texts not seen before (before the links are scored)."""
        seen, df = self.anchors_seen, self.anchor_df
        for link in links:
            text = link.text.lower()
            if text and text not in seen:
                seen.add(text)
                # The link's own text, not ``text``: the cached set that scoring it reads.
                for term in _term_set(link.text):
                    df[term] = df.get(term, 0) + 1

    def anchor_coverage(self, text_terms: AbstractSet[str]) -> float:
        """``coverage`` with each query term weighed by its rarity among the link texts seen."""
        weights, total = self._anchor_weights()
        found = 0.0
        for forms, weight in weights:
            if any(f in text_terms for f in forms):
                found += weight
        return found / total if total else 0.0

    def _anchor_weights(self) -> tuple[list[tuple[tuple[str, ...], float]], float]:
        """Each query term's forms and rarity weight. They change only when a new link text is
        seen (``note_links``): computed once per count of texts seen, not once per link."""
        seen = len(self.anchors_seen)
        if self._weights_at is not None and self._weights_at[0] == seen:
            return self._weights_at[1], self._weights_at[2]
        n = seen + 1
        weights: list[tuple[tuple[str, ...], float]] = []
        total = 0.0
        for t, w in self.concepts.items():
            df = max(self.anchor_df.get(f, 0) for f in self.forms[t])
            weight = w * math.log(1.0 + n / (1 + df))
            total += weight
            weights.append((self.forms[t], weight))
        self._weights_at = (seen, weights, total)
        return weights, total

    def coverage(self, text_terms: AbstractSet[str]) -> float:
        """Share (0..1) of the query's weight found in ``text_terms``."""
        found = sum(
            w for t, w in self.concepts.items() if any(f in text_terms for f in self.forms[t])
        )
        return found / self.total


_EMPTY_SEARCH = re.compile(r"/search/?$", re.I)


def skip_url(url: str) -> bool:
    """Logins, legal pages, static assets and an empty search form: never worth a page of the
    budget (a search *with* a query is a listing, kept)."""
    parts = urlsplit(url)
    return bool(_SKIP_PATH.search(parts.path)) or (
        not parts.query and bool(_EMPTY_SEARCH.search(parts.path))
    )


_PAGE_FILE = re.compile(r"\.(?:html?|php|aspx?)$", re.I)
# Sphinx and DocBook index pages: the site's own map of its pages, read for their links only.
_INDEX_FILE = re.compile(
    r"(?:^|/)(?:genindex(?:-[\w-]+)?|py-modindex|modindex|bookindex|contents|toc)\.html?$", re.I
)


def is_hub_url(url: str) -> bool:
    """Listings by their URL: a home page, a tag/topic/archive folder, a site index page. A
    named page inside such a folder (Django's ``/topics/cache.html``) is an article."""
    path = urlsplit(url).path
    if path in ("", "/") or _INDEX_FILE.search(path):
        return True
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if _PAGE_FILE.search(last) and not last.lower().startswith("index."):
        return False
    return bool(_HUB_PATH.search(path))


def is_hub(url: str, ex: Extracted) -> bool:
    """A listing by its content, or by its URL unless it is a folder's ``index.html`` that is
    plainly an article (Sphinx names a chapter's main page so: Django's
    ``ref/contrib/admin/index.html`` is "The Django admin site", 14,000 words)."""
    if looks_like_hub(ex):
        return True
    if not is_hub_url(url):
        return False
    path = urlsplit(url).path
    last = path.rsplit("/", 1)[-1].lower()
    if path.count("/") < 2 or not last.startswith("index.") or _INDEX_FILE.search(path):
        return True  # the site's home page, genindex and the like: always listings
    words = len(ex.text.split())
    return words < 300 or words < 20 * len(ex.links)


# A site's own map of every page, term by term (Sphinx's genindex, DocBook's bookindex, a full
# table of contents): one page of the budget that puts the topic's words in link texts. Not the
# per-letter pages of a split index (genindex-A.html ...): 26 pages.
_SITE_MAP = re.compile(r"(?:^|/)(?:genindex(?:-all)?|bookindex|contents|toc)\.html?$", re.I)
_SITE_MAP_SCORE = 0.35  # after links that name most of the topic, before everything else
_PICKED = 3.0  # a link the model chose: before any the crawl scored itself (at most ~2.2)
_PICK_FROM = 30  # frontier links shown to the model


def _link_relevance(query: Query, link: Link) -> float:
    site_map, url_terms = _url_terms(link.url)
    if site_map:
        return _SITE_MAP_SCORE
    # The term sets are pure functions of their strings and repeat across links (a URL under
    # many link texts, "next" on every page): computed once. The coverages are not cached:
    # ``anchor_coverage`` moves as link texts are seen.
    return (
        0.45 * query.anchor_coverage(_term_set(link.text))
        + 0.25 * query.coverage(url_terms)
        + 0.15 * query.coverage(_term_set(link.context))
    )


@functools.lru_cache(maxsize=1 << 16)
def _term_set(text: str) -> frozenset[str]:
    return frozenset(terms(text)) if text else frozenset()


@functools.lru_cache(maxsize=1 << 16)
def _url_terms(url: str) -> tuple[bool, frozenset[str]]:
    """Whether the URL is a site map, and the terms of its path."""
    path = urlsplit(url).path
    return bool(_SITE_MAP.search(path)), frozenset(
        terms(" ".join(_URL_WORDS.findall(path.lower())))
    )


def link_score(query: Query, link: Link, parent_score: float, depth: int) -> float:
    # Navigation, sidebars and footers repeat the same links on every page: score each once.
    relevance = query.cache.get(link)
    if relevance is None:
        relevance = query.cache[link] = _link_relevance(query, link)
    score = relevance + 0.15 * parent_score
    if query.start_date and link.context:
        # Listings often print the date beside the link: do not spend pages on old ones.
        match = _ISO_DAY.search(link.context)
        if match and match.group(0) < query.start_date:
            score -= 0.5
    return score - 0.02 * depth


@dataclass
class ReadPage:
    """A page read during the crawl."""

    url: str
    extracted: Extracted | None
    score: float  # relevance of its text to the query, 0..1
    hub: bool
    depth: int
    via: str = ""
    title: str | None = None
    date: str | None = None
    text: str = ""


@dataclass
class CrawlResult:
    pages: list[ReadPage] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    skipped_known: list[str] = field(default_factory=list)
    first_error: BaseException | None = None
    stopped_for_time: bool = False
    elapsed: float = 0.0


def page_score(query: Query, ex: Extracted) -> float:
    # ``terms(text)`` counted: each distinct word is filtered and stemmed once, not once per
    # occurrence (a page's words repeat; this ran on the crawl's event loop for every page).
    counts = Counter(words(ex.text[:20000]))
    present: set[str] = set()
    total = hits = 0
    weights = query.weights
    for word, n in counts.items():
        if word in STOPWORDS or word.isdigit():
            continue
        term = stem(word)
        present.add(term)
        total += n
        if term in weights:
            hits += n
    if not total:
        return 0.0
    title = set(terms(ex.title or ""))
    density = min(1.0, 20 * hits / total)
    return 0.5 * query.coverage(present) + 0.3 * query.coverage(title) + 0.2 * density


def looks_like_hub(ex: Extracted) -> bool:
    """Index pages: little prose for their number of links."""
    words, links = len(ex.text.split()), len(ex.links)
    if (words < 40 and links >= 5) or (links >= 10 and words / links < 6):
        return True
    lines = [line for line in ex.text.splitlines() if line.strip()]
    items = sum(1 for line in lines if line.lstrip().startswith(("- ", "* ", "• ")))
    return items >= 5 and items > 0.5 * len(lines)  # a listing of teasers


def _key(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc.lower()}{path}?{parts.query}"


class Crawler:
    """Research's hooks on the web layer's crawler (``aesoperator.web.crawl``): which links to
    follow (``allowed``, never low-value ones), their score (``link_score``), and what a page
    is worth once read (extracted, scored by its text, its links pushed with that score)."""

    def __init__(
        self,
        ctx: TaskContext,
        query: Query,
        *,
        known: set[str],
        allowed: Callable[[str], bool],
        on_page: Callable[[ReadPage], None],
        max_depth: int = 6,
    ) -> None:
        from ...web.crawl import Crawler as Engine

        self.ctx = ctx
        self.query = query
        self.known = {_key(u) for u in known}
        self.walls = walled_hosts(ctx)  # hosts behind a bot wall: not asked again
        self.on_page = on_page
        # The web layer's extraction processes (set once they are up); None: extract on a
        # thread, as a small task does (starting processes costs more than it saves there).
        self.pool_warm: threading.Event | None = None
        duration = ctx.config.max_duration_seconds
        self.time_reserve = min(5.0, 0.25 * duration)
        self._pool_broken = False
        self.result = CrawlResult()
        # With a model: it names the frontier's links to read first (``ResearchModel.pick``).
        self.model: ResearchModel | None = None
        self.topic: tuple[str, list[str]] = ("", [])
        self.anchors: dict[str, str] = {}  # url -> the first link text seen for it
        self._picking = False

        def follow(url: str) -> str | None:
            return None if skip_url(url) or not allowed(url) else url

        self.crawl = Engine(
            ctx, ctx.web.fetch, on_page=self._read, follow=follow, key=_key,
            score=self._score, on_error=self._failed,
            skip=self._known, max_depth=max_depth,
        )  # fmt: skip

    async def run(self, seeds: list[Seed], workers: int) -> CrawlResult:
        start = time.perf_counter()
        crawl = self.crawl
        for seed in seeds:
            if seed.links is not None:
                self.query.note_links(seed.links)
                crawl.mark_seen(seed.url)
                crawl.push_links(seed.links, 0.5, 1)
            elif seed.via == "sitemap":
                # A sitemap lists everything: rank its URLs like links (by their words).
                from ...web.extract import Link

                crawl.push(
                    seed.url, link_score(self.query, Link(seed.url, ""), 0.0, 1), 1, "sitemap"
                )
            elif seed.text is None:
                # Start URLs and search results come first; a home page only when links run out.
                crawl.push(seed.url, seed.score if seed.hub else 1.0 + seed.score, 0, seed.via)
        # Keep the end of max_duration_seconds for writing the report: reads still in flight at
        # that point are abandoned (their pages were fetched, not used).
        window = max(0.0, self.ctx.budget.time_left - self.time_reserve)
        self.result.stopped_for_time = await crawl.run(workers, window)
        self.result.elapsed = time.perf_counter() - start
        return self.result

    def _score(self, link: Link, parent_score: float, depth: int) -> float:
        if self.model is not None and link.text:
            self.anchors.setdefault(link.url, link.text)
        return link_score(self.query, link, parent_score, depth)

    async def _let_model_pick(self) -> None:
        """When the frontier holds more than the budget can read, the model names what to read
        first; no fetch starts meanwhile. Its picks go to the front, the rest keep their order."""
        model, budget = self.model, self.ctx.budget
        if (
            model is None
            or self._picking
            or not model.wants_pick(budget.pages_used, budget.max_pages)
        ):
            return
        self._picking = True
        try:
            async with self.crawl.held():
                await self._pick(model, budget.pages_left)
        finally:
            self._picking = False

    async def _pick(self, model: ResearchModel, pages_left: int) -> None:
        waiting = self.crawl.peek(max(_PICK_FROM, pages_left + 1))
        if len(waiting) <= pages_left:
            return  # everything in sight will be read anyway
        top = waiting[:_PICK_FROM]
        depths = {url: depth for url, _, depth in top}
        links = [(url, self.anchors.get(url, "")) for url, _, _ in top]
        chosen = await model.pick(*self.topic, links)
        for rank, url in enumerate(chosen):
            self.crawl.push(url, _PICKED - 0.01 * rank, depths[url], "model")

    def _known(self, url: str, depth: int) -> bool:
        """Read by an earlier run (permanent memory): skipped, unless a start or a hub. A
        host found behind a bot wall since the URL was queued: skipped."""
        if self.walls and urlsplit(url).netloc.lower() in self.walls:
            return True
        if depth > 0 and _key(url) in self.known and not is_hub_url(url):
            self.result.skipped_known.append(url)
            return True
        return False

    def _failed(self, url: str, exc: PolicyViolation | FetchError) -> None:
        if isinstance(exc, PolicyViolation):
            self.result.refused.append(url)
            return
        self.result.failures.append({"url": url, "error": str(exc), "status": exc.status})
        if self.result.first_error is None:
            self.result.first_error = exc

    def _push_early_links(self, page: Page, depth: int) -> None:
        if page.text and page.content_type in ("text/html", "application/xhtml+xml"):
            from ...web.extract import extract_links

            links = extract_links(page.text, page.url)
            self.query.note_links(links)
            self.crawl.push_links(links, 0.0, depth)

    async def _read(self, page: Page, depth: int, via: str) -> None:
        ctx = self.ctx
        url = page.requested_url
        self.crawl.mark_seen(page.url)
        if not page.ok:
            kind = challenge(page)
            if kind is not None:
                note_wall(ctx, page, kind)  # said once; the host's queued pages are skipped
            self.result.failures.append({"url": url, "error": f"HTTP {page.status}",
                                         "status": page.status})  # fmt: skip
            if self.result.first_error is None:
                self.result.first_error = FetchError(
                    f"{url}: HTTP {page.status}", url=url, status=page.status
                )
            return
        ex = None
        path = urlsplit(page.url).path
        site_map = bool(_SITE_MAP.search(path))
        # Source listings (never cited) are read for their links only. Not the site maps: their
        # text's score lifts hundreds of links, and a cheaper text (by 0.003) reorders the crawl
        # (PostgreSQL's "full text search" then missed two accepted pages).
        listing = not site_map and bool(NOT_CITED.search(path))
        if site_map:
            # Extracting a site's index (500 KB) takes longer than reading the rest of the
            # budget: its links go into the frontier now, by a cheap lxml pass.
            self._push_early_links(page, depth + 1)
        if self.pool_warm is not None and not self._pool_broken:
            if not self.pool_warm.is_set() and not site_map:
                # The processes are still starting: follow this page's links now (a cheap
                # lxml pass) so fetching goes on meanwhile; its score lifts them later.
                self._push_early_links(page, depth + 1)
            try:
                # Research reads no markdown; a page read for its links gets no main-text pass.
                ex = await ctx.web.extract(page, markdown=False, listing=listing)
            except (TaskError, asyncio.CancelledError):
                raise
            except Exception as exc:  # a broken pool (e.g. a worker died): go on in-process
                self._pool_broken = True
                ctx.emit("extract_fallback", url=page.url, error=f"{type(exc).__name__}: {exc}")
        if ex is None:
            # A small task reads on a thread: starting extraction processes would cost more
            # (see _pipeline.py); so does any task once the processes have failed.
            from ...web.extract import extract_page

            with ctx.action("extract", url=page.url, where="thread"):
                ex = await asyncio.to_thread(
                    functools.partial(extract_page, markdown=False, listing=listing),
                    page.body,
                    page.url,
                    page.headers.get("content-type"),
                )
        score = page_score(self.query, ex) if ex.is_html or ex.text else 0.0
        hub = is_hub(page.url, ex)
        read = ReadPage(page.url, ex, score, hub, depth, via, ex.title, ex.date, ex.text)
        self.result.pages.append(read)
        self.on_page(read)
        self.query.note_links(ex.links)
        self.crawl.push_links(ex.links, score, depth + 1)
        if self.model is not None and ex.links:
            await self._let_model_pick()
