"""Extractive summaries: LexRank centrality, optional query relevance (BM25), MMR redundancy
removal, under a hard character budget.

The units are those of ``text.units``: each text is cut into blocks (paragraphs on blank
lines, list items, markdown headings), sentences are split inside a block, and only whole
sentences (``is_whole_sentence``) are candidates. A summary is whole sentences or nothing: when
no whole sentence fits in ``max_length`` the result is empty, never a cut sentence.

>>> text = ("Solar panels turn light into electricity. Panels made of silicon dominate the "
...         "market. My cat likes fish. Silicon solar panels got cheaper every year.")
>>> out = summarize(text, max_length=90)
>>> len(out) <= 90 and "cat" not in out
True
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ._tokens import terms
from .bm25 import BM25
from .rank import Vectors, lexrank, mmr
from .units import blocks_from_text, is_whole_sentence, sentences_of

__all__ = ["Candidate", "rank_sentences", "shortest_sentence", "summarize", "truncate"]

Format = Literal["paragraph", "bullets"]
_MAX_CANDIDATES = 250  # LexRank is quadratic: pre-select this many sentences
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class Candidate:
    """A sentence chosen for a summary: its text, where it came from, and its score."""

    text: str
    source: int  # index of the input text it came from
    position: int  # index of the sentence within that text
    score: float


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut ``text`` to at most ``limit`` characters, at a word boundary when possible."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[:limit]
    cut = text[: limit - len(ellipsis)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + ellipsis


def _usable(sentence: str) -> bool:
    if not is_whole_sentence(sentence):
        return False
    letters = len(_LETTERS.findall(sentence))
    return letters >= 12 and letters >= 0.5 * len(sentence.replace(" ", ""))


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_CITATION = re.compile(r"\s?\[\d+(?:[,\u2013-]\s?\d+)*\]")
_REFERENCE_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*])?\s*\[[^\]]*\]\([^)]*\)[^.!?]*$")
_NOTE_LINE = re.compile(r"^\s*([_*])[^_*].*\1\s*$")


def _plain(text: str) -> str:
    """Markdown to plain prose: drop reference lists and notes, unwrap links and citations.

    Summaries of reports (research results) would otherwise quote "[3]" markers and URLs.
    """
    if "](" not in text and "[" not in text and "_" not in text:
        return text
    lines = []
    for line in text.splitlines():
        if _REFERENCE_LINE.match(line) or _NOTE_LINE.match(line):
            continue
        lines.append(_CITATION.sub("", _MD_LINK.sub(r"\1", line)))
    return "\n".join(lines)


def _sentences(texts: Sequence[str]) -> list[tuple[int, int, str]]:
    seen: set[str] = set()
    out: list[tuple[int, int, str]] = []
    for source, text in enumerate(texts):
        for position, unit in enumerate(sentences_of(blocks_from_text(_plain(text)))):
            sentence = unit.text
            key = sentence.lower()
            if key in seen or not _usable(sentence):
                continue
            seen.add(key)
            out.append((source, position, sentence))
    return out


def _centroid_preselect(items: list[tuple[int, int, str]], keep: int) -> list[int]:
    """Cheap linear pre-ranking for huge inputs: overlap with the document's frequent terms."""
    per = [Counter(terms(s)) for _, _, s in items]
    total: Counter[str] = Counter()
    for c in per:
        total.update(c.keys())
    top = dict(total.most_common(200))
    scores = []
    for (_, position, _), c in zip(items, per, strict=True):
        overlap = sum(top.get(t, 0) for t in c) / (1 + len(c)) ** 0.5
        scores.append(overlap * (1.2 if position < 3 else 1.0))
    order = sorted(range(len(items)), key=lambda i: -scores[i])[:keep]
    return sorted(order)


def rank_sentences(
    texts: Sequence[str],
    *,
    query: str | None = None,
    k: int = 10,
    budget: int | None = None,
    separator: int = 1,
    diversity: float = 0.3,
) -> list[Candidate]:
    """Pick up to ``k`` central, query-relevant, non-redundant sentences of ``texts``.

    With ``budget``, the chosen sentences plus ``separator`` characters between them fit in
    ``budget`` characters. Returned in reading order (source, then position).
    """
    items = _sentences(texts)
    if not items:
        return []
    if len(items) > _MAX_CANDIDATES:
        items = [items[i] for i in _centroid_preselect(items, _MAX_CANDIDATES)]
    docs = [s for _, _, s in items]
    vectors = Vectors(docs)
    central = lexrank(vectors)
    top = max(central) or 1.0
    relevance = [c / top for c in central]
    if query:
        q = BM25(docs).scores(query)
        qtop = max(q) or 1.0
        relevance = [0.4 * r + 0.6 * (s / qtop) for r, s in zip(relevance, q, strict=True)]
    # Openings of each text carry its gist more often than not.
    relevance = [
        r * (1.1 if position == 0 else 1.0)
        for r, (_, position, _) in zip(relevance, items, strict=True)
    ]
    used = [0]

    def fits(i: int, chosen: list[int]) -> bool:
        if budget is None:
            return True
        extra = len(docs[i]) + (separator if chosen else 0)
        if used[0] + extra > budget:
            return False
        used[0] += extra
        return True

    chosen = mmr(
        relevance,
        vectors.sim,
        k,
        diversity=diversity,
        accept=fits,
        min_relevance=0.3,
        max_similarity=0.5,
        duplicate=vectors.jaccard,
    )
    chosen.sort(key=lambda i: (items[i][0], items[i][1]))
    return [Candidate(docs[i], items[i][0], items[i][1], relevance[i]) for i in chosen]


def summarize(
    text: str | Sequence[str],
    *,
    max_length: int,
    format: Format = "paragraph",
    query: str | None = None,
) -> str:
    """An extractive summary of ``text`` in whole sentences, never over ``max_length``
    characters; empty when no whole sentence fits (see ``shortest_sentence``)."""
    texts = [text] if isinstance(text, str) else list(text)
    if max_length <= 0:
        return ""
    prefix, separator = ("- ", "\n") if format == "bullets" else ("", " ")
    # At most ~40 sentences: a summary, not a reordering of the whole text.
    picked = (
        rank_sentences(texts, query=query, k=40, budget=max_length + len(separator), separator=0)
        if max_length >= 20
        else []
    )
    # The budget above counts sentences only; re-check with prefixes and separators.
    lines: list[str] = []
    length = 0
    for cand in picked:
        extra = len(prefix) + len(cand.text) + (len(separator) if lines else 0)
        if length + extra <= max_length:
            lines.append(prefix + cand.text)
            length += extra
    # Nothing fits, or no whole sentence at all: an empty summary, never a cut sentence.
    return separator.join(lines)


def shortest_sentence(text: str | Sequence[str]) -> int:
    """Length of the shortest whole sentence of ``text`` (0 if none): what ``max_length``
    must allow for a summary not to be empty."""
    texts = [text] if isinstance(text, str) else list(text)
    return min((len(s) for _, _, s in _sentences(texts)), default=0)
