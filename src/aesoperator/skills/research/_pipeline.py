"""The research pipeline: validate, discover, read best-first, rank, write the cited report."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...errors import FetchError, PolicyViolation
from ...results import Output
from ._botwall import walled_hosts
from ._crawl import Crawler, CrawlResult, Query, ReadPage
from ._discover import Seed, discover
from ._inputs import ResearchInputs, parse_inputs
from ._llm import ResearchModel
from ._report import (
    Extractive,
    Report,
    Synthesizer,
    citable,
    number_citations,
    select_sources,
    to_markdown,
)

if TYPE_CHECKING:
    from ...runtime.context import TaskContext

_FEW_SOURCES = 1  # fewer cited sources than this: the report says why and what to change
_MEMORY_EVERY = 5  # pages between memory checkpoints (what a cancelled run leaves behind)


def _synthesizer(llm: ResearchModel | None, query: Query) -> Synthesizer:
    # With a model: an abstractive report, every sentence verified (_llm.py); else extractive.
    return llm.synthesizer(asyncio.get_running_loop(), query) if llm else Extractive()


def _allowed(ctx: TaskContext, hosts: set[str] | None) -> Any:
    policy = ctx.web.policy
    # The policy's verdict depends on scheme and host only: decide once per origin. This is a
    # pre-filter to keep refused links out of the frontier; the web layer still gates each fetch.
    verdicts: dict[tuple[str, str], bool] = {}
    walls = walled_hosts(ctx)  # hosts found behind a bot wall: reported once, not asked again

    def allowed(url: str) -> bool:
        parts = urlsplit(url)
        if parts.netloc.lower() in walls:
            return False
        key = (parts.scheme, parts.netloc)
        verdict = verdicts.get(key)
        if verdict is None:
            try:
                checked = policy.check_url(f"{parts.scheme}://{parts.netloc}/")
            except (PolicyViolation, ValueError):
                verdict = False
            else:
                # With no allowed_domains the policy allows the whole web: stay on the seeds'
                # sites (and the search results' sites).
                verdict = hosts is None or urlsplit(checked).hostname in hosts
            verdicts[key] = verdict
        return verdict

    return allowed


def _data(
    inp: ResearchInputs,
    report: Report,
    pages: list[ReadPage],
    excluded: list[dict[str, object]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "topic": inp.topic,
        "depth": inp.depth,
        "focus_areas": inp.focus_areas,
        "start_date": inp.start_date,
        "sources": [
            {
                "n": s.n,
                "url": s.url,
                "title": s.title,
                "date": s.date,
                "undated": s.date is None,
                "score": round(s.score, 4),
            }
            for s in report.cited
        ],
        "passages": [
            {
                "source": p.source.n,
                "url": p.source.url,
                "text": p.text,
                "section": p.section,
                "score": p.score,
            }
            for p in [*report.summary, *(p for ps in report.sections.values() for p in ps)]
        ],
        "pages_read": [
            {"url": p.url, "score": round(p.score, 4), "hub": p.hub, "date": p.date} for p in pages
        ],
        "excluded": excluded,
        **extra,
    }


async def research(ctx: TaskContext, pool_warm: threading.Event | None = None) -> Output:
    """``pool_warm``: set once the extraction processes answer (started by ``run``)."""
    inp = parse_inputs(ctx.inputs, ctx.config)
    permanent = ctx.task.memory_scope == "permanent"
    known: set[str] = set(ctx.memory.get("visited_urls") or []) if permanent else set()
    previous_findings: list[Any] = list(ctx.memory.get("findings") or []) if permanent else []
    query = Query.build(inp.topic, inp.focus_areas, inp.start_date)
    search_text = inp.topic
    llm = ResearchModel.from_ctx(ctx)
    if llm is not None:
        await llm.expand(inp.topic, inp.focus_areas, query)  # widens ``query``
    ctx.progress(1, "discovering sources")
    ctx.emit(
        "research_plan",
        topic=inp.topic,
        depth=inp.depth,
        focus_areas=inp.focus_areas,
        providers=[s.provider for s in inp.search],
        start_urls=inp.start_urls,
    )

    seeds: list[Seed] = [Seed(u, 1.0, via="start_url") for u in inp.start_urls]
    errors: list[BaseException] = []
    failed: list[str] = []  # "provider (base_url): why it gave nothing"
    for spec in inp.search:
        given = len(seeds)
        queries = [search_text]
        if inp.focus_areas and ctx.budget.pages_left >= 8 * (len(inp.focus_areas) + 1):
            queries += [f"{inp.topic} {area}" for area in inp.focus_areas]
        if llm is not None and ctx.budget.pages_left >= 8 * (len(queries) + 1):
            queries += llm.queries
        elif inp.focus_areas and spec.provider == "site":
            # Small budget: one query. A site's own search usually ranks by matched words,
            # so the focus areas sharpen it (engines with AND semantics keep the bare topic).
            queries = [" ".join([inp.topic, *inp.focus_areas])]
        for i, text in enumerate(queries):
            found = await discover(ctx, spec, text, max(10, inp.max_results * 2), home=i == 0,
                                   start_date=inp.start_date)  # fmt: skip
            seeds.extend(found.seeds)
            errors.extend(found.errors)
            if not found.seeds:
                if len(seeds) == given:
                    failed.append(f"{spec.provider} ({spec.base_url}): {found.reason}")
                break  # the provider failed or has nothing: no use asking again
    ctx.emit("research_discovered", seeds=len(seeds), errors=len(errors), failed=failed)
    if not seeds and failed:
        # Every provider failed: say which and why, so that nothing downstream (a composed
        # summarize) mistakes an empty report for a finding.
        why = "; ".join(failed)
        message = (
            f"No sources found for {inp.topic!r}: every discovery provider failed: {why}. "
            "Nothing was read, so nothing is reported."
        )
        ctx.progress(100, "no sources")
        return Output(
            content=f"# {inp.topic}\n\n{message}\n",
            summary=message,
            data={"topic": inp.topic, "sources": [], "pages_read": [], "providers_failed": failed},
        )

    hosts: set[str] | None = None
    if not ctx.config.allowed_domains:
        hosts = {h for s in seeds if (h := urlsplit(s.url).hostname)}
    visited: list[str] = []
    pages: list[ReadPage] = []
    for seed in seeds:
        if seed.text and seed.url not in known:  # an API gave the text (arXiv): no fetch
            from ...text._tokens import terms

            score = 0.5 * query.coverage(set(terms(seed.text))) + 0.5 * query.coverage(
                set(terms(seed.title or ""))
            )
            pages.append(
                ReadPage(
                    seed.url,
                    None,
                    score,
                    False,
                    0,
                    seed.via,
                    seed.title,
                    seed.date,
                    f"{seed.title or ''}\n\n{seed.text}",
                )
            )
            visited.append(seed.url)

    def checkpoint() -> None:
        ctx.memory.set("visited_urls", sorted(known | set(visited)))

    last_percent = [0]

    def on_page(page: ReadPage) -> None:
        visited.append(page.url)
        budget = ctx.budget
        percent = int(5 + 85 * budget.pages_used / max(1, budget.max_pages))
        if percent > last_percent[0]:  # one update per percent: each one is stored
            last_percent[0] = percent
            ctx.progress(percent, f"read {len(visited)} pages")
        if len(visited) % _MEMORY_EVERY == 0:
            checkpoint()
            ctx.partial_output = Output(
                summary=f"cancelled or failed after reading {len(visited)} pages",
                data={"pages_read": list(visited)},
            )

    crawler = Crawler(ctx, query, known=known, allowed=_allowed(ctx, hosts), on_page=on_page)
    crawler.pool_warm = pool_warm
    if llm is not None:
        crawler.model, crawler.topic = llm, (inp.topic, inp.focus_areas)
    try:
        async with ctx.action("read_pages", max_pages=ctx.budget.pages_left):
            crawl = await crawler.run(seeds, ctx.config.concurrent_requests)
    finally:
        checkpoint()
        ctx.partial_output = Output(
            summary=f"stopped after reading {len(visited)} pages",
            data={"pages_read": list(visited)},
        )
    pages.extend(crawl.pages)
    ctx.emit(
        "research_read",
        pages=len(crawl.pages),
        failures=len(crawl.failures),
        refused=len(crawl.refused),
        skipped_known=len(crawl.skipped_known),
        seconds=round(crawl.elapsed, 3),
    )
    if not pages:
        _raise_nothing_read(ctx, inp, crawl, errors)
    ctx.progress(92, "ranking passages")
    fresh = [p for p in pages if p.url not in known] if permanent and known else pages
    sources, excluded = select_sources(fresh, inp.start_date, inp.max_results, query)
    async with ctx.action("rank_passages", sources=len(sources)):
        report = await asyncio.to_thread(
            _synthesizer(llm, query).synthesize, inp.topic, inp.focus_areas, sources, inp.depth
        )
    number_citations(report)

    notes: list[str] = []
    read_count = len([p for p in pages if p.extracted is not None])
    notes.append(
        f"_{read_count} pages read, {len(report.cited)} sources cited"
        + (f", {len(excluded)} sources before {inp.start_date} left out" if excluded else "")
        + "._"
    )
    notes.extend(f"_Provider {f}._" for f in failed)
    notes.extend(llm.notes if llm is not None else [])
    if crawl.stopped_for_time:
        notes.append("_Reading stopped early to finish within max_duration_seconds._")
    undated = [s for s in report.cited if s.date is None]
    if undated:
        notes.append(f"_{len(undated)} cited sources carry no date (marked undated)._")
    new_urls = [s.url for s in report.cited]
    if permanent and known:
        notes.append(
            f"_Since the last run: {len(report.cited)} new sources cited, "
            f"{len(crawl.skipped_known)} already-read pages skipped._"
        )
    summary = " ".join(p.text for p in report.summary)
    if len(report.cited) < _FEW_SOURCES:
        # Too little to answer the topic: say what was read, why, and what to change.
        shortfall = explain_shortfall(ctx, inp, query, pages, crawl, len(report.cited))
        notes.append(shortfall)
        summary = f"{shortfall} {summary}".strip()
    content = to_markdown(inp.topic, report, notes)
    findings = [
        {"url": p.source.url, "text": p.text, "section": p.section}
        for p in [*report.summary, *(p for ps in report.sections.values() for p in ps)]
    ]
    ctx.memory.set("findings", previous_findings + findings)
    checkpoint()
    ctx.progress(100, "report written")
    return Output(
        content=content,
        summary=summary,
        data=_data(
            inp,
            report,
            pages,
            excluded,
            {
                "new_sources": new_urls if permanent else None,
                "skipped_known": crawl.skipped_known,
                "failures": crawl.failures,
                "refused": crawl.refused,
                "stopped_for_time": crawl.stopped_for_time,
                "llm": llm.data() if llm is not None else None,
            },
        ),
    )


def _fixes(ctx: TaskContext, inp: ResearchInputs) -> str:
    fixes = [f"raise max_pages (it was {ctx.config.max_pages})"]
    fixes.append("start from pages closer to the topic (inputs.start_urls)")
    if not inp.search:
        fixes.append("add a discovery provider (inputs.search, e.g. {'provider': 'site'})")
    return "; ".join(fixes)


def _raise_nothing_read(
    ctx: TaskContext, inp: ResearchInputs, crawl: CrawlResult, errors: list[BaseException]
) -> None:
    """No page could be read at all: fail with the cause and what to change."""
    first = crawl.first_error or next((e for e in errors if isinstance(e, FetchError)), None)
    first = first or (errors[0] if errors else None)
    if isinstance(first, FetchError):
        raise FetchError(
            f"no page could be read: {first}. Check inputs.start_urls (the address must "
            "answer with a page) or add a discovery provider (inputs.search)",
            url=first.url,
            status=first.status,
        ) from first
    if first is not None:
        raise first
    if crawl.refused:
        raise PolicyViolation(
            f"no page could be read: the task's policy refused all {len(crawl.refused)} "
            f"(first {crawl.refused[0]}). Allow the site (TaskConfig.allowed_domains; "
            "respect_robots_txt=False only where the site's terms permit) or start elsewhere "
            "(inputs.start_urls)",
            url=crawl.refused[0],
        )


def explain_shortfall(
    ctx: TaskContext,
    inp: ResearchInputs,
    query: Query,
    pages: list[ReadPage],
    crawl: CrawlResult,
    cited: int,
) -> str:
    """Why too little relevant material was found, from what the crawl saw."""
    read = [p for p in pages if p.extracted is not None or p.text]
    listings = sum(1 for p in read if not citable(p) and len(p.text) >= 80)
    thin = sum(1 for p in read if len(p.text) < 80)
    words = ", ".join(sorted(query.concepts)) or inp.topic
    why = [f"{len(read)} page{'' if len(read) == 1 else 's'} read"]
    if listings:
        why.append(f"{listings} of them index or listing pages (followed for links, not cited)")
    if thin:
        why.append(f"{thin} with almost no text")
    off_topic = len(read) - listings - thin
    if off_topic > 0:
        why.append(f"{off_topic} that do not discuss the topic's terms ({words}) enough")
    if crawl.failures:
        why.append(f"{len(crawl.failures)} failed ({crawl.failures[0]['error']})")
    if crawl.refused:
        why.append(f"{len(crawl.refused)} refused by the policy")
    found = f"{cited} relevant source{'' if cited == 1 else 's'} found"
    return (
        f"Too little relevant material: {found} for {inp.topic!r}: {'; '.join(why)}. "
        f"To find more: {_fixes(ctx, inp)}."
    )
