"""From pages read to a cited, extractive report.

Candidate sentences come from the pages' extracted text only, so every cited sentence is found
verbatim in its source. Ranking: BM25 against the topic (and each focus area), LexRank
centrality among the best candidates, MMR to drop near-duplicates.

The ``Synthesizer`` seam is where an LLM will plug in: it receives the same ranked, cited
passages and must stay grounded in them; the default is extractive.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from ...text._tokens import STOPWORDS, stem, terms, words
from ...text.bm25 import BM25
from ...text.rank import Vectors, lexrank, mmr
from ...text.sentences import split_sentences
from ._crawl import Query, ReadPage

_PER_SECTION = {"overview": 3, "technical": 6}
_SUMMARY = {"overview": 3, "technical": 5}
_MAX_POOL = 400
_BULLET = re.compile(r"^(?:[-*•>]|\d+[.)])\s+")


@dataclass
class Source:
    n: int  # citation number, 0 until cited
    url: str
    title: str
    date: str | None
    score: float
    text: str
    anchors: frozenset[str] = frozenset()


@dataclass
class Passage:
    text: str
    source: Source
    score: float
    section: str = ""


@dataclass
class Report:
    summary: list[Passage] = field(default_factory=list)
    sections: dict[str, list[Passage]] = field(default_factory=dict)
    cited: list[Source] = field(default_factory=list)


class Synthesizer(Protocol):
    """Turns ranked passages into a report. An LLM-backed one must only restate passages."""

    def synthesize(
        self, topic: str, focus_areas: list[str], sources: list[Source], depth: str
    ) -> Report: ...


# Sentences about the page rather than the topic: never a finding.
_META = re.compile(
    r"^(?:here is|here's|read more|click|subscribe|sign up|sign in|share this|follow us|"
    r"in this article|this article|related:|advertisement|see also|photo:|image:)",
    re.I,
)


def _usable(sentence: str) -> bool:
    n = len(sentence.split())
    return 6 <= n <= 80 and sentence[-1:] in ".!?\"'”’)。！？" and not _META.match(sentence)


def _linky(sentence: str, anchors: frozenset[str]) -> bool:
    """ "Read more in <link>." and friends: navigation, not a finding."""
    longest = max((len(a) for a in anchors if len(a) > 15 and a in sentence), default=0)
    return longest > 0.5 * len(sentence)


class Extractive:
    """The default synthesizer: sentences chosen from the sources, never rewritten."""

    def synthesize(
        self, topic: str, focus_areas: list[str], sources: list[Source], depth: str
    ) -> Report:
        pool: list[tuple[str, Source]] = []
        seen: set[str] = set()
        for src in sources:
            for raw in split_sentences(src.text, lines=True):
                sentence = _BULLET.sub("", raw)
                key = sentence.lower()
                if key not in seen and _usable(sentence) and not _linky(sentence, src.anchors):
                    seen.add(key)
                    pool.append((sentence, src))
        report = Report()
        if not pool:
            return report
        query = Query.build(topic, focus_areas)
        index = BM25([s for s, _ in pool])
        overall = index.scores(list(query.weights), weights=query.weights)
        order = sorted(range(len(pool)), key=lambda i: -overall[i])[:_MAX_POOL]
        pool = [pool[i] for i in order]
        overall = [overall[i] for i in order]
        index = BM25([s for s, _ in pool])
        used: set[int] = set()
        term_sets = [frozenset(terms(s)) for s, _ in pool]
        k = _PER_SECTION.get(depth, 3)

        def repeats(i: int) -> bool:
            """Near-duplicate of a sentence another section already used."""
            a = term_sets[i]
            return any(len(a & term_sets[j]) > 0.5 * len(a | term_sets[j]) for j in used)

        def pick(
            scores: list[float], count: int, require: set[str] | None, label: str
        ) -> list[Passage]:
            top = max(scores, default=0.0)
            if top <= 0:
                return []
            cands = [
                i
                for i in sorted(range(len(pool)), key=lambda i: -scores[i])[:60]
                if scores[i] > 0
                and i not in used
                and (require is None or require & term_sets[i])
                and not repeats(i)
            ]
            if not cands:
                return []
            vectors = Vectors([pool[i][0] for i in cands])
            central = lexrank(vectors)
            ctop = max(central) or 1.0
            rel = [
                0.55 * scores[i] / top + 0.25 * central[j] / ctop + 0.2 * pool[i][1].score
                for j, i in enumerate(cands)
            ]
            chosen = mmr(
                rel,
                vectors.sim,
                count,
                diversity=0.35,
                max_similarity=0.5,
                duplicate=vectors.jaccard,
            )
            out = []
            for j in chosen:
                i = cands[j]
                used.add(i)
                out.append(Passage(pool[i][0], pool[i][1], round(rel[j], 4), label))
            return out

        report.summary = pick(
            index.scores(list(query.weights), weights=query.weights),
            _SUMMARY.get(depth, 3), None, "summary",
        )  # fmt: skip
        if focus_areas:
            for area in focus_areas:
                area_terms = set(terms(area))
                weights = {t: 1.0 for t in area_terms}
                for t in terms(topic):
                    weights.setdefault(t, 0.3)
                scores = index.scores(list(weights), weights=weights)
                report.sections[area] = pick(scores, k, area_terms or None, area)
        else:
            for theme, theme_terms in _themes(topic, [s for s, _ in pool], 4):
                weights = {t: 1.0 for t in theme_terms}
                scores = index.scores(list(weights), weights=weights)
                report.sections[theme] = pick(scores, k, theme_terms, theme)
        return report


def _themes(topic: str, sentences: list[str], count: int) -> list[tuple[str, set[str]]]:
    """Frequent non-topic terms as themes, labelled with their commonest surface form."""
    topic_terms = set(terms(topic))
    df: Counter[str] = Counter()
    surface: dict[str, Counter[str]] = {}
    for sentence in sentences:
        seen = set()
        for w in words(sentence):
            if w in STOPWORDS or w.isdigit() or len(w) < 4:
                continue
            t = stem(w)
            if t in topic_terms:
                continue
            surface.setdefault(t, Counter())[w] += 1
            seen.add(t)
        df.update(seen)
    themes: list[tuple[str, set[str]]] = []
    for term, freq in df.most_common(40):
        if freq < 2 or len(themes) >= count:
            break
        if any(term in t for _, t in themes):
            continue
        label = surface[term].most_common(1)[0][0]
        themes.append((label[0].upper() + label[1:], {term}))
    return themes


def select_sources(
    pages: list[ReadPage], start_date: str | None, limit: int
) -> tuple[list[Source], list[dict[str, object]]]:
    """Citable sources: relevant, non-hub pages, newest-first ties, date filter applied."""
    excluded: list[dict[str, object]] = []
    sources: list[Source] = []
    for page in pages:
        if page.hub or page.score <= 0.05 or len(page.text) < 80:
            continue
        if start_date and page.date and page.date < start_date:
            excluded.append({"url": page.url, "date": page.date, "reason": "before start_date"})
            continue
        anchors = frozenset(
            link.text for link in (page.extracted.links if page.extracted else []) if link.text
        )
        sources.append(
            Source(0, page.url, page.title or page.url, page.date, page.score, page.text, anchors)
        )
    sources.sort(key=lambda s: (-s.score, s.url))
    return sources[:limit], excluded


def number_citations(report: Report) -> None:
    """Number sources in order of first citation."""
    n = 0
    for passage in [*report.summary, *(p for ps in report.sections.values() for p in ps)]:
        if passage.source.n == 0:
            n += 1
            passage.source.n = n
            report.cited.append(passage.source)


def to_markdown(topic: str, report: Report, notes: list[str]) -> str:
    lines = [f"# Research: {topic}", ""]
    lines += notes + ([""] if notes else [])
    lines += ["## Summary", ""]
    if report.summary:
        lines.append(" ".join(f"{p.text} [{p.source.n}]" for p in report.summary))
    else:
        lines.append("No relevant sources were found within the task's limits.")
    lines.append("")
    if report.sections:
        lines += ["## Findings", ""]
        for section, passages in report.sections.items():
            lines += [f"### {section[0].upper() + section[1:]}", ""]
            if passages:
                lines += [f"- {p.text} [{p.source.n}]" for p in passages]
            else:
                lines.append("- No finding on this in the sources read.")
            lines.append("")
    if report.cited:
        lines += ["## Sources", ""]
        for src in report.cited:
            when = src.date or "undated"
            lines.append(f"{src.n}. [{src.title}]({src.url}) — {when}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
