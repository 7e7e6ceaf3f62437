"""From pages read to a cited, extractive report.

Candidate sentences come from the pages' extracted text only, so every cited sentence is found
verbatim in its source. Ranking: BM25 against the topic (and each focus area), LexRank
centrality among the best candidates, MMR to drop near-duplicates.

The ``Synthesizer`` seam is where an LLM will plug in: it receives the same ranked, cited
passages and must stay grounded in them; the default is extractive.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from ...text._tokens import terms
from ...text.bm25 import BM25
from ...text.rank import Vectors, lexrank, mmr
from ...text.sentences import split_sentences
from ...text.units import candidates as whole_sentences
from ...text.units import is_whole_sentence
from ._crawl import NOT_CITED as _NOT_CITED
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
    # Whole sentences cut from the page's structural blocks (none crosses a heading, a list
    # item or a table cell); empty when extraction gave no blocks: the text is split then.
    sentences: tuple[str, ...] = ()


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


# A sentence that opens with a plain lower-case word was cut from its start ("of the UID.
# data must be…"); one that opens with an identifier (``to_python``, ``os.path``) is whole.
_CUT_START = re.compile(r"^[a-z][a-z’']*(?=[\s,;:]|$)")


def _usable(sentence: str) -> bool:
    n = len(sentence.split())
    return (
        6 <= n <= 80
        and sentence[-1:] in ".!?\"'”’)。！？"
        and not _META.match(sentence)
        and not _CUT_START.match(sentence)
        and is_whole_sentence(sentence)
    )


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
            for raw in src.sentences or split_sentences(src.text, lines=True):
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
                0.45 * scores[i] / top + 0.2 * central[j] / ctop + 0.35 * pool[i][1].score
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

        # The summary speaks from the best sources only (those that get a section when no
        # focus areas are given): a sentence of a fourth page was most often a neighbour's.
        leading = sorted(sources, key=lambda s: -s.score)[: _SECTIONS.get(depth, 3)]
        speaking = {id(s) for s in leading}
        topical = index.scores(list(query.weights), weights=query.weights)
        summary = pick(
            [sc if id(pool[i][1]) in speaking else 0.0 for i, sc in enumerate(topical)],
            _SUMMARY.get(depth, 3), None, "summary",
        )  # fmt: skip
        if not summary:
            # No sentence repeats the topic's words ("deployment checklist": the checklist page
            # says "deploying"), yet the pages were chosen by title and URL: the best source's
            # opening sentences, which say what it is about, rather than an empty report.
            best = max(sources, key=lambda s: s.score)
            lead = [i for i, (_, src) in enumerate(pool) if src is best][: _SUMMARY.get(depth, 3)]
            summary = [Passage(pool[i][0], best, 0.0, "summary") for i in lead]
            used.update(lead)
        # The most relevant source speaks first: its citation is [1].
        report.summary = sorted(summary, key=lambda p: (-p.source.score, -p.score))
        if focus_areas:
            for area in focus_areas:
                area_terms = set(terms(area))
                weights = {t: 1.0 for t in area_terms}
                for t in terms(topic):
                    weights.setdefault(t, 0.3)
                scores = index.scores(list(weights), weights=weights)
                report.sections[area] = pick(scores, k, area_terms or None, area)
        else:
            # Headings from the sources: each of the best sources is a section under its own
            # title. (Hook: once extraction gives structural blocks, group by the heading above
            # each sentence instead, so one long page can give several sections.)
            for src in leading:
                own = [sc if pool[i][1] is src else 0.0 for i, sc in enumerate(topical)]
                picked = pick(own, k, None, heading(src.title))
                if picked:
                    report.sections.setdefault(heading(src.title), []).extend(picked)
        return report


_SECTION_NUMBER = re.compile(r"^\s*(?:[A-Z]?\d+(?:\.\d+)*\.?|Chapter \d+\.?|[IVX]+\.)\s+")
_TITLE_TAIL = re.compile(r"\s+[|\u2013\u2014-]\s+[^|\u2013\u2014-]{2,60}$")
# Sources that get a findings section of their own. An overview's fourth was most often a
# neighbouring page (ALTER next to CREATE): on the first 20 topics per site of
# bench/research_quality_real.py, 3 instead of 4 took cited precision from 0.83 to 0.88 for
# 0.02 of recall.
_SECTIONS = {"overview": 3, "technical": 5}


def heading(title: str) -> str:
    """A section heading from a page title: without its chapter number ("9.16. ") or the
    site's name after a separator ("... | Django documentation")."""
    text = _SECTION_NUMBER.sub("", title).strip()
    shorter = _TITLE_TAIL.sub("", text).strip()
    return shorter or text or title


_PARAGRAPH = re.compile(r"\n\s*\n")
_URL_WORD = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"\w+")
# Per page: enough for a long reference page (Django's QuerySet API: about 15,000 words).
_MAX_PASSAGES = 250
_PASSAGE_WORDS = 80
_NOT_PASSAGE = frozenset({"heading", "nav", "code"})
# Cite pages whose relevance is at least this share of the best page's (tuned on the first 20
# topics per site of bench/research_quality_real.py: 0.5 padded the list with near-misses).
_KEEP = 0.6


def _passages(page: ReadPage) -> list[str]:
    """Passages of about ``_PASSAGE_WORDS`` words: consecutive blocks of one section, each
    opening with its section's heading (a passage under "filter()" is about filter()). A page
    without blocks is cut at blank lines, and at line ends within a long paragraph."""
    blocks = page.extracted.blocks if page.extracted else []
    if not blocks:
        return _text_passages(page.text)
    out: list[str] = []
    parts: list[str] = []
    words = 0
    section: str | None = None

    def flush() -> None:
        nonlocal words
        text = " ".join(parts)
        if len(text) >= 20:
            out.append(f"{section}. {text}" if section else text)
        parts.clear()
        words = 0

    for block in blocks:
        if block.kind in _NOT_PASSAGE:
            continue
        heading = block.heading_path[-1] if block.heading_path else ""
        if heading != section:
            flush()
            section = heading
        parts.append(block.text)
        words += block.text.count(" ") + 1
        if words >= _PASSAGE_WORDS:
            flush()
        if len(out) >= _MAX_PASSAGES:
            return out
    flush()
    return out[:_MAX_PASSAGES]


def _text_passages(text: str) -> list[str]:
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        chunk: list[str] = []
        words = 0
        for line in [*para.strip().splitlines(), ""]:  # "": the paragraph's end
            if line:
                chunk.append(line)
                words += len(line.split())
            if chunk and (words >= _PASSAGE_WORDS or not line):
                passage = " ".join(chunk).strip()
                if len(passage) >= 20:
                    out.append(passage)
                chunk, words = [], 0
    return out[:_MAX_PASSAGES]


def rank_pages(pages: list[ReadPage], query: Query) -> dict[str, float]:
    """Relevance of each page (0..1) by its best passages, not by counts of common words.

    One BM25 index over every page's passages gives the site's own idf, so a term on every
    page ("function" in a manual of functions) weighs little and the topic's rare term a lot.
    A page's passage score sums its best passages, decreasing; its title and URL
    count by the idf-weighted share of the topic's terms they carry (a title such as
    ``json — Encode and decode the JSON format`` is the best signal a page gives about itself).
    """
    spans: list[tuple[int, int]] = []
    texts: list[str] = []
    for page in pages:
        chunk = _passages(page)
        spans.append((len(texts), len(texts) + len(chunk)))
        texts.extend(chunk)
    if not texts:
        return {}
    tokens = [terms(t) for t in texts]  # once, for the index and the phrase boost
    index = BM25(tokens)
    scores = _phrase_boost(tokens, index.scores(list(query.weights), weights=query.weights), query)
    idf = {
        t: w * max(index.idf.get(f, 0.0) for f in query.forms[t]) for t, w in query.concepts.items()
    }
    total_idf = sum(idf.values()) or 1.0

    def cover(label: str) -> float:
        # Squared: a title with the topic's common words but not its rare one says little.
        present = set(terms(label))
        found = sum(v for t, v in idf.items() if any(f in present for f in query.forms[t]))
        return (found / total_idf) ** 2

    raw: dict[str, float] = {}
    for page, (lo, hi) in zip(pages, spans, strict=True):
        best = sorted(scores[lo:hi], reverse=True)[:_BEST]
        raw[page.url] = sum(s / (k + 1) ** 0.5 for k, s in enumerate(best))
    top = max(raw.values(), default=0.0) or 1.0
    asked = {f for forms in query.forms.values() for f in forms}
    out: dict[str, float] = {}
    for page in pages:
        url_words = " ".join(_URL_WORD.findall(urlsplit(page.url).path.lower()))
        out[page.url] = (
            0.45 * raw[page.url] / top + 0.35 * cover(page.title or "") + 0.1 * cover(url_words)
        ) * (_OPERATION if _operation(page.title or "", asked) else 1.0)
    return out


# Titles that name an operation on their subject ("ALTER TABLESPACE", "Deleting objects"): a
# narrower page than the subject's own, which carries the same words. On the PostgreSQL manual
# such pages passed the cut-off next to CREATE ... pages; at 0.75 of their relevance, cited
# precision there went 0.79 -> 0.83 (held-out topics 0.70 -> 0.77), recall 0.63 -> 0.64, and
# Django's was unchanged (bench/research_quality_real.py).
_OPERATION = 0.75
_OPERATIONS = frozenset(
    {"alter", "altering", "drop", "dropping", "remove", "removing", "delete", "deleting",
     "rename", "renaming", "truncate"}
)  # fmt: skip


def _operation(title: str, asked: set[str]) -> bool:
    """The title opens with an operation verb the topic does not ask about."""
    first = _WORD.search(_SECTION_NUMBER.sub("", title))
    if first is None or (word := first.group().lower()) not in _OPERATIONS:
        return False
    return not (set(terms(word)) & asked) and word not in asked


# A page's passage score: its best _BEST passages, the k-th weighing 1/sqrt(k). Many: a page
# about the topic throughout (Django's QuerySet reference) must beat one that names every topic
# word in one section (the aggregation guide). On the first 20 topics per site of
# bench/research_quality_real.py, 5 passages gave precision 0.71, 20: 0.81, 40: 0.83.
_BEST = 40


def _phrase_boost(tokens: list[list[str]], scores: list[float], query: Query) -> list[float]:
    """Passages where the topic's words stand together ("window functions", not "Windows"
    and "functions" apart) gain up to half their score."""
    topic = [t for t, w in query.concepts.items() if w >= 1.0]
    pairs = list(itertools.pairwise(topic))
    if not pairs:
        return scores
    wanted = {(a, b) for x, y in pairs for a in query.forms[x] for b in query.forms[y]}
    out = list(scores)
    for i, toks in enumerate(tokens):
        if scores[i] <= 0:
            continue
        present = set(itertools.pairwise(toks)) & wanted
        if present:
            found = sum(
                1
                for x, y in pairs
                if any((a, b) in present for a in query.forms[x] for b in query.forms[y])
            )
            out[i] *= 1 + 0.5 * found / len(pairs)
    return out


def citable(page: ReadPage) -> bool:
    """Articles only: hubs, index pages, source listings and near-empty pages are not cited."""
    return not (page.hub or len(page.text) < 80 or _NOT_CITED.search(urlsplit(page.url).path))


def select_sources(
    pages: list[ReadPage], start_date: str | None, limit: int, query: Query | None = None
) -> tuple[list[Source], list[dict[str, object]]]:
    """Citable sources: relevant non-hub pages ranked by their best passages, date filter
    applied; pages far below the best one are left out (precision over padding)."""
    excluded: list[dict[str, object]] = []
    candidates: list[ReadPage] = []
    for page in pages:
        if not citable(page) or page.score <= 0.05:
            continue
        if start_date and page.date and page.date < start_date:
            excluded.append({"url": page.url, "date": page.date, "reason": "before start_date"})
            continue
        candidates.append(page)
    relevance = rank_pages(candidates, query) if query is not None else {}
    best = max(relevance.values(), default=0.0)
    sources: list[Source] = []
    for page in candidates:
        score = relevance.get(page.url, page.score)
        if relevance and score < _KEEP * best:
            continue
        anchors = frozenset(
            link.text for link in (page.extracted.links if page.extracted else []) if link.text
        )
        blocks = page.extracted.blocks if page.extracted else []
        sentences = tuple(s.text for s in whole_sentences(blocks))
        sources.append(
            Source(0, page.url, page.title or page.url, page.date, score, page.text, anchors,
                   sentences)
        )  # fmt: skip
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
